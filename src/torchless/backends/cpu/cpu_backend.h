#pragma once
// The CPU backend: every op runs at once, split over a persistent thread pool, with SIMD
// kernels chosen at run time (cpu_kernels.h). Weights are read in place from the mapped file.
// Scratch memory (quantised activations, per-thread rows) grows to the largest call seen and
// is then reused, so the decode loop allocates nothing.
#include <cstdint>
#include <string>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/core/thread_pool.h"

namespace torchless {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options = {});

  static BackendInfo info();  // for discover_backends()

  std::string_view name() const override { return "cpu"; }
  DeviceInfo device() const override;
  bool supports_weight_dtype(DType dtype) const override;
  bool supports_kv_dtype(DType dtype) const override {
    return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::Q8_0;
  }
  // Weights are mapped (the OS can page them); the KV cache and scratch must fit in memory.
  std::string check_memory_plan(const MemoryPlan& plan) const override;
  int threads() const { return pool_.size(); }

  Tensor alloc(const Shape& shape, DType dtype) override;
  Tensor to_device(const HostTensorView& view) override;
  // Q4_K matrices are repacked (cpu_repack.h) where the VNNI kernels run (the environment's
  // TORCHLESS_CPU_REPACK=0 turns it off, =force on for every CPU); a mapped source's pages
  // are then released.
  Tensor to_device_matrix(const HostTensorView& view, bool mapped) override;
  bool repacks_matrix(DType dtype, int64_t cols) const override;
  // The repacked copy of a matrix whose layout cpu::repackable() accepts, on any CPU (the
  // kernels of every target read it; to_device_matrix picks it only where it pays). `mapped`:
  // the view lies in a read-only file mapping, whose pages are released afterwards.
  Tensor repack_matrix(const HostTensorView& view, bool mapped);
  void to_host(const Tensor& tensor, std::span<std::byte> out) override;
  void upload(std::span<const std::byte> bytes, Tensor& tensor) override;
  void synchronize() override {}
  bool supports_paged_attention() const override { return true; }
  bool supports_paged_kv_dtype(DType dtype) const override { return supports_kv_dtype(dtype); }

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
  void paged_kv_store_impl(const Tensor& src, Tensor& pool, const Tensor& slots) override;
  void paged_attention_impl(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                            const Tensor& tokens, const Tensor& block_tables, Tensor& out,
                            const PagedAttentionParams& params) override;

 private:
  // y[n, rows] = x[n, cols] W^T for any supported weight dtype.
  void linear(const Tensor& w, const float* x, int64_t n, float* y);
  void linear_blocked(const Tensor& w, const float* x, int64_t n, float* y);
  void linear_dequantized(const Tensor& w, const float* x, int64_t n, float* y);
  // Fills xq_, xd_ and xs_ with n activation rows in the layout `wtype` takes (cpu_quant_dot.h).
  void quantize_activations(DType wtype, const float* x, int64_t n, int64_t cols);
  // Per-thread F32 scratch of at least `count` floats; call before parallel_for.
  void reserve_thread_scratch(size_t count);
  float* thread_scratch(int thread) { return thread_scratch_[static_cast<size_t>(thread)].data(); }

  ThreadPool pool_;
  std::string device_name_;
  std::vector<int16_t> xq_;  // Q8 activations for quantised weights
  std::vector<int8_t> xq8_;  // the same codes narrowed to int8, for the VNNI kernels
  std::vector<float> xd_;    // their block scales
  std::vector<int16_t> xs_;  // sums of their codes per group, for weights with offsets
  std::vector<std::vector<float>> thread_scratch_;
};

}  // namespace torchless
