#include "torchless/core/shape.h"

#include <fmt/format.h>

#include "torchless/core/error.h"

namespace torchless {

Shape::Shape(std::initializer_list<int64_t> dims) {
  if (dims.size() > kMaxRank)
    fail("shape of rank {} exceeds the maximum {}", dims.size(), kMaxRank);
  for (int64_t d : dims) {
    if (d < 0) fail("negative dimension {} in a shape", d);
    dims_[static_cast<size_t>(rank_++)] = d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i)
    s += fmt::format("{}{}", i ? ", " : "", dims_[static_cast<size_t>(i)]);
  return s + "]";
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[static_cast<size_t>(i)] != other.dims_[static_cast<size_t>(i)]) return false;
  }
  return true;
}

}  // namespace torchless
