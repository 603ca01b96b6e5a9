#pragma once
// Row-major shapes of up to 4 dimensions; dims()[0] is the outermost (slowest) dimension.
// A weight matrix mapping `cols` inputs to `rows` outputs has Shape{rows, cols}; GGUF's ne[]
// order is the reverse of this.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace torchless {

class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
  int64_t numel() const;
  // Innermost dimension (elements per row) and the product of all others.
  int64_t cols() const { return rank_ == 0 ? 1 : dims_[static_cast<size_t>(rank_ - 1)]; }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  std::string str() const;  // "[32, 4096]"

  bool operator==(const Shape& other) const;

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace torchless
