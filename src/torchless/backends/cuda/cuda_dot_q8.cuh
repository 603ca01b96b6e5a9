#pragma once
// Integer dot products of one 32-element unit of a weight row (a whole 32-element block, or
// sub-block s of a 256-element super-block) with the same 32 activations quantised to int8
// (cuda_matvec_q8.cu: q_i = round(x_i / d), d = max|x| / 127, s = d * sum q_i). The weight codes
// are unpacked four to a 32-bit word and multiplied with __dp4a; offsets and mins use s, so each
// result is the dot product with the quantised activations up to float rounding, the error the
// conformance suite's activation-quantisation bound allows (conformance_cases.cpp).
//
// The blocks are read where cuda_matvec_q8.cu staged them (shared memory, each block at its
// offset in the row, so as aligned as in global memory: kAlign, the alignment its layout gives
// when the row is): 16-byte reads for Q4_K and Q5_K, 4-byte ones where the block size is a
// multiple of 4, pairs of 2-byte reads for the others.
#include <cstdint>

#include "torchless/backends/cuda/cuda_quant.cuh"

namespace torchless::cuda {

// The activations of one unit: eight words of four int8 codes, the scale d and s = d * sum q.
struct ActUnit {
  int q[8];
  float d, s;
};

__device__ __forceinline__ uint32_t load_u32_a2(const uint8_t* p) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  return uint32_t(h[0]) | (uint32_t(h[1]) << 16);
}
__device__ __forceinline__ uint32_t load_u32_a4(const uint8_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}
// Eight words from 16-byte aligned memory.
__device__ __forceinline__ void load_8_a16(const uint8_t* p, uint32_t v[8]) {
  const uint4 a = reinterpret_cast<const uint4*>(p)[0];
  const uint4 b = reinterpret_cast<const uint4*>(p)[1];
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

__device__ __forceinline__ int dp4a(uint32_t a, int b, int acc) {
  return __dp4a(int(a), b, acc);
}
// Per-byte a - b (the codes and offsets are small: no byte wraps past a signed int8).
__device__ __forceinline__ uint32_t sub_bytes(uint32_t a, uint32_t b) {
  return __vsub4(a, b);
}
// The low 4 bits of h moved to bit 4 of bytes 0..3 (the fifth bit of Q5 codes).
__device__ __forceinline__ uint32_t spread_bits4(uint32_t h) {
  return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}

constexpr uint32_t pack_levels(int a, int b, int c, int d) {
  return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
         uint32_t(uint8_t(d)) << 24;
}
// kIQ4Levels (quant_iq4.h) mapped from four 4-bit indices (one per byte) to four int8 levels:
// two byte permutations pick from levels 0..7 and 8..15, bit 3 of each index chooses.
__device__ __forceinline__ uint32_t iq4_levels4(uint32_t idx) {
  constexpr uint32_t t0 = pack_levels(-127, -104, -83, -65), t1 = pack_levels(-49, -35, -22, -10);
  constexpr uint32_t t2 = pack_levels(1, 13, 25, 38), t3 = pack_levels(53, 69, 89, 113);
  const uint32_t sel =
      (idx & 0x7u) | ((idx >> 4) & 0x70u) | ((idx >> 8) & 0x700u) | ((idx >> 12) & 0x7000u);
  const uint32_t lo = __byte_perm(t0, t1, sel), hi = __byte_perm(t2, t3, sel);
  const uint32_t high = ((idx >> 3) & 0x01010101u) * 0xFFu;
  return (lo & ~high) | (hi & high);
}

template <typename Block>
struct DotQ8;

// --- 32-element blocks: qs[k] holds element k (low nibble) and k + 16 (high nibble) ---------

// sum over the 16 nibble bytes at qs (two-byte aligned) of codes minus `offset`, with the
// activations; high is the fifth bit of each element (Q5), 0 otherwise.
template <bool kAligned4>
__device__ __forceinline__ int dot_nibbles(const uint8_t* qs, uint32_t qh, uint32_t offset,
                                           const ActUnit& x) {
  int sum = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t v = kAligned4 ? load_u32_a4(qs + 4 * i) : load_u32_a2(qs + 4 * i);
    const uint32_t lo = (v & 0x0F0F0F0Fu) | spread_bits4(qh >> (4 * i));
    const uint32_t hi = ((v >> 4) & 0x0F0F0F0Fu) | spread_bits4(qh >> (16 + 4 * i));
    sum = dp4a(sub_bytes(lo, offset), x.q[i], sum);
    sum = dp4a(sub_bytes(hi, offset), x.q[4 + i], sum);
  }
  return sum;
}

template <>
struct DotQ8<BlockQ4_0> {
  static constexpr int kUnits = 1, kAlign = 2;
  __device__ static float dot(const BlockQ4_0& b, int, const ActUnit& x) {
    return f16(b.d) * x.d * float(dot_nibbles<false>(b.qs, 0, 0x08080808u, x));
  }
};

template <>
struct DotQ8<BlockQ4_1> {
  static constexpr int kUnits = 1, kAlign = 4;
  __device__ static float dot(const BlockQ4_1& b, int, const ActUnit& x) {
    return f16(b.d) * x.d * float(dot_nibbles<true>(b.qs, 0, 0, x)) + f16(b.m) * x.s;
  }
};

template <>
struct DotQ8<BlockQ5_0> {
  static constexpr int kUnits = 1, kAlign = 2;
  __device__ static float dot(const BlockQ5_0& b, int, const ActUnit& x) {
    const int sum = dot_nibbles<false>(b.qs, load_u32_a2(b.qh), 0x10101010u, x);
    return f16(b.d) * x.d * float(sum);
  }
};

template <>
struct DotQ8<BlockQ5_1> {
  static constexpr int kUnits = 1, kAlign = 4;
  __device__ static float dot(const BlockQ5_1& b, int, const ActUnit& x) {
    const int sum = dot_nibbles<true>(b.qs, load_u32_a4(b.qh), 0, x);
    return f16(b.d) * x.d * float(sum) + f16(b.m) * x.s;
  }
};

template <>
struct DotQ8<BlockQ8_0> {
  static constexpr int kUnits = 1, kAlign = 2;
  __device__ static float dot(const BlockQ8_0& b, int, const ActUnit& x) {
    const uint8_t* qs = reinterpret_cast<const uint8_t*>(b.qs);
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) sum = dp4a(load_u32_a2(qs + 4 * i), x.q[i], sum);
    return f16(b.d) * x.d * float(sum);
  }
};

template <>
struct DotQ8<BlockIQ4_NL> {
  static constexpr int kUnits = 1, kAlign = 2;
  __device__ static float dot(const BlockIQ4_NL& b, int, const ActUnit& x) {
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t v = load_u32_a2(b.qs + 4 * i);
      sum = dp4a(iq4_levels4(v & 0x0F0F0F0Fu), x.q[i], sum);
      sum = dp4a(iq4_levels4((v >> 4) & 0x0F0F0F0Fu), x.q[4 + i], sum);
    }
    return f16(b.d) * x.d * float(sum);
  }
};

// --- K types: unit s covers elements 32s..32s+31 of the super-block --------------------------

// Element e of Q2_K: (qs[32 (e / 128) + e % 32] >> 2 ((e % 128) / 32)) & 3, with scale and min
// nibbles in scales[e / 16].
template <>
struct DotQ8<BlockQ2_K> {
  static constexpr int kUnits = 8, kAlign = 4;
  __device__ static float dot(const BlockQ2_K& b, int s, const ActUnit& x) {
    const uint8_t* qs = b.qs + 32 * (s / 4);
    const int shift = 2 * (s % 4);
    int sum[2] = {0, 0}, xsum[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t q = (load_u32_a4(qs + 4 * i) >> shift) & 0x03030303u;
      sum[i / 4] = dp4a(q, x.q[i], sum[i / 4]);
      xsum[i / 4] = dp4a(0x01010101u, x.q[i], xsum[i / 4]);
    }
    const int sc0 = b.scales[2 * s], sc1 = b.scales[2 * s + 1];
    const int scaled = (sc0 & 0xF) * sum[0] + (sc1 & 0xF) * sum[1];
    const int mins = (sc0 >> 4) * xsum[0] + (sc1 >> 4) * xsum[1];
    return x.d * (f16(b.d) * float(scaled) - f16(b.dmin) * float(mins));
  }
};

// Element e of Q3_K: low bits as Q2_K, the high bit (hmask[e % 32] >> (e / 32)) & 1, code - 4,
// scale q3k_scale(e / 16).
template <>
struct DotQ8<BlockQ3_K> {
  static constexpr int kUnits = 8, kAlign = 2;
  __device__ static float dot(const BlockQ3_K& b, int s, const ActUnit& x) {
    const uint8_t* qs = b.qs + 32 * (s / 4);
    const int shift = 2 * (s % 4);
    int sum[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t low = (load_u32_a2(qs + 4 * i) >> shift) & 0x03030303u;
      const uint32_t high = ((load_u32_a2(b.hmask + 4 * i) >> s) & 0x01010101u) << 2;
      sum[i / 4] = dp4a(sub_bytes(low | high, 0x04040404u), x.q[i], sum[i / 4]);
    }
    const int scaled =
        q3k_scale_device(b.scales, 2 * s) * sum[0] + q3k_scale_device(b.scales, 2 * s + 1) * sum[1];
    return f16(b.d) * x.d * float(scaled);
  }
};

// Element e of Q4_K: (qs[32 (e / 64) + e % 32] >> 4 ((e / 32) % 2)) & 0xF, scale and min of
// sub-block e / 32.
template <>
struct DotQ8<BlockQ4_K> {
  static constexpr int kUnits = 8, kAlign = 16;
  __device__ static float dot(const BlockQ4_K& b, int s, const ActUnit& x) {
    uint32_t v[8];
    load_8_a16(b.qs + 32 * (s / 2), v);
    const int shift = 4 * (s % 2);
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) sum = dp4a((v[i] >> shift) & 0x0F0F0F0Fu, x.q[i], sum);
    int sc, mn;
    q4k_scale_min_device(s, b.scales, sc, mn);
    return f16(b.d) * float(sc) * x.d * float(sum) - f16(b.dmin) * float(mn) * x.s;
  }
};

// Q5_K: Q4_K's codes plus the fifth bit (qh[e % 32] >> (e / 32)) & 1.
template <>
struct DotQ8<BlockQ5_K> {
  static constexpr int kUnits = 8, kAlign = 16;
  __device__ static float dot(const BlockQ5_K& b, int s, const ActUnit& x) {
    uint32_t v[8], h[8];
    load_8_a16(b.qs + 32 * (s / 2), v);
    load_8_a16(b.qh, h);
    const int shift = 4 * (s % 2);
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t q = ((v[i] >> shift) & 0x0F0F0F0Fu) | (((h[i] >> s) & 0x01010101u) << 4);
      sum = dp4a(q, x.q[i], sum);
    }
    int sc, mn;
    q4k_scale_min_device(s, b.scales, sc, mn);
    return f16(b.d) * float(sc) * x.d * float(sum) - f16(b.dmin) * float(mn) * x.s;
  }
};

// Element e of Q6_K (h = e / 128, k = (e % 128) / 32, l = e % 32): low nibble of
// ql[64 h + 32 (k % 2) + l] >> 4 (k / 2), two high bits of qh[32 h + l] >> 2 k, code - 32, scale
// scales[8 h + 2 k + l / 16].
template <>
struct DotQ8<BlockQ6_K> {
  static constexpr int kUnits = 8, kAlign = 2;
  __device__ static float dot(const BlockQ6_K& b, int s, const ActUnit& x) {
    const int h = s / 4, k = s % 4;
    const uint8_t* ql = b.ql + 64 * h + 32 * (k % 2);
    const uint8_t* qh = b.qh + 32 * h;
    const int shift_l = 4 * (k / 2), shift_h = 2 * k;
    int sum[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t low = (load_u32_a2(ql + 4 * i) >> shift_l) & 0x0F0F0F0Fu;
      const uint32_t high = ((load_u32_a2(qh + 4 * i) >> shift_h) & 0x03030303u) << 4;
      sum[i / 4] = dp4a(sub_bytes(low | high, 0x20202020u), x.q[i], sum[i / 4]);
    }
    const int scaled = b.scales[8 * h + 2 * k] * sum[0] + b.scales[8 * h + 2 * k + 1] * sum[1];
    return f16(b.d) * x.d * float(scaled);
  }
};

// IQ4_XS: sub-block s is an IQ4_NL block's nibbles at qs + 16 s with a 6-bit scale.
template <>
struct DotQ8<BlockIQ4_XS> {
  static constexpr int kUnits = 8, kAlign = 8;
  __device__ static float dot(const BlockIQ4_XS& b, int s, const ActUnit& x) {
    const uint8_t* qs = b.qs + 16 * s;
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t v = load_u32_a4(qs + 4 * i);
      sum = dp4a(iq4_levels4(v & 0x0F0F0F0Fu), x.q[i], sum);
      sum = dp4a(iq4_levels4((v >> 4) & 0x0F0F0F0Fu), x.q[4 + i], sum);
    }
    const int ls =
        ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4);
    return f16(b.d) * float(ls - 32) * x.d * float(sum);
  }
};

}  // namespace torchless::cuda
