// Helpers shared by the shaders: the quantised block layouts (core/quant_blocks.h), element
// loads (weight_element) or 16-element decoders (weight_chunk) for every weight type,
// and threadgroup reductions.
#ifndef TORCHLESS_METAL_COMMON_H
#define TORCHLESS_METAL_COMMON_H

#include <metal_stdlib>
using namespace metal;

#include "metal_args.h"

// The block layouts, shared with the host (core/quant.h). The relative path keeps the shader
// sources self-contained for the embedder, the lint and the Metal compiler alike.
#include "../../../core/quant_blocks.h"

constant constexpr int kQBlock = TORCHLESS_QK;    // elements per Q8_0 / Q4_0 block
constant constexpr int kKBlock = TORCHLESS_QK_K;  // elements per Q4_K / Q6_K super-block
constant float kIQ4Levels[16] = TORCHLESS_IQ4_LEVELS;

// Weight types as template arguments (no function constants: see msl-emulator.md).
constant constexpr int kWeightF32 = 0;
constant constexpr int kWeightF16 = 1;
constant constexpr int kWeightBF16 = 2;
constant constexpr int kWeightQ8_0 = 3;
constant constexpr int kWeightQ4_0 = 4;
constant constexpr int kWeightQ4_K = 5;
constant constexpr int kWeightQ6_K = 6;
// Read with weight_chunk, 16 elements at a time.
constant constexpr int kWeightQ4_1 = 7;
constant constexpr int kWeightQ5_0 = 8;
constant constexpr int kWeightQ5_1 = 9;
constant constexpr int kWeightQ2_K = 10;
constant constexpr int kWeightQ3_K = 11;
constant constexpr int kWeightQ5_K = 12;
constant constexpr int kWeightIQ4_NL = 13;
constant constexpr int kWeightIQ4_XS = 14;
constant constexpr uint kChunk = 16;  // elements per weight_chunk

inline constexpr bool weight_is_chunked(int type) {
  return type >= kWeightQ4_1;
}

inline float bf16_to_float(uint16_t bits) {
  return as_type<float>(uint32_t(bits) << 16);
}

// KV cache rows of F32, F16 or Q8_0 (blocks of 32 along the row; a head starts on a block
// because head_dim % 32 == 0). kv_at points at element `element` of the cache (for Q8_0 the
// block holding it), kv_load reads element d of a head from there, as float.
inline device const float* kv_at(device const float* cache, uint64_t element) {
  return cache + element;
}
inline device const half* kv_at(device const half* cache, uint64_t element) {
  return cache + element;
}
inline device const BlockQ8_0* kv_at(device const BlockQ8_0* cache, uint64_t element) {
  return cache + element / kQBlock;
}
inline float kv_load(device const float* head, uint d) {
  return head[d];
}
inline float kv_load(device const half* head, uint d) {
  return float(head[d]);
}
inline float kv_load(device const BlockQ8_0* head, uint d) {
  device const BlockQ8_0* block = head + d / kQBlock;
  return float(block->d) * float(block->qs[d % kQBlock]);
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

// --- 16-element decoders ---------------------------------------------------------------------
// Chunk c of a row is elements 16c .. 16c + 15. Every block size is a multiple of 16 and every
// scale and min covers whole chunks, so a chunk reads its block's header once.

inline uint q5_high_bits(device const uint8_t* qh) {
  return uint(qh[0]) | (uint(qh[1]) << 8) | (uint(qh[2]) << 16) | (uint(qh[3]) << 24);
}

inline void q4_1_chunk(device const char* row, uint c, thread float* out) {
  device const BlockQ4_1* block = (device const BlockQ4_1*)row + c / 2;
  const uint shift = 4 * (c % 2);
  const float d = float(block->d);
  const float m = float(block->m);
  for (uint i = 0; i < kChunk; ++i) out[i] = d * float((uint(block->qs[i]) >> shift) & 15u) + m;
}

// The 5-bit code of element 16 (c % 2) + i of a Q5_0 / Q5_1 block (they share the layout).
inline uint q5_code(device const uint8_t* qs, uint qh, uint c, uint i) {
  const uint low = (uint(qs[i]) >> (4 * (c % 2))) & 15u;
  return low | (((qh >> (16 * (c % 2) + i)) & 1u) << 4);
}

inline void q5_0_chunk(device const char* row, uint c, thread float* out) {
  device const BlockQ5_0* block = (device const BlockQ5_0*)row + c / 2;
  const uint qh = q5_high_bits(block->qh);
  const float d = float(block->d);
  for (uint i = 0; i < kChunk; ++i) out[i] = d * (float(q5_code(block->qs, qh, c, i)) - 16.0f);
}

inline void q5_1_chunk(device const char* row, uint c, thread float* out) {
  device const BlockQ5_1* block = (device const BlockQ5_1*)row + c / 2;
  const uint qh = q5_high_bits(block->qh);
  const float d = float(block->d);
  const float m = float(block->m);
  for (uint i = 0; i < kChunk; ++i) out[i] = d * float(q5_code(block->qs, qh, c, i)) + m;
}

// Q2_K / Q3_K: chunk s (0..15) of a block is sub-block s, elements 128h + 32j + m0 .. + 15.
inline void q2_k_chunk(device const char* row, uint c, thread float* out) {
  device const BlockQ2_K* block = (device const BlockQ2_K*)row + c / 16;
  const uint s = c % 16;
  const uint h = s / 8;
  const uint j = (s % 8) / 2;
  const uint m0 = 16 * (s % 2);
  const uint sc = uint(block->scales[s]);
  const float scale = float(block->d) * float(sc & 15u);
  const float min_v = float(block->dmin) * float(sc >> 4);
  for (uint i = 0; i < kChunk; ++i) {
    const uint q = (uint(block->qs[32 * h + m0 + i]) >> (2 * j)) & 3u;
    out[i] = scale * float(q) - min_v;
  }
}

inline void q3_k_chunk(device const char* row, uint c, thread float* out) {
  device const BlockQ3_K* block = (device const BlockQ3_K*)row + c / 16;
  const uint s = c % 16;
  const uint h = s / 8;
  const uint j = (s % 8) / 2;
  const uint m0 = 16 * (s % 2);
  const uint low_scale = (uint(block->scales[s % 8]) >> (4 * (s / 8))) & 15u;
  const uint high_scale = (uint(block->scales[8 + s % 4]) >> (2 * (s / 4))) & 3u;
  const float scale = float(block->d) * (float(low_scale | (high_scale << 4)) - 32.0f);
  for (uint i = 0; i < kChunk; ++i) {
    const uint low = (uint(block->qs[32 * h + m0 + i]) >> (2 * j)) & 3u;
    const uint high = (uint(block->hmask[m0 + i]) >> (4 * h + j)) & 1u;
    out[i] = scale * (float(low | (high << 2)) - 4.0f);
  }
}

// The 6-bit scale (x) and min (y) of sub-block j (0..7) of a Q4_K / Q5_K block.
inline uint2 k_scale_min(device const uint8_t* scales, uint j) {
  if (j < 4) return uint2(uint(scales[j]) & 63u, uint(scales[j + 4]) & 63u);
  return uint2((uint(scales[j + 4]) & 15u) | ((uint(scales[j - 4]) >> 6) << 4),
               (uint(scales[j + 4]) >> 4) | ((uint(scales[j]) >> 6) << 4));
}

// Q5_K: chunk s (0..15) of a block is half s % 2 of sub-block s / 2.
inline void q5_k_chunk(device const char* row, uint c, thread float* out) {
  device const BlockQ5_K* block = (device const BlockQ5_K*)row + c / 16;
  const uint sub = (c % 16) / 2;
  const uint l0 = 16 * (c % 2);
  const uint2 sm = k_scale_min(block->scales, sub);
  const float scale = float(block->d) * float(sm.x);
  const float min_v = float(block->dmin) * float(sm.y);
  device const uint8_t* qs = block->qs + 32 * (sub / 2);
  for (uint i = 0; i < kChunk; ++i) {
    const uint low = (uint(qs[l0 + i]) >> (4 * (sub % 2))) & 15u;
    const uint high = (uint(block->qh[l0 + i]) >> sub) & 1u;
    out[i] = scale * float(low | (high << 4)) - min_v;
  }
}

inline void iq4_nibbles(device const uint8_t* qs, uint shift, float scale, thread float* out) {
  for (uint i = 0; i < kChunk; ++i) out[i] = scale * kIQ4Levels[(uint(qs[i]) >> shift) & 15u];
}

inline void iq4_nl_chunk(device const char* row, uint c, thread float* out) {
  device const BlockIQ4_NL* block = (device const BlockIQ4_NL*)row + c / 2;
  iq4_nibbles(block->qs, 4 * (c % 2), float(block->d), out);
}

inline void iq4_xs_chunk(device const char* row, uint c, thread float* out) {
  device const BlockIQ4_XS* block = (device const BlockIQ4_XS*)row + c / 16;
  const uint sub = (c % 16) / 2;
  const uint low = (uint(block->scales_l[sub / 2]) >> (4 * (sub % 2))) & 15u;
  const uint high = (uint(block->scales_h) >> (2 * sub)) & 3u;
  const float scale = float(block->d) * (float(low | (high << 4)) - 32.0f);
  iq4_nibbles(block->qs + 16 * sub, 4 * (c % 2), scale, out);
}

// Chunk c of a weight row of a chunked type (weight_is_chunked), dequantised to out[0..15].
template <int kType>
inline void weight_chunk(device const char* row, uint c, thread float* out) {
  if (kType == kWeightQ4_1) q4_1_chunk(row, c, out);
  if (kType == kWeightQ5_0) q5_0_chunk(row, c, out);
  if (kType == kWeightQ5_1) q5_1_chunk(row, c, out);
  if (kType == kWeightQ2_K) q2_k_chunk(row, c, out);
  if (kType == kWeightQ3_K) q3_k_chunk(row, c, out);
  if (kType == kWeightQ5_K) q5_k_chunk(row, c, out);
  if (kType == kWeightIQ4_NL) iq4_nl_chunk(row, c, out);
  if (kType == kWeightIQ4_XS) iq4_xs_chunk(row, c, out);
  if (!weight_is_chunked(kType)) {
    for (uint i = 0; i < kChunk; ++i) out[i] = 0.0f;  // never called: keeps every instance defined
  }
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
