#pragma once
// The Metal backend: the Backend API over a MetalDevice (Apple GPU, or the CPU emulation of
// Metal). Ops (their operands checked by Backend) record dispatches into one command buffer per
// forward pass (MetalCommandRecorder; a very long pass is split into several, committed
// without waiting); synchronize() and to_host() commit and wait. Weights
// are wrapped zero-copy from mapped memory on unified-memory devices; activations and KV
// caches come from a size-bucketed buffer pool. Every dispatch's geometry is derived from
// its pipeline's real limits (threads per threadgroup, simdgroup width).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/backends/metal/metal_buffer_pool.h"
#include "torchless/backends/metal/metal_command_recorder.h"
#include "torchless/backends/metal/metal_device.h"
#include "torchless/backends/metal/metal_weight_views.h"

namespace torchless::metal {

struct MetalBackendStats {
  uint64_t command_buffers = 0;
  uint64_t dispatches = 0;
  uint64_t barriers = 0;
  uint64_t weight_bytes_read = 0;  // bytes of weight tensors bound to matmul/embedding kernels
  uint64_t threads = 0;            // threads launched (the recorder's work estimate)
};

}  // namespace torchless::metal

namespace torchless {

class MetalBackend final : public Backend {
 public:
  // Over the system's Apple GPU; throws Error saying why when there is none.
  MetalBackend();
  // Over any device layer (the emulated device in tests and `--backend metal-emulated`).
  MetalBackend(std::unique_ptr<metal::MetalDevice> device, std::string name);
  ~MetalBackend() override;

  // True when this build has the Apple device layer and the system has a usable Metal GPU.
  static bool is_available();
  static BackendInfo info();

  std::string_view name() const override { return name_; }
  DeviceInfo device() const override;
  std::string device_name() const;
  bool supports_weight_dtype(DType dtype) const override;
  bool supports_kv_dtype(DType dtype) const override {
    return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::Q8_0;
  }

  Tensor alloc(const Shape& shape, DType dtype) override;  // contents unspecified
  Tensor to_device(const HostTensorView& view) override;
  void to_host(const Tensor& tensor, std::span<std::byte> out) override;
  void upload(std::span<const std::byte> bytes, Tensor& tensor) override;
  void synchronize() override;
  bool supports_paged_attention() const override { return true; }

  // y = W x with the threadgroup-memory tiled kernel (F32 weights); same result as matmul_vec.
  void matmul_vec_tiled(const Tensor& w, const Tensor& x, Tensor& y);

  // Throws Error with numbers and a remedy (the iogpu.wired_limit_mb sysctl) when the plan
  // exceeds the device's recommended working set; warns when it is within 10% of it.
  std::string check_memory_plan(const MemoryPlan& plan) const override;

  // Binds later to_device() tensors that lie inside `region` (a whole mapped weight file) to a
  // few zero-copy buffers over it (metal_weight_views.h) instead of one per tensor.
  // `largest_tensor` is the largest such tensor's size in bytes. The caller keeps the region
  // mapped while tensors from it are alive. Ignored without unified memory (weights are copied).
  void map_host_region(std::span<const std::byte> region, size_t largest_tensor) override;

  // BackendOptions::batch_invariant: batched matmuls use the mat-vec kernel per token (the same
  // per-output order as matmul_vec) instead of the GEMM.
  void set_batch_invariant(bool on) { batch_invariant_ = on; }
  metal::MetalDevice& metal_device() { return *device_; }
  // Whether the backend ever dispatches `kernel_name` on a device like `info` (the GEMM kernels
  // and their probes need simdgroup matrices, BF16 kernels BF16 support); metal-selftest skips
  // the others.
  static bool uses_kernel(const metal::MetalDeviceInfo& info, std::string_view kernel_name);
  metal::MetalBackendStats stats() const;
  const metal::BufferPoolStats& pool_stats() const { return pool_->stats(); }

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
  // Host-visible Metal storage that no recorded, unfinished dispatch writes.
  bool host_readable(const Tensor& t) const override;

 private:
  struct Geometry {
    metal::MetalSize groups;
    metal::MetalSize threads;
  };
  const metal::MetalPipeline& pipeline(std::string_view name);
  // Threads per threadgroup for `wanted` threads: a multiple of the simdgroup width, within
  // the pipeline's limit.
  static uint32_t fit_threads(const metal::MetalPipeline& pipeline, uint64_t wanted);
  metal::BufferArg read(const Tensor& t) const;
  metal::BufferArg write(const Tensor& t) const;
  metal::BufferArg rows_arg(const Tensor& t, int64_t first_row, int64_t n_rows, bool written) const;
  template <typename Args>
  void run(const metal::MetalPipeline& pipeline, const Args& args,
           std::initializer_list<metal::BufferArg> buffers, size_t threadgroup_memory,
           Geometry geometry) {
    recorder_.dispatch(pipeline, &args, sizeof args, {buffers.begin(), buffers.size()},
                       threadgroup_memory, geometry.groups, geometry.threads);
  }
  void row_op(std::string_view kernel, const Tensor& x, const Tensor* weight, const Tensor& y,
              float eps);
  void elementwise(std::string_view kernel, std::initializer_list<metal::BufferArg> buffers,
                   int64_t n, int64_t period);
  void linear(const Tensor& w, const Tensor& x, Tensor& y, int64_t n_tokens, bool allow_gemm);
  void flash_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                       const AttentionParams& params);
  std::shared_ptr<metal::MetalBuffer> wrap(const std::byte* data, size_t nbytes, size_t& offset);

  std::unique_ptr<metal::MetalDevice> device_;
  std::string name_;
  std::shared_ptr<metal::MetalBufferPool> pool_;
  metal::MetalCommandRecorder recorder_;
  uint64_t weight_bytes_read_ = 0;
  bool batch_invariant_ = false;
  struct WrappedRegion {
    const std::byte* begin;
    const std::byte* end;
    std::weak_ptr<metal::MetalBuffer> buffer;
  };
  std::vector<WrappedRegion> wrapped_;
  std::vector<std::unique_ptr<metal::MetalWeightViews>> weight_views_;
};

}  // namespace torchless
