// Helpers shared by the shaders: quantised block layouts (GGUF's byte layouts exactly),
// element loads for every weight type, and threadgroup reductions.
#ifndef TORCHLESS_METAL_COMMON_H
#define TORCHLESS_METAL_COMMON_H

#include <metal_stdlib>
using namespace metal;

#include "metal_args.h"

constant constexpr int kQBlock = 32;  // elements per Q8_0 / Q4_0 block

struct BlockQ8_0 {
  half d;
  int8_t qs[32];
};

// qs[j]: low nibble = element j, high nibble = element j + 16; value = d * (q - 8).
struct BlockQ4_0 {
  half d;
  uint8_t qs[16];
};

constant constexpr int kKBlock = 256;  // elements per Q4_K / Q6_K super-block

// 8 sub-blocks of 32; 6-bit scale and min per sub-block packed in scales[12]; qs[32c + i] holds
// element i of sub-block 2c (low nibble) and of sub-block 2c + 1 (high nibble).
// value = d * scale_j * q - dmin * min_j.
struct BlockQ4_K {
  half d;
  half dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};

// 16 sub-blocks of 16, int8 scales; two halves of 128 elements. In half h, element l + 32k
// (l < 32, k < 4) has low 4 bits in ql[64h + l + 32(k & 1)] (high nibble for k >= 2) and top
// 2 bits in bits 2k..2k+1 of qh[32h + l]; value = d * scales[8h + l / 16 + 2k] * (q - 32).
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  half d;
};

// Weight types as template arguments (no function constants: see msl-emulator.md).
constant constexpr int kWeightF32 = 0;
constant constexpr int kWeightF16 = 1;
constant constexpr int kWeightBF16 = 2;
constant constexpr int kWeightQ8_0 = 3;
constant constexpr int kWeightQ4_0 = 4;
constant constexpr int kWeightQ4_K = 5;
constant constexpr int kWeightQ6_K = 6;

inline float bf16_to_float(uint16_t bits) {
  return as_type<float>(uint32_t(bits) << 16);
}

inline float q8_0_element(device const char* row, uint k) {
  device const BlockQ8_0* block = (device const BlockQ8_0*)row + k / kQBlock;
  return float(block->d) * float(block->qs[k % kQBlock]);
}

inline float q4_0_element(device const char* row, uint k) {
  device const BlockQ4_0* block = (device const BlockQ4_0*)row + k / kQBlock;
  const uint j = k % kQBlock;
  const uint byte = uint(block->qs[j % 16]);
  const uint q = j < 16 ? (byte & 15u) : (byte >> 4);
  return float(block->d) * (float(q) - 8.0f);
}

inline float q4_k_element(device const char* row, uint k) {
  device const BlockQ4_K* block = (device const BlockQ4_K*)row + k / kKBlock;
  const uint e = k % kKBlock;
  const uint j = e / 32;
  const uint byte = uint(block->qs[32 * (j / 2) + e % 32]);
  const uint q = (j % 2 == 0) ? (byte & 15u) : (byte >> 4);
  uint scale;
  uint min_q;
  if (j < 4) {
    scale = uint(block->scales[j]) & 63u;
    min_q = uint(block->scales[j + 4]) & 63u;
  } else {
    scale = (uint(block->scales[j + 4]) & 15u) | ((uint(block->scales[j - 4]) >> 6) << 4);
    min_q = (uint(block->scales[j + 4]) >> 4) | ((uint(block->scales[j]) >> 6) << 4);
  }
  return float(block->d) * float(scale) * float(q) - float(block->dmin) * float(min_q);
}

inline float q6_k_element(device const char* row, uint k) {
  device const BlockQ6_K* block = (device const BlockQ6_K*)row + k / kKBlock;
  const uint e = k % kKBlock;
  const uint h = e / 128;
  const uint l = e % 32;
  const uint part = (e % 128) / 32;
  const uint low_byte = uint(block->ql[64 * h + l + 32 * (part & 1u)]);
  const uint low = part < 2 ? (low_byte & 15u) : (low_byte >> 4);
  const uint high = (uint(block->qh[32 * h + l]) >> (2 * part)) & 3u;
  const int q = int(low | (high << 4)) - 32;
  return float(block->d) * float(block->scales[8 * h + l / 16 + 2 * part]) * float(q);
}

// Element k of a weight row, dequantised to float. Dead branches fold away per instantiation.
template <int kType>
inline float weight_element(device const char* row, uint k) {
  if (kType == kWeightF32) return ((device const float*)row)[k];
  if (kType == kWeightF16) return float(((device const half*)row)[k]);
  if (kType == kWeightBF16) return bf16_to_float(((device const uint16_t*)row)[k]);
  if (kType == kWeightQ8_0) return q8_0_element(row, k);
  if (kType == kWeightQ4_K) return q4_k_element(row, k);
  if (kType == kWeightQ6_K) return q6_k_element(row, k);
  return q4_0_element(row, k);
}

// Sum (or max) of v over the threadgroup, returned to every thread. scratch holds one float per
// simdgroup. The trailing barrier lets the caller reuse scratch at once.
inline float threadgroup_sum(float v, threadgroup float* scratch, uint lane, uint simdgroup,
                             uint n_simdgroups) {
  v = simd_sum(v);
  if (lane == 0) scratch[simdgroup] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float total = 0.0f;
  for (uint i = 0; i < n_simdgroups; ++i) total += scratch[i];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return total;
}

inline float threadgroup_max(float v, threadgroup float* scratch, uint lane, uint simdgroup,
                             uint n_simdgroups) {
  v = simd_max(v);
  if (lane == 0) scratch[simdgroup] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float result = -INFINITY;
  for (uint i = 0; i < n_simdgroups; ++i) result = max(result, scratch[i]);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return result;
}

#endif  // TORCHLESS_METAL_COMMON_H
