#include "torchless/core/tensor.h"

#include "torchless/core/error.h"

namespace torchless {

std::byte* Tensor::data() const {
  if (!buffer) return nullptr;
  std::byte* base = buffer->host_data();
  return base ? base + offset : nullptr;
}

Tensor Tensor::slice_rows(int64_t first, int64_t count) const {
  if (layout != WeightLayout::Plain) fail("cannot slice rows of a repacked weight tensor");
  if (first < 0 || count < 0 || first + count > rows()) {
    fail("row slice [{}, {}) outside tensor of shape {}", first, first + count, shape.str());
  }
  Tensor view = *this;
  view.shape = Shape{count, cols()};
  view.offset = offset + static_cast<size_t>(first) * row_bytes();
  return view;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  if (layout != WeightLayout::Plain) fail("cannot reshape a repacked weight tensor");
  if (new_shape.numel() != numel()) {
    fail("cannot reshape {} to {}: element counts differ", shape.str(), new_shape.str());
  }
  if (new_shape.cols() % dtype_block_size(dtype) != 0) {
    fail("cannot reshape {} tensor to {}: rows would split a {}-element block", dtype_name(dtype),
         new_shape.str(), dtype_block_size(dtype));
  }
  Tensor view = *this;
  view.shape = new_shape;
  return view;
}

}  // namespace torchless
