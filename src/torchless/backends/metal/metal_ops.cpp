// MetalBackend's ops except attention: argument packing and dispatch geometry. Operands were
// checked by Backend (op_checks.h); what fails here is a limit of the kernels.
#include <algorithm>
#include <cassert>
#include <string>

#include <fmt/format.h>

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_kernel_args.h"
#include "torchless/backends/metal/metal_storage.h"
#include "torchless/backends/metal/metal_weight_types.h"
#include "torchless/backends/op_checks.h"
#include "torchless/core/error.h"

namespace torchless {

using metal::BufferArg;
using metal::MetalSize;

namespace {

// Rows each simdgroup of matmul_vec_* computes (kRowsPerSimdgroup in matmul_vec.metal) and
// simdgroups per threadgroup: 2 x 4 = 8 rows per threadgroup keeps many small groups in flight.
constexpr uint32_t kMatvecRowsPerSimdgroup = 4;
constexpr uint32_t kMatvecSimdgroups = 2;
// matmul.metal: 32 x 32 output tiles, four simdgroups, 8 KiB of threadgroup memory.
constexpr uint32_t kGemmTile = 32;
constexpr uint32_t kGemmSimdgroups = 4;
constexpr size_t kGemmThreadgroupBytes = 2 * kGemmTile * kGemmTile * sizeof(float);
// Below this many tokens the batched mat-vec reads the weights fewer times per useful FLOP.
constexpr int64_t kGemmMinTokens = 8;
constexpr uint64_t kRowThreads = 256;          // rmsnorm/softmax/rope/embedding threadgroups
constexpr uint64_t kElementwiseGroups = 1024;  // grid-stride kernels cover the rest

uint32_t ceil_div(uint64_t a, uint64_t b) {
  return static_cast<uint32_t>((a + b - 1) / b);
}

size_t scratch_bytes(uint32_t threads, uint32_t width) {
  const size_t simdgroups = (threads + width - 1) / width;
  return (simdgroups * sizeof(float) + 15) / 16 * 16;
}

}  // namespace

void MetalBackend::linear(const Tensor& w, const Tensor& x, Tensor& y, int64_t n_tokens,
                          bool allow_gemm) {
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  if (rows == 0 || n_tokens == 0) return;
  if (rows > INT32_MAX || cols > INT32_MAX || n_tokens > 65535) {
    fail("matmul: {} x {} weights with {} tokens exceed the kernel's index range", rows, cols,
         n_tokens);
  }
  metal::MatmulArgs args{};
  args.w_row_bytes = static_cast<int64_t>(w.row_bytes());
  args.rows = static_cast<int32_t>(rows);
  args.cols = static_cast<int32_t>(cols);
  args.n_tokens = static_cast<int32_t>(n_tokens);
  weight_bytes_read_ += w.nbytes();
  const bool gemm = allow_gemm && !batch_invariant_ && n_tokens >= kGemmMinTokens &&
                    device_->info().has_simdgroup_matrix;
  if (gemm) {
    const metal::MetalPipeline& p = pipeline(metal::weight_kernel("matmul", w.dtype));
    const uint32_t threads = kGemmSimdgroups * p.thread_execution_width();
    if (threads > p.max_total_threads_per_threadgroup()) {
      fail("matmul: pipeline {} allows {} threads, the kernel needs {}", p.name(),
           p.max_total_threads_per_threadgroup(), threads);
    }
    run(p, args, {read(w), read(x), write(y)}, kGemmThreadgroupBytes,
        {{ceil_div(rows, kGemmTile), ceil_div(n_tokens, kGemmTile), 1}, {threads, 1, 1}});
    return;
  }
  const metal::MetalPipeline& p = pipeline(metal::weight_kernel("matmul_vec", w.dtype));
  const uint32_t width = p.thread_execution_width();
  const uint32_t simdgroups = std::max<uint32_t>(
      1, std::min(kMatvecSimdgroups, p.max_total_threads_per_threadgroup() / width));
  const uint32_t rows_per_group = simdgroups * kMatvecRowsPerSimdgroup;
  run(p, args, {read(w), read(x), write(y)}, 0,
      {{ceil_div(rows, rows_per_group), static_cast<uint32_t>(n_tokens), 1},
       {simdgroups * width, 1, 1}});
}

void MetalBackend::matmul_vec_impl(const Tensor& w, const Tensor& x, Tensor& y) {
  linear(w, x, y, 1, false);
}

void MetalBackend::matmul_impl(const Tensor& w, const Tensor& x, Tensor& y) {
  linear(w, x, y, x.rows(), true);
}

// Not a Backend op, so it runs matmul_vec's shared checks itself, plus its F32-only rule.
void MetalBackend::matmul_vec_tiled(const Tensor& w, const Tensor& x, Tensor& y) {
  op_checks::check_matmul_vec(*this, w, x, y);
  op_checks::require_f32(w, "matmul_vec_tiled", "w");
  if (w.rows() == 0) return;
  const metal::MetalPipeline& p = pipeline("matmul_vec_tiled_kernel");
  const uint32_t width = p.thread_execution_width();
  const uint32_t simdgroups =
      std::max<uint32_t>(1, std::min(4u, p.max_total_threads_per_threadgroup() / width));
  const uint32_t tile = std::min<uint32_t>(1024, device_->info().max_threadgroup_memory / 2 / 4);
  metal::MatmulArgs args{};
  args.w_row_bytes = static_cast<int64_t>(w.row_bytes());
  args.rows = static_cast<int32_t>(w.rows());
  args.cols = static_cast<int32_t>(w.cols());
  args.n_tokens = 1;
  args.tile = static_cast<int32_t>(tile);
  weight_bytes_read_ += w.nbytes();
  run(p, args, {read(w), read(x), write(y)}, tile * sizeof(float),
      {{ceil_div(w.rows(), simdgroups * kMatvecRowsPerSimdgroup), 1, 1},
       {simdgroups * width, 1, 1}});
}

void MetalBackend::row_op(std::string_view kernel, const Tensor& x, const Tensor* weight,
                          const Tensor& y, float eps) {
  const int64_t rows = x.rows();
  const int64_t cols = x.cols();
  if (rows == 0 || cols == 0) return;
  metal::RowArgs args{};
  args.rows = static_cast<int32_t>(rows);
  args.cols = static_cast<int32_t>(cols);
  args.eps = eps;
  const metal::MetalPipeline& p = pipeline(kernel);
  const uint32_t threads =
      fit_threads(p, std::min<uint64_t>(kRowThreads, static_cast<uint64_t>(cols)));
  const size_t scratch = scratch_bytes(threads, p.thread_execution_width());
  const Geometry geometry{{static_cast<uint32_t>(rows), 1, 1}, {threads, 1, 1}};
  if (weight) {
    run(p, args, {read(x), read(*weight), write(y)}, scratch, geometry);
  } else {
    run(p, args, {write(x)}, scratch, geometry);
  }
}

void MetalBackend::rmsnorm_impl(const Tensor& x, const Tensor& weight, Tensor& y, float eps) {
  // y may alias x; recorded as a read and a write of the same range.
  row_op("rmsnorm_kernel", x, &weight, y.reshape(x.shape), eps);
}

void MetalBackend::softmax_impl(Tensor& x) {
  row_op("softmax_kernel", x, nullptr, x, 0.0f);
}

void MetalBackend::elementwise(std::string_view kernel, std::initializer_list<BufferArg> buffers,
                               int64_t n, int64_t period) {
  if (n == 0) return;
  const metal::MetalPipeline& p = pipeline(kernel);
  const uint32_t threads = fit_threads(p, kRowThreads);
  const uint32_t groups =
      std::min<uint32_t>(ceil_div(static_cast<uint64_t>(n), threads), kElementwiseGroups);
  const metal::ElementwiseArgs args{n, period};
  run(p, args, buffers, 0, {{groups, 1, 1}, {threads, 1, 1}});
}

void MetalBackend::silu_impl(Tensor& x) {
  elementwise("silu_kernel", {write(x)}, x.numel(), x.numel());
}

void MetalBackend::fused_silu_mul_impl(const Tensor& gate, const Tensor& up, Tensor& out) {
  elementwise("fused_silu_mul_kernel", {read(gate), read(up), write(out)}, gate.numel(),
              gate.numel());
}

void MetalBackend::add_impl(const Tensor& a, const Tensor& b, Tensor& out) {
  elementwise("add_kernel", {read(a), read(b), write(out)}, a.numel(), b.numel());
}

void MetalBackend::rope_impl(Tensor& x, const Tensor& inv_freq, const RopeParams& params) {
  const int64_t per_token = int64_t{params.n_heads} * params.head_dim;
  const int64_t n_tokens = x.numel() / per_token;
  if (n_tokens == 0) return;
  metal::RopeArgs args{};
  args.n_tokens = static_cast<int32_t>(n_tokens);
  args.n_heads = params.n_heads;
  args.head_dim = params.head_dim;
  args.pos0 = params.pos0;
  args.neox = params.neox ? 1 : 0;
  const metal::MetalPipeline& p = pipeline("rope_kernel");
  const uint32_t threads = fit_threads(p, std::min<uint64_t>(kRowThreads, params.head_dim / 2));
  run(p, args, {write(x), read(inv_freq)}, 0,
      {{static_cast<uint32_t>(n_tokens * params.n_heads), 1, 1}, {threads, 1, 1}});
}

// Ids the host could read were range-checked by Backend::embedding; ids that pending GPU work
// still writes cannot be read yet: the kernel turns an out-of-range one into a zero row rather
// than a stray read.
void MetalBackend::embedding_impl(const Tensor& table, const Tensor& ids, Tensor& out) {
  const int64_t n = ids.numel();
  if (n == 0) return;
  metal::EmbeddingArgs args{};
  args.row_bytes = static_cast<int64_t>(table.row_bytes());
  args.n_ids = static_cast<int32_t>(n);
  args.cols = static_cast<int32_t>(table.cols());
  args.table_rows = static_cast<int32_t>(table.rows());
  weight_bytes_read_ += static_cast<uint64_t>(n) * table.row_bytes();
  const metal::MetalPipeline& p = pipeline(metal::weight_kernel("embedding", table.dtype));
  const uint32_t threads = fit_threads(p, std::min<uint64_t>(kRowThreads, table.cols()));
  run(p, args, {read(table), read(ids), write(out)}, 0,
      {{static_cast<uint32_t>(n), 1, 1}, {threads, 1, 1}});
}

bool MetalBackend::host_readable(const Tensor& t) const {
  const auto* storage = dynamic_cast<const metal::MetalStorage*>(t.buffer.get());
  return storage != nullptr && t.data() != nullptr && !recorder_.writes(*storage->buffer());
}

void MetalBackend::kv_store_impl(const Tensor& src, Tensor& cache, int pos0) {
  const int64_t n = src.numel() / cache.cols();
  const BufferArg rows = rows_arg(cache, pos0, n, true);
  if (cache.dtype == DType::Q8_0) {
    // One thread per block of 32; a Q8_0 tensor's cols are a multiple of 32 by construction.
    const int64_t blocks = src.numel() / dtype_block_size(DType::Q8_0);
    elementwise("kv_store_q8_0_kernel", {read(src), rows}, blocks, blocks);
    return;
  }
  elementwise(cache.dtype == DType::F16 ? "kv_store_f16_kernel" : "kv_store_kernel",
              {read(src), rows}, src.numel(), src.numel());
}

}  // namespace torchless
