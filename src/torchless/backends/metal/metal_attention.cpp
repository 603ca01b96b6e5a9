// MetalBackend's attention ops: the spec's primitives (attention_scores, weighted_sum) and the
// fused flash-decoding attention over the KV cache (flash_attention.metal). Operands were
// checked by Backend (op_checks.h); what fails here is a limit of the kernels.
#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_kernel_args.h"
#include "torchless/backends/metal/metal_storage.h"
#include "torchless/core/error.h"

namespace torchless {

using metal::BufferArg;

namespace {

constexpr uint32_t kMaxDimsPerLane = 8;   // flash_attention.metal
constexpr uint32_t kScoreSimdgroups = 4;  // attention_scores: simdgroups per threadgroup
constexpr int32_t kKeysPerScoreGroup = 64;
constexpr int64_t kMinSplitKeys = 64;  // flash decoding: keys per split at least
constexpr int64_t kMaxSplits = 32;
constexpr int64_t kSplitTokenLimit = 16;  // prefill batches parallelise over tokens instead

metal::AttentionArgs pack(const AttentionParams& p) {
  metal::AttentionArgs args{};
  args.n_tokens = p.n_tokens;
  args.pos0 = p.pos0;
  args.n_heads = p.n_heads;
  args.n_kv_heads = p.n_kv_heads;
  args.head_dim = p.head_dim;
  args.window = p.window;
  args.scale = p.scale;
  args.n_splits = 1;
  return args;
}

// The kernel of `family` ("attention", ...) for a cache of `dtype`: the suffixes of the
// instantiations in attention.metal and flash_attention.metal.
std::string kernel_for(std::string_view family, DType dtype) {
  const std::string_view suffix = dtype == DType::F16    ? "_f16"
                                  : dtype == DType::Q8_0 ? "_q8_0"
                                                         : "";
  return fmt::format("{}{}_kernel", family, suffix);
}

uint32_t ceil_div(uint64_t a, uint64_t b) {
  return static_cast<uint32_t>((a + b - 1) / b);
}

}  // namespace

void MetalBackend::attention_scores_impl(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                         const AttentionParams& params) {
  const int64_t n_keys = int64_t{params.pos0} + 1;
  metal::AttentionArgs args = pack(params);
  args.scores_stride = static_cast<int32_t>(scores.cols());
  args.keys_per_group = kKeysPerScoreGroup;
  const metal::MetalPipeline& p = pipeline(kernel_for("attention_scores", k_cache.dtype));
  const uint32_t width = p.thread_execution_width();
  const uint32_t simdgroups = std::max<uint32_t>(
      1, std::min(kScoreSimdgroups, p.max_total_threads_per_threadgroup() / width));
  run(p, args, {read(q), rows_arg(k_cache, 0, n_keys, false), write(scores)}, 0,
      {{ceil_div(n_keys, kKeysPerScoreGroup), static_cast<uint32_t>(params.n_heads), 1},
       {simdgroups * width, 1, 1}});
}

void MetalBackend::weighted_sum_impl(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                                     const AttentionParams& params) {
  const int64_t n_keys = int64_t{params.pos0} + 1;
  metal::AttentionArgs args = pack(params);
  args.scores_stride = static_cast<int32_t>(scores.cols());
  const metal::MetalPipeline& p = pipeline(kernel_for("weighted_sum", v_cache.dtype));
  const uint32_t threads = fit_threads(p, std::min<uint64_t>(256, params.head_dim));
  run(p, args, {read(scores), rows_arg(v_cache, 0, n_keys, false), write(out)}, 0,
      {{ceil_div(params.head_dim, threads), static_cast<uint32_t>(params.n_heads), 1},
       {threads, 1, 1}});
}

void MetalBackend::attention_impl(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                  Tensor& out, const AttentionParams& params) {
  flash_attention(q, k_cache, v_cache, out, params);
}

void MetalBackend::flash_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                   Tensor& out, const AttentionParams& params) {
  const metal::MetalPipeline& p = pipeline(kernel_for("attention", k_cache.dtype));
  const uint32_t width = p.thread_execution_width();
  const uint32_t group_heads = static_cast<uint32_t>(params.n_heads / params.n_kv_heads);
  if (static_cast<uint32_t>(params.head_dim) > kMaxDimsPerLane * width) {
    fail("attention: head_dim {} exceeds {} (8 per lane of a {}-wide simdgroup)", params.head_dim,
         kMaxDimsPerLane * width, width);
  }
  if (group_heads * width > p.max_total_threads_per_threadgroup()) {
    fail("attention: {} query heads per KV head need {} threads; pipeline {} allows {}",
         group_heads, group_heads * width, p.name(), p.max_total_threads_per_threadgroup());
  }
  const int64_t n_keys = int64_t{params.pos0} + params.n_tokens;
  metal::AttentionArgs args = pack(params);
  // Decode splits long key ranges so that enough threadgroups run (flash decoding); prefill
  // batches already have a threadgroup per token.
  int64_t split_len = n_keys;
  if (params.n_tokens < kSplitTokenLimit && n_keys > 2 * kMinSplitKeys) {
    split_len = std::max(kMinSplitKeys, (n_keys + kMaxSplits - 1) / kMaxSplits);
    split_len = (split_len + 31) / 32 * 32;
  }
  const int64_t n_splits = (n_keys + split_len - 1) / split_len;
  args.n_splits = static_cast<int32_t>(n_splits);
  args.split_len = static_cast<int32_t>(split_len);
  const BufferArg k = rows_arg(k_cache, 0, n_keys, false);
  const BufferArg v = rows_arg(v_cache, 0, n_keys, false);
  const Geometry geometry{
      {static_cast<uint32_t>(n_splits), static_cast<uint32_t>(params.n_kv_heads),
       static_cast<uint32_t>(params.n_tokens)},
      {group_heads * width, 1, 1}};
  if (n_splits == 1) {
    // The kernel normalises and writes `out` itself; partials are unused but must be bound.
    run(p, args, {read(q), k, v, write(out), write(out)}, 0, geometry);
    return;
  }
  const Tensor partials = alloc(
      Shape{int64_t{params.n_tokens} * params.n_heads * n_splits, params.head_dim + 2}, DType::F32);
  run(p, args, {read(q), k, v, write(out), write(partials)}, 0, geometry);
  const metal::MetalPipeline& merge = pipeline("attention_merge_kernel");
  const uint32_t threads = fit_threads(merge, std::min<uint64_t>(256, params.head_dim));
  run(merge, args, {read(partials), write(out)}, 0,
      {{static_cast<uint32_t>(params.n_heads), static_cast<uint32_t>(params.n_tokens), 1},
       {threads, 1, 1}});
}

}  // namespace torchless
