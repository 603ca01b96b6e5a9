#pragma once
// The CUDA backend: ops are enqueued on one stream and run in order; to_host() and
// synchronize() wait for them. Weights are copied once to device memory in their own layout
// (never dequantised to a second copy) and read in place by the kernels of cuda_matvec.cu.
// Batched matmuls of more than a few tokens go through cuBLAS (cuda_linear_gemm.cpp): F16/BF16
// tensor-core GEMMs, quantised weights dequantised to F16 tiles in a scratch buffer. Mat-vecs of
// quantised weights multiply int8 activations (cuda_decode_kernels.h); a decode step is captured
// into one CUDA graph (cuda_graph.h) unless graphs are off.
#include <cstdint>
#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "torchless/backends/backend.h"
#include "torchless/backends/cuda/cuda_decode_kernels.h"
#include "torchless/backends/cuda/cuda_graph.h"
#include "torchless/backends/cuda/cuda_scratch.h"

typedef struct cublasContext* cublasHandle_t;

namespace torchless {

namespace cuda {
class DeviceBuffer;
class DevicePool;
class PinnedUploader;
}  // namespace cuda

class CudaBackend final : public Backend {
 public:
  // Throws Error when there is no such device. options.batch_invariant: batched matmuls run the
  // mat-vec kernel per token instead of cuBLAS, whose reduction order depends on the batch.
  // options.step_graphs: capture decode steps into CUDA graphs (TORCHLESS_CUDA_GRAPHS=1 or =0
  // overrides it).
  explicit CudaBackend(const BackendOptions& options = {}, int device = 0);
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
  bool supports_paged_attention() const override { return true; }
  bool supports_paged_kv_dtype(DType dtype) const override { return supports_kv_dtype(dtype); }

  Tensor alloc(const Shape& shape, DType dtype) override;
  Tensor to_device(const HostTensorView& view) override;
  // The model file whose tensors to_device() will copy (for the loading bar, cuda_upload.h).
  void map_host_region(std::span<const std::byte> region, size_t largest_tensor_bytes) override;
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
  // cuda_kv_ops.cpp
  void paged_kv_store_impl(const Tensor& src, Tensor& pool, const Tensor& slots) override;
  void paged_attention_impl(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                            const Tensor& tokens, const Tensor& block_tables, Tensor& out,
                            const PagedAttentionParams& params) override;

  void begin_step_impl() override;
  void end_step_impl() override;
  void cancel_step_impl() noexcept override;

 private:
  // The KV ops over Q8_0 caches (cuda_kv_ops.cpp), which the F32/F16 kernels leave to these.
  void q8_0_kv_store(const Tensor& src, Tensor& cache, int pos0);
  void q8_0_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                      const AttentionParams& params);
  void q8_0_attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                             const AttentionParams& params);
  void q8_0_weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                         const AttentionParams& params);

  // y[n, rows] = x[n, cols] W^T: the mat-vec kernel for a few tokens, cuBLAS beyond.
  void linear(const Tensor& w, const float* x, int64_t n, float* y, std::string_view op);
  void linear_gemm(const Tensor& w, const float* x, int64_t n, float* y);
  // The mat-vec kernels (cuda_decode.cpp): int8 activations for block types, vectorised loads
  // for float types, the reference kernel of cuda_matvec.cu for operands they cannot take.
  void matvec(const Tensor& w, const float* x, int64_t n, float* y, std::string_view op);
  // At least `floats` floats of device scratch (GEMM operands), reused by every op: ops run in
  // stream order, and a larger buffer is allocated only after a wait.
  float* scratch(size_t floats);
  // x[n, cols] quantised for matvec_q8: what the op just before left (fused_) when it wrote
  // exactly x and only mat-vecs of x ran since, else quantised now.
  cuda::ActivationQ8 quantised(const float* x, int64_t n, int64_t cols);
  cuda::ActivationQ8 activation_scratch(int64_t n, int64_t cols);
  // Fails inside a decode step: `what` (to_host, alloc, ...) would wait or break the capture.
  void require_no_step(std::string_view what) const;

  int device_ = 0;
  bool batch_invariant_ = false;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<cuda::DeviceBuffer> scratch_;

  // The activations an op wrote and quantised for the mat-vecs that follow it (rmsnorm,
  // fused_silu_mul), valid while the op count has moved only by those mat-vecs.
  struct FusedInput {
    const float* x = nullptr;
    int64_t n = 0, cols = 0;
    uint64_t op = 0;  // ops_issued() of the op that last produced or read it
  };
  FusedInput fused_;
  cuda::DeviceScratch activations_;

  bool step_graphs_ = true;
  int64_t steps_ = 0;  // decode steps begun
  cuda::StepGraph graph_;
  cuda::HostStaging staging_;
  cudaEvent_t step_done_ = nullptr;         // recorded after each step's launch: staging_ is free
  std::shared_ptr<cuda::DevicePool> pool_;  // alloc(): KV caches, activations
  std::unique_ptr<cuda::PinnedUploader> uploader_;  // to_device(): weights
  // Flash-decoding's partial results (cuda_flash_attention.h), allocated once with the backend
  // so that a decode step never allocates or waits (CUDA graph capture).
  std::unique_ptr<cuda::DeviceBuffer> decode_partials_;
};

}  // namespace torchless
