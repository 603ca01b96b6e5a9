// The spec's host-vector conveniences, written once over the ops so every backend
// gets them. They copy (upload/download), so they suit tests and tools, not the decode loop.
// Also the decode-step bracket (begin_step/end_step), whose state every backend shares.
#include "torchless/backends/backend.h"

#include <cstring>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

std::span<const std::byte> bytes_of(std::span<const float> values) {
  return std::as_bytes(values);
}

}  // namespace

void Backend::begin_step() {
  if (in_step_) fail("begin_step: a decode step is already open");
  begin_step_impl();
  in_step_ = true;
}

void Backend::end_step() {
  if (!in_step_) fail("end_step: no decode step is open");
  // The step is over whatever end_step_impl does: a backend that throws has ended it already.
  in_step_ = false;
  end_step_impl();
}

void Backend::cancel_step() noexcept {
  if (!in_step_) return;
  in_step_ = false;
  cancel_step_impl();
}

std::vector<float> Backend::matmul_vec_host(const Tensor& w, std::span<const float> x) {
  const Tensor xt = to_device_1d(x);
  Tensor y = alloc(Shape{w.rows()}, DType::F32);
  matmul_vec(w, xt, y);
  return to_host_f32(y);
}

void Backend::softmax_host(std::span<float> x) {
  Tensor t = to_device_1d(x);
  softmax(t);
  to_host(t, std::as_writable_bytes(x));
}

void Backend::rmsnorm_host(std::span<float> x, std::span<const float> weight, float eps) {
  Tensor t = to_device_1d(x);
  const Tensor w = to_device_1d(weight);
  rmsnorm(t, w, t, eps);
  to_host(t, std::as_writable_bytes(x));
}

Tensor Backend::to_device_1d(std::span<const float> values) {
  Tensor t = alloc(Shape{static_cast<int64_t>(values.size())}, DType::F32);
  upload(bytes_of(values), t);
  return t;
}

Tensor Backend::to_device_2d(std::span<const float> values, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0 || static_cast<size_t>(rows * cols) != values.size()) {
    fail("to_device_2d: {} values do not fill a [{}, {}] matrix", values.size(), rows, cols);
  }
  Tensor t = alloc(Shape{rows, cols}, DType::F32);
  upload(bytes_of(values), t);
  return t;
}

std::vector<float> Backend::to_host_f32(const Tensor& tensor) {
  std::vector<float> out(static_cast<size_t>(tensor.numel()));
  if (tensor.dtype == DType::F32) {
    to_host(tensor, std::as_writable_bytes(std::span(out)));
    return out;
  }
  if (!can_dequantize(tensor.dtype)) {
    fail("to_host_f32: cannot convert {} tensors to f32", dtype_name(tensor.dtype));
  }
  std::vector<std::byte> raw(tensor.nbytes());
  to_host(tensor, raw);
  const int64_t cols = tensor.cols();
  for (int64_t r = 0; r < tensor.rows(); ++r) {
    dequantize_row(tensor.dtype, raw.data() + static_cast<size_t>(r) * tensor.row_bytes(),
                   out.data() + r * cols, cols);
  }
  return out;
}

}  // namespace torchless
