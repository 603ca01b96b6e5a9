// MetalBackend's ops except attention: operand checks, argument packing and dispatch geometry.
#include <algorithm>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_kernel_args.h"
#include "torchless/backends/metal/metal_storage.h"
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

void check_f32(const Tensor& t, std::string_view op, std::string_view what) {
  if (t.empty()) fail("{}: {} is an empty tensor", op, what);
  if (t.dtype != DType::F32) fail("{}: {} must be f32, got {}", op, what, dtype_name(t.dtype));
}

void check_numel(const Tensor& t, int64_t n, std::string_view op, std::string_view what) {
  if (t.numel() != n) {
    fail("{}: {} has shape {} ({} elements), expected {}", op, what, t.shape.str(), t.numel(), n);
  }
}

std::string weight_kernel(std::string_view base, DType dtype) {
  switch (dtype) {
    case DType::F32:
      return std::string(base) + "_kernel";
    case DType::F16:
      return std::string(base) + "_f16_kernel";
    case DType::BF16:
      return std::string(base) + "_bf16_kernel";
    case DType::Q8_0:
      return std::string(base) + "_q8_0_kernel";
    case DType::Q4_0:
      return std::string(base) + "_q4_0_kernel";
    case DType::Q4_K:
      return std::string(base) + "_q4_K_kernel";
    case DType::Q6_K:
      return std::string(base) + "_q6_K_kernel";
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q5_K:
    case DType::IQ4_NL:
    case DType::IQ4_XS:
      // Kernel names spell the type as GGUF does ("q5_K", "iq4_xs").
      return fmt::format("{}_{}_kernel", base, dtype_name(dtype));
    default:
      fail("{}: weights of type {} are not supported by the Metal backend", base,
           dtype_name(dtype));
  }
}

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
  if (!supports_weight_dtype(w.dtype)) {
    fail("matmul: weights of type {} are not supported on {}", dtype_name(w.dtype), device_name());
  }
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  check_numel(x, n_tokens * cols, "matmul", "x");
  check_numel(y, n_tokens * rows, "matmul", "y");
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
    const metal::MetalPipeline& p = pipeline(weight_kernel("matmul", w.dtype));
    const uint32_t threads = kGemmSimdgroups * p.thread_execution_width();
    if (threads > p.max_total_threads_per_threadgroup()) {
      fail("matmul: pipeline {} allows {} threads, the kernel needs {}", p.name(),
           p.max_total_threads_per_threadgroup(), threads);
    }
    run(p, args, {read(w), read(x), write(y)}, kGemmThreadgroupBytes,
        {{ceil_div(rows, kGemmTile), ceil_div(n_tokens, kGemmTile), 1}, {threads, 1, 1}});
    return;
  }
  const metal::MetalPipeline& p = pipeline(weight_kernel("matmul_vec", w.dtype));
  const uint32_t width = p.thread_execution_width();
  const uint32_t simdgroups = std::max<uint32_t>(
      1, std::min(kMatvecSimdgroups, p.max_total_threads_per_threadgroup() / width));
  const uint32_t rows_per_group = simdgroups * kMatvecRowsPerSimdgroup;
  run(p, args, {read(w), read(x), write(y)}, 0,
      {{ceil_div(rows, rows_per_group), static_cast<uint32_t>(n_tokens), 1},
       {simdgroups * width, 1, 1}});
}

void MetalBackend::matmul_vec(const Tensor& w, const Tensor& x, Tensor& y) {
  check_f32(x, "matmul_vec", "x");
  check_f32(y, "matmul_vec", "y");
  linear(w, x, y, 1, false);
}

void MetalBackend::matmul(const Tensor& w, const Tensor& x, Tensor& y) {
  check_f32(x, "matmul", "x");
  check_f32(y, "matmul", "y");
  if (w.cols() == 0) fail("matmul: weights of shape {} have no columns", w.shape.str());
  linear(w, x, y, x.numel() / w.cols(), true);
}

void MetalBackend::matmul_vec_tiled(const Tensor& w, const Tensor& x, Tensor& y) {
  check_f32(w, "matmul_vec_tiled", "w");
  check_f32(x, "matmul_vec_tiled", "x");
  check_f32(y, "matmul_vec_tiled", "y");
  check_numel(x, w.cols(), "matmul_vec_tiled", "x");
  check_numel(y, w.rows(), "matmul_vec_tiled", "y");
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

void MetalBackend::rmsnorm(const Tensor& x, const Tensor& weight, Tensor& y, float eps) {
  check_f32(x, "rmsnorm", "x");
  check_f32(weight, "rmsnorm", "weight");
  check_f32(y, "rmsnorm", "y");
  check_numel(weight, x.cols(), "rmsnorm", "weight");
  check_numel(y, x.numel(), "rmsnorm", "y");
  // y may alias x; recorded as a read and a write of the same range.
  row_op("rmsnorm_kernel", x, &weight, y.reshape(x.shape), eps);
}

void MetalBackend::softmax(Tensor& x) {
  check_f32(x, "softmax", "x");
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

void MetalBackend::silu(Tensor& x) {
  check_f32(x, "silu", "x");
  elementwise("silu_kernel", {write(x)}, x.numel(), x.numel());
}

void MetalBackend::fused_silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  check_f32(gate, "fused_silu_mul", "gate");
  check_f32(up, "fused_silu_mul", "up");
  check_f32(out, "fused_silu_mul", "out");
  check_numel(up, gate.numel(), "fused_silu_mul", "up");
  check_numel(out, gate.numel(), "fused_silu_mul", "out");
  elementwise("fused_silu_mul_kernel", {read(gate), read(up), write(out)}, gate.numel(),
              gate.numel());
}

void MetalBackend::add(const Tensor& a, const Tensor& b, Tensor& out) {
  check_f32(a, "add", "a");
  check_f32(b, "add", "b");
  check_f32(out, "add", "out");
  check_numel(out, a.numel(), "add", "out");
  if (b.numel() != a.numel() && b.numel() != a.cols()) {
    fail("add: b has shape {}, expected {} or one row of {}", b.shape.str(), a.shape.str(),
         a.cols());
  }
  elementwise("add_kernel", {read(a), read(b), write(out)}, a.numel(), b.numel());
}

void MetalBackend::rope(Tensor& x, const Tensor& inv_freq, const RopeParams& params) {
  check_f32(x, "rope", "x");
  check_f32(inv_freq, "rope", "inv_freq");
  if (params.n_heads <= 0 || params.head_dim <= 0 || params.head_dim % 2 != 0) {
    fail("rope: n_heads {} and head_dim {} must be positive, head_dim even", params.n_heads,
         params.head_dim);
  }
  const int64_t per_token = int64_t{params.n_heads} * params.head_dim;
  if (x.numel() % per_token != 0) {
    fail("rope: x of shape {} is not a whole number of {} x {} tokens", x.shape.str(),
         params.n_heads, params.head_dim);
  }
  check_numel(inv_freq, params.head_dim / 2, "rope", "inv_freq");
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

void MetalBackend::embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  check_f32(out, "embedding", "out");
  if (ids.dtype != DType::I32) fail("embedding: ids must be i32, got {}", dtype_name(ids.dtype));
  if (!supports_weight_dtype(table.dtype)) {
    fail("embedding: tables of type {} are not supported on {}", dtype_name(table.dtype),
         device_name());
  }
  const int64_t n = ids.numel();
  check_numel(out, n * table.cols(), "embedding", "out");
  if (n == 0) return;
  check_ids(ids, table.rows());
  metal::EmbeddingArgs args{};
  args.row_bytes = static_cast<int64_t>(table.row_bytes());
  args.n_ids = static_cast<int32_t>(n);
  args.cols = static_cast<int32_t>(table.cols());
  args.table_rows = static_cast<int32_t>(table.rows());
  weight_bytes_read_ += static_cast<uint64_t>(n) * table.row_bytes();
  const metal::MetalPipeline& p = pipeline(weight_kernel("embedding", table.dtype));
  const uint32_t threads = fit_threads(p, std::min<uint64_t>(kRowThreads, table.cols()));
  run(p, args, {read(table), read(ids), write(out)}, 0,
      {{static_cast<uint32_t>(n), 1, 1}, {threads, 1, 1}});
}

void MetalBackend::check_ids(const Tensor& ids, int64_t table_rows) const {
  // Ids uploaded from the host are checked here, so a bad token fails at the call like on the
  // CPU. Ids that pending GPU work still writes cannot be read yet: the kernel then turns an
  // out-of-range id into a zero row rather than a stray read.
  const auto* storage = dynamic_cast<const metal::MetalStorage*>(ids.buffer.get());
  const std::byte* host = ids.data();
  if (!storage || !host || recorder_.writes(*storage->buffer())) return;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    int32_t id;
    std::memcpy(&id, host + i * sizeof id, sizeof id);
    if (id < 0 || id >= table_rows) {
      fail("embedding: token id {} at index {} is outside the table's {} rows", id, i, table_rows);
    }
  }
}

void MetalBackend::kv_store(const Tensor& src, Tensor& cache, int pos0) {
  check_f32(src, "kv_store", "src");
  if (cache.dtype != DType::F32 && cache.dtype != DType::F16) {
    fail("kv_store: cache must be f32 or f16, got {}", dtype_name(cache.dtype));
  }
  const int64_t n = src.numel() / std::max<int64_t>(cache.cols(), 1);
  check_numel(src, n * cache.cols(), "kv_store", "src");
  if (pos0 < 0 || pos0 + n > cache.rows()) {
    fail("kv_store: rows [{}, {}) outside a cache of {} rows", pos0, pos0 + n, cache.rows());
  }
  elementwise(cache.dtype == DType::F16 ? "kv_store_f16_kernel" : "kv_store_kernel",
              {read(src), rows_arg(cache, pos0, n, true)}, src.numel(), src.numel());
}

}  // namespace torchless
