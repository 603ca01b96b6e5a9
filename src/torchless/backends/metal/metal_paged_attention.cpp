// MetalBackend's paged KV store and paged attention (paged_attention.metal), for the
// continuous-batching engine. Shapes are checked above the backend (paged_checks.h); the index
// tensors' values are read by the kernels on the device.
#include <algorithm>

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_kernel_args.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

constexpr uint32_t kMaxDimsPerLane = 8;  // paged_attention.metal
constexpr uint32_t kStoreThreads = 256;
constexpr uint32_t kStoreGroups = 1024;

}  // namespace

void MetalBackend::paged_kv_store_impl(const Tensor& src, Tensor& pool, const Tensor& slots) {
  const int64_t n = src.numel();
  if (n == 0) return;
  const metal::MetalPipeline& p =
      pipeline(pool.dtype == DType::F16 ? "paged_kv_store_f16_kernel" : "paged_kv_store_kernel");
  const uint32_t threads = fit_threads(p, kStoreThreads);
  const uint32_t groups =
      static_cast<uint32_t>(std::min<int64_t>((n + threads - 1) / threads, int64_t{kStoreGroups}));
  const metal::PagedStoreArgs args{n, static_cast<int32_t>(pool.cols()), 0};
  run(p, args, {read(src), read(slots), write(pool)}, 0, {{groups, 1, 1}, {threads, 1, 1}});
}

void MetalBackend::paged_attention_impl(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                        const Tensor& tokens, const Tensor& block_tables,
                                        Tensor& out, const PagedAttentionParams& params) {
  const metal::MetalPipeline& p = pipeline(k_pool.dtype == DType::F16 ? "paged_attention_f16_kernel"
                                                                      : "paged_attention_kernel");
  const uint32_t width = p.thread_execution_width();
  if (static_cast<uint32_t>(params.head_dim) > kMaxDimsPerLane * width) {
    fail("paged_attention: head_dim {} exceeds {} (8 per lane of a {}-wide simdgroup)",
         params.head_dim, kMaxDimsPerLane * width, width);
  }
  metal::PagedAttentionArgs args{};
  args.n_tokens = params.n_tokens;
  args.n_heads = params.n_heads;
  args.n_kv_heads = params.n_kv_heads;
  args.head_dim = params.head_dim;
  args.window = params.window;
  args.block_size = params.block_size;
  args.max_blocks = static_cast<int32_t>(block_tables.cols());
  args.scale = params.scale;
  run(p, args, {read(q), read(k_pool), read(v_pool), read(tokens), read(block_tables), write(out)},
      0,
      {{static_cast<uint32_t>(params.n_heads), static_cast<uint32_t>(params.n_tokens), 1},
       {width, 1, 1}});
}

}  // namespace torchless
