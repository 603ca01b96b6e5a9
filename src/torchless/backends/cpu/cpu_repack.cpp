#include "torchless/backends/cpu/cpu_repack.h"

#include <algorithm>
#include <cstring>

#include "torchless/backends/cpu/cpu_quant_dot.h"
#include "torchless/core/quant.h"

namespace torchless::cpu {
namespace {

const BlockQ4_K* q4k_row(const std::byte* src, int64_t cols, int64_t r) {
  const size_t row_bytes = dtype_row_bytes(DType::Q4_K, cols);
  return reinterpret_cast<const BlockQ4_K*>(src + static_cast<size_t>(r) * row_bytes);
}

// Block b of row j of the group (qs words, expanded scales and mins, block scales).
void put_block(const BlockQ4_K& blk, int j, RepackedQ4K& p) {
  for (int c = 0; c < 4; ++c) {
    for (int g = 0; g < 8; ++g) std::memcpy(&p.qs[c][g][4 * j], blk.qs + 32 * c + 4 * g, 4);
  }
  for (int sub = 0; sub < 8; ++sub)
    q4k_scale_min(sub, blk.scales, p.scales[sub][j], p.mins[sub][j]);
  p.d[j] = blk.d;
  p.dmin[j] = blk.dmin;
}

// The inverse of put_block. The 12 scale bytes are fully determined by the 8 scales and 8
// mins (q4k_scale_min reads every bit once), so re-encoding them is exact.
void get_block(const RepackedQ4K& p, int j, BlockQ4_K& blk) {
  for (int c = 0; c < 4; ++c) {
    for (int g = 0; g < 8; ++g) std::memcpy(blk.qs + 32 * c + 4 * g, &p.qs[c][g][4 * j], 4);
  }
  for (int k = 0; k < 4; ++k) {
    const int sc_hi = p.scales[k + 4][j], mn_hi = p.mins[k + 4][j];
    blk.scales[k] = static_cast<uint8_t>(p.scales[k][j] | ((sc_hi >> 4) << 6));
    blk.scales[k + 4] = static_cast<uint8_t>(p.mins[k][j] | ((mn_hi >> 4) << 6));
    blk.scales[k + 8] = static_cast<uint8_t>((sc_hi & 0xF) | ((mn_hi & 0xF) << 4));
  }
  blk.d = p.d[j];
  blk.dmin = p.dmin[j];
}

}  // namespace

bool repackable(DType type, int64_t cols) {
  return type == DType::Q4_K && cols > 0 && cols % kQK_K == 0;
}

bool can_repack(DType type, int64_t cols) {
  return repackable(type, cols) && has_vnni_kernels();
}

size_t repacked_bytes(DType type, int64_t rows, int64_t cols) {
  (void)type;  // Q4_K only (can_repack)
  const int64_t groups = (rows + kRepackRows - 1) / kRepackRows;
  return static_cast<size_t>(groups * (cols / kQK_K)) * sizeof(RepackedQ4K);
}

void repack_groups(DType type, const std::byte* src, int64_t rows, int64_t cols, std::byte* dst,
                   int64_t g0, int64_t g1) {
  (void)type;
  const int64_t blocks = cols / kQK_K;
  auto* out = reinterpret_cast<RepackedQ4K*>(dst);
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t first = g * kRepackRows;
    const int count = static_cast<int>(std::min<int64_t>(kRepackRows, rows - first));
    RepackedQ4K* group = out + g * blocks;
    if (count < kRepackRows) std::memset(group, 0, static_cast<size_t>(blocks) * sizeof(*group));
    for (int j = 0; j < count; ++j) {
      const BlockQ4_K* row = q4k_row(src, cols, first + j);
      for (int64_t b = 0; b < blocks; ++b) put_block(row[b], j, group[b]);
    }
  }
}

void unpack_rows(DType type, const std::byte* src, int64_t cols, int64_t r0, int64_t r1,
                 std::byte* dst) {
  (void)type;
  const int64_t blocks = cols / kQK_K;
  const auto* in = reinterpret_cast<const RepackedQ4K*>(src);
  auto* out = reinterpret_cast<BlockQ4_K*>(dst);
  for (int64_t r = r0; r < r1; ++r) {
    const RepackedQ4K* group = in + (r / kRepackRows) * blocks;
    const int j = static_cast<int>(r % kRepackRows);
    for (int64_t b = 0; b < blocks; ++b) get_block(group[b], j, out[(r - r0) * blocks + b]);
  }
}

}  // namespace torchless::cpu
