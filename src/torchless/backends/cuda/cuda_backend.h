#pragma once
// The CUDA backend: ops are enqueued on one stream and run in order; to_host() and
// synchronize() wait for them. Weights are copied once to device memory in their own layout
// (never dequantised to a second copy) and read in place by the kernels of cuda_matvec.cu.
// Batched matmuls of more than a few tokens go through cuBLAS SGEMM over F32 tiles of the
// weights, dequantised into a scratch buffer one tile at a time.
#include <cstdint>
#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "torchless/backends/backend.h"

typedef struct cublasContext* cublasHandle_t;

namespace torchless {

namespace cuda {
class DeviceBuffer;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device = 0);  // throws Error when there is no such device
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  static BackendInfo info();  // for discover_backends()

  std::string_view name() const override { return "cuda"; }
  DeviceInfo device() const override;
  bool supports_weight_dtype(DType dtype) const override;
  bool supports_kv_dtype(DType dtype) const override;
  // Against the device's free memory: weights, KV cache and scratch all live there.
  std::string check_memory_plan(const MemoryPlan& plan) const override;

  Tensor alloc(const Shape& shape, DType dtype) override;
  Tensor to_device(const HostTensorView& view) override;
  void to_host(const Tensor& tensor, std::span<std::byte> out) override;
  void upload(std::span<const std::byte> bytes, Tensor& tensor) override;
  void synchronize() override;
  // Makes this backend's GPU the calling thread's current device (its allocations go there).
  void make_current();

  int device_index() const { return device_; }
  // The stream every op is enqueued on (a tensor-parallel group's NCCL collectives join it).
  cudaStream_t stream() const { return stream_; }

 protected:
  void matmul_vec_impl(const Tensor& w, const Tensor& x, Tensor& y) override;
  void matmul_impl(const Tensor& w, const Tensor& x, Tensor& y) override;

  void rmsnorm_impl(const Tensor& x, const Tensor& weight, Tensor& y, float eps) override;
  void softmax_impl(Tensor& x) override;
  void silu_impl(Tensor& x) override;
  void fused_silu_mul_impl(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void add_impl(const Tensor& a, const Tensor& b, Tensor& out) override;
  void rope_impl(Tensor& x, const Tensor& inv_freq, const RopeParams& params) override;
  void embedding_impl(const Tensor& table, const Tensor& ids, Tensor& out) override;

  void kv_store_impl(const Tensor& src, Tensor& cache, int pos0) override;
  void attention_scores_impl(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                             const AttentionParams& params) override;
  void weighted_sum_impl(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                         const AttentionParams& params) override;
  void attention_impl(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                      const AttentionParams& params) override;

 private:
  // y[n, rows] = x[n, cols] W^T: the mat-vec kernel for a few tokens, cuBLAS beyond.
  void linear(const Tensor& w, const float* x, int64_t n, float* y, std::string_view op);
  void linear_gemm(const Tensor& w, const float* x, int64_t n, float* y);
  // At least `floats` floats of device scratch (tiles of dequantised weights).
  float* scratch(size_t floats);

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<cuda::DeviceBuffer> scratch_;
};

}  // namespace torchless
