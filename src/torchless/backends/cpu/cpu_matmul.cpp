// matmul_vec and matmul of the CPU backend: activation quantisation, tiling and
// threading around the SIMD dot kernels of cpu_matmul_kernels.cpp.
#include <algorithm>
#include <cassert>

#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/backends/cpu/cpu_memory.h"
#include "torchless/backends/cpu/cpu_quant_dot.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

bool has_fast_kernel(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0 ||
         t == DType::Q4_0 || cpu::has_quant_dot(t);
}

bool uses_q8_activations(DType t) {
  return cpu::activation_block(t) > 0;
}

// Rows the kernels take together: 16 (the rows in the lanes of the Q4_0 VNNI kernel) divides
// every register tile's height. Row blocks and the mat-vec's thread chunks are multiples of
// it, so only the matrix's last rows make a partial group.
constexpr int64_t kRowUnit = 16;

// Weight rows per parallel chunk of a mat-vec: at least ~16 KiB of weights, so that the pool's
// hand-off (about a microsecond) stays small next to the chunk's memory traffic.
int64_t matvec_grain(const Tensor& w) {
  return std::max<int64_t>(1, 16384 / static_cast<int64_t>(std::max<size_t>(w.row_bytes(), 1)));
}

// Tokens per tile of a batched matmul: their activations (~256 KiB) stay in L2 while a block
// of weight rows meets all of them.
int64_t token_tile(int64_t cols, size_t bytes_per_element) {
  const int64_t per_token = cols * static_cast<int64_t>(bytes_per_element);
  const int64_t tokens = (256 * 1024) / std::max<int64_t>(per_token, 1);
  return std::clamp<int64_t>(tokens / 4 * 4, 4, 64);
}

// Weight rows per block of a batched matmul: ~192 KiB of them, so a block stays in L2 while
// every token tile passes over it and each weight is read from memory once per call.
int64_t row_block(size_t row_bytes) {
  const int64_t rows = (192 * 1024) / static_cast<int64_t>(std::max<size_t>(row_bytes, 1));
  return std::clamp<int64_t>(rows / kRowUnit * kRowUnit, kRowUnit, 64);
}

}  // namespace

void CpuBackend::matmul_vec_impl(const Tensor& w, const Tensor& x, Tensor& y) {
  linear(w, cpu::host_f32(x), 1, cpu::host_f32(y));
}

void CpuBackend::matmul_impl(const Tensor& w, const Tensor& x, Tensor& y) {
  linear(w, cpu::host_f32(x), x.rows(), cpu::host_f32(y));
}

// Weights of every dtype supports_weight_dtype() accepts (checked by Backend).
void CpuBackend::linear(const Tensor& w, const float* x, int64_t n, float* y) {
  assert(supports_weight_dtype(w.dtype) && w.data() != nullptr);
  if (n == 0 || w.rows() == 0) return;
  if (has_fast_kernel(w.dtype)) {
    linear_blocked(w, x, n, y);
  } else {
    linear_dequantized(w, x, n, y);
  }
}

void CpuBackend::quantize_activations(DType wtype, const float* x, int64_t n, int64_t cols) {
  const size_t values = static_cast<size_t>(n * cols);
  const int block = cpu::activation_block(wtype);
  const int group = cpu::activation_sum_group(wtype);
  if (xq_.size() < values) xq_.resize(values);
  if (xq8_.size() < values) xq8_.resize(values);
  if (xd_.size() < values / block) xd_.resize(values / block);
  if (group > 0 && xs_.size() < values / group) xs_.resize(values / group);
  pool_.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      cpu::quantize_activation_row(wtype, x + t * cols, cols, xq_.data() + t * cols,
                                   xd_.data() + t * (cols / block),
                                   group > 0 ? xs_.data() + t * (cols / group) : nullptr);
      cpu::narrow_codes(xq_.data() + t * cols, cols, xq8_.data() + t * cols);
    }
  });
}

void CpuBackend::linear_blocked(const Tensor& w, const float* x, int64_t n, float* y) {
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  cpu::MatmulOperands m;
  m.wtype = w.dtype;
  m.w = w.data();
  m.w_row_bytes = w.row_bytes();
  m.w_repacked = w.layout == WeightLayout::CpuRows16;
  m.cols = cols;
  m.y = y;
  m.y_stride = rows;
  if (uses_q8_activations(w.dtype)) {
    quantize_activations(w.dtype, x, n, cols);
    m.xq = xq_.data();
    m.xq8 = xq8_.data();
    m.xd = xd_.data();
    m.xsum = xs_.data();
  } else {
    m.x = x;
  }
  if (n <= 4) {
    // Decode, also a batch of up to 4 concurrent streams: threads split the rows, in whole
    // groups of kRowUnit, and every tile meets all the tokens.
    const int64_t units = (rows + kRowUnit - 1) / kRowUnit;
    const int64_t grain = (matvec_grain(w) + kRowUnit - 1) / kRowUnit;
    pool_.parallel_for(units, grain, [&](int64_t u0, int64_t u1, int) {
      cpu::matmul_tile(m, u0 * kRowUnit, std::min(rows, u1 * kRowUnit), 0, n);
    });
    return;
  }
  const int64_t tile = token_tile(cols, uses_q8_activations(w.dtype) ? 2 : 4);
  // F16/BF16 weights are widened in registers, per tile: widening a block once into F32
  // scratch measured ~13% slower at 64 tokens (twice the bytes per weight load).
  const int64_t block = row_block(w.row_bytes());
  const int64_t blocks = (rows + block - 1) / block;
  pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * block;
      const int64_t r1 = std::min(rows, r0 + block);
      for (int64_t t0 = 0; t0 < n; t0 += tile) {
        cpu::matmul_tile(m, r0, r1, t0, std::min(n, t0 + tile));
      }
    }
  });
}

// Types without a dedicated kernel: each weight row is dequantised once into per-thread
// scratch and dotted with every activation row.
void CpuBackend::linear_dequantized(const Tensor& w, const float* x, int64_t n, float* y) {
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  const std::byte* wp = w.data();
  reserve_thread_scratch(static_cast<size_t>(cols));
  pool_.parallel_for(rows, matvec_grain(w), [&](int64_t r0, int64_t r1, int thread) {
    float* row = thread_scratch(thread);
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(w.dtype, wp + static_cast<size_t>(r) * w.row_bytes(), row, cols);
      for (int64_t t = 0; t < n; ++t) y[t * rows + r] = cpu::dot_f32(row, x + t * cols, cols);
    }
  });
}

}  // namespace torchless
