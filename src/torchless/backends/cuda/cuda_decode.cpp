// The decode path of the CUDA backend: mat-vec dispatch over the int8-activation and vectorised
// kernels (cuda_decode_kernels.h), the reuse of activations an op already quantised, and the
// decode step captured into a CUDA graph (cuda_graph.h, Backend::begin_step).
#include "torchless/backends/cuda/cuda_backend.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_kernels.h"
#include "torchless/core/error.h"

namespace torchless {

void CudaBackend::matvec(const Tensor& w, const float* x, int64_t n, float* y,
                         std::string_view op) {
  const std::byte* wp = cuda::device_ptr(w, op, "w");
  const int64_t rows = w.rows(), cols = w.cols();
  if (cuda::matvec_q8_supports(w.dtype, wp)) {
    const cuda::ActivationQ8 q = quantised(x, n, cols);
    cuda::matvec_q8(w.dtype, wp, q, y, rows, cols, n, stream_);
  } else if (cuda::matvec_float_supports(w.dtype, wp, x, cols)) {
    cuda::matvec_float(w.dtype, wp, x, y, rows, cols, n, stream_);
  } else {
    cuda::matvec(w.dtype, wp, x, y, rows, cols, n, stream_);
  }
  cuda::check_launch(op);
}

cuda::ActivationQ8 CudaBackend::quantised(const float* x, int64_t n, int64_t cols) {
  // Only mat-vecs of this x since the op that quantised it: one op each (matmul_group: one op
  // for several), so the count moved by at most one since the last of them.
  const bool fresh =
      fused_.x == x && fused_.n == n && fused_.cols == cols && ops_issued() - fused_.op <= 1;
  const cuda::ActivationQ8 q = activation_scratch(n, cols);
  if (!fresh) {
    cuda::quantize_activations(x, q, n, cols, stream_);
    cuda::check_launch("quantize activations");
  }
  fused_ = {x, n, cols, ops_issued()};
  return q;
}

cuda::ActivationQ8 CudaBackend::activation_scratch(int64_t n, int64_t cols) {
  std::byte* p = activations_.get(cuda::activation_q8_bytes(n, cols), stream_, graph_.capturing());
  return cuda::activation_q8_at(p, n, cols);
}

void CudaBackend::require_no_step(std::string_view what) const {
  if (in_step()) {
    fail("{}: not allowed inside a decode step (between begin_step and end_step)", what);
  }
}

void CudaBackend::begin_step_impl() {
  // The first step runs op by op: kernels are loaded lazily on first use, which is best done
  // outside a capture.
  if (!step_graphs_ || steps_++ == 0 || graph_.futile()) return;
  // The previous step's copies read staging_: wait for them (done already when the caller
  // read its logits) before its chunks are reused.
  cuda::check(cudaEventSynchronize(step_done_), "cudaEventSynchronize", "begin_step");
  staging_.reset();
  graph_.begin(stream_);
}

void CudaBackend::end_step_impl() {
  if (!graph_.capturing()) return;
  graph_.end(stream_);
  cuda::check(cudaEventRecord(step_done_, stream_), "cudaEventRecord", "end_step");
}

void CudaBackend::cancel_step_impl() noexcept {
  graph_.cancel(stream_);
}

}  // namespace torchless
