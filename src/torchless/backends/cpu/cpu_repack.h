#pragma once
// Weights repacked at load into the layout the VNNI mat-vec and batch kernels consume directly
// (cpu_quant_vnni-inl.h): 16 rows interleaved in the 32-bit lanes of a vector, nibbles already
// transposed and the 6-bit sub-block scales and mins of Q4_K expanded to bytes, so a block of
// 16 rows meets an activation with no shuffles and no scale unpacking. The transform only
// moves bytes: every integer and float the kernels compute is the one they compute from the
// plain blocks, so results are unchanged.
//
// Layout of a repacked [rows, cols] Q4_K tensor: ceil(rows / 16) groups of 16 rows, each the
// cols / 256 RepackedQ4K blocks of its rows in column order. Rows past the last one in the
// final group are zero (their lanes are computed and never stored).
#include <cstddef>
#include <cstdint>

#include "torchless/core/dtype.h"

namespace torchless::cpu {

inline constexpr int kRepackRows = 16;

// One 256-column super-block of 16 Q4_K rows (2368 bytes for 16 x 144 plain: +2.8 %). Lane j of
// every 64-byte vector belongs to row j.
struct RepackedQ4K {
  // qs[c][g] lane j = bytes 32c + 4g .. 32c + 4g + 3 of row j's qs (g = 4 half + i, i.e. 16 half
  // + 4i): low nibbles are elements 4g .. 4g + 3 of sub-block 2c, high nibbles the same of
  // sub-block 2c + 1.
  uint8_t qs[4][8][64];
  uint8_t scales[8][kRepackRows];  // 6-bit sub-block scales, [sub-block][row]
  uint8_t mins[8][kRepackRows];    // 6-bit sub-block mins
  uint16_t d[kRepackRows];         // block scale (F16 bits)
  uint16_t dmin[kRepackRows];      // block min scale (F16 bits)
};
static_assert(sizeof(RepackedQ4K) == 2368 && sizeof(RepackedQ4K) % 64 == 0);

// Whether a [rows, cols] matrix of this type has a repacked layout: Q4_K whose rows are whole
// super-blocks. Every target's kernels read it (cpu_quant_dot.cpp), but only the VNNI ones
// without unpacking, so the backend repacks only where they run (can_repack).
bool repackable(DType type, int64_t cols);

// repackable() on a CPU that runs the VNNI kernels.
bool can_repack(DType type, int64_t cols);

// Bytes of a repacked [rows, cols] tensor.
size_t repacked_bytes(DType type, int64_t rows, int64_t cols);

// Writes groups [g0, g1) of 16 rows of the plain [rows, cols] matrix `src` (rows row_bytes
// apart) into `dst`, the start of the whole repacked tensor.
void repack_groups(DType type, const std::byte* src, int64_t rows, int64_t cols, std::byte* dst,
                   int64_t g0, int64_t g1);

// Writes plain rows [r0, r1) of the repacked [rows, cols] tensor `src` to `dst` (contiguous
// plain rows): the exact inverse of repack_groups.
void unpack_rows(DType type, const std::byte* src, int64_t cols, int64_t r0, int64_t r1,
                 std::byte* dst);

}  // namespace torchless::cpu
