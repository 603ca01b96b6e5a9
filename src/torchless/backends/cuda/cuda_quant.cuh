#pragma once
// Device-side readers of the weight layouts: for each block type, the 8 consecutive elements
// 8j..8j+7 of one block as floats. The layouts are core/quant.h's and core/quant_iq4.h's (ggml's
// block_* byte for byte); 8 consecutive elements never straddle a sub-block of any type, so one
// scale (and min) serves all eight.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "torchless/core/quant.h"
#include "torchless/core/quant_iq4.h"

namespace torchless::cuda {

__device__ inline float f16(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}
__device__ inline float bf16(uint16_t bits) {
  return __bfloat162float(__ushort_as_bfloat16(bits));
}

// kIQ4Levels (quant_iq4.h) in device memory.
static __device__ constexpr int8_t kIQ4LevelsDevice[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// The nibble codes of elements 8j..8j+7 of a 32-element block whose qs[k] holds element k in its
// low nibble and element k + 16 in its high one (Q4_0, Q4_1, Q5_*, IQ4_NL).
__device__ inline void nibbles8(const uint8_t* qs, int j, int q[8]) {
  const int shift = j < 2 ? 0 : 4;
  const uint8_t* p = qs + (j & 1) * 8;
#pragma unroll
  for (int i = 0; i < 8; ++i) q[i] = (p[i] >> shift) & 0xF;
}

__device__ inline uint32_t load_u32_bytes(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

template <typename Block>
struct Quant;

template <>
struct Quant<BlockQ4_0> {
  static constexpr int kBlock = 32;
  __device__ static void dequant8(const BlockQ4_0& b, int j, float v[8]) {
    int q[8];
    nibbles8(b.qs, j, q);
    const float d = f16(b.d);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = d * float(q[i] - 8);
  }
};

template <>
struct Quant<BlockQ4_1> {
  static constexpr int kBlock = 32;
  __device__ static void dequant8(const BlockQ4_1& b, int j, float v[8]) {
    int q[8];
    nibbles8(b.qs, j, q);
    const float d = f16(b.d), m = f16(b.m);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = d * float(q[i]) + m;
  }
};

template <>
struct Quant<BlockQ5_0> {
  static constexpr int kBlock = 32;
  __device__ static void dequant8(const BlockQ5_0& b, int j, float v[8]) {
    int q[8];
    nibbles8(b.qs, j, q);
    const uint32_t qh = load_u32_bytes(b.qh) >> (8 * j);
    const float d = f16(b.d);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = d * float((q[i] | int((qh >> i) & 1) << 4) - 16);
  }
};

template <>
struct Quant<BlockQ5_1> {
  static constexpr int kBlock = 32;
  __device__ static void dequant8(const BlockQ5_1& b, int j, float v[8]) {
    int q[8];
    nibbles8(b.qs, j, q);
    const uint32_t qh = load_u32_bytes(b.qh) >> (8 * j);
    const float d = f16(b.d), m = f16(b.m);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = d * float(q[i] | int((qh >> i) & 1) << 4) + m;
  }
};

template <>
struct Quant<BlockQ8_0> {
  static constexpr int kBlock = 32;
  __device__ static void dequant8(const BlockQ8_0& b, int j, float v[8]) {
    const float d = f16(b.d);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = d * float(b.qs[8 * j + i]);
  }
};

template <>
struct Quant<BlockIQ4_NL> {
  static constexpr int kBlock = 32;
  __device__ static void dequant8(const BlockIQ4_NL& b, int j, float v[8]) {
    int q[8];
    nibbles8(b.qs, j, q);
    const float d = f16(b.d);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = d * float(kIQ4LevelsDevice[q[i]]);
  }
};

// --- K types: super-blocks of 256; element e = 8j + i ----------------------------------------

template <>
struct Quant<BlockQ2_K> {
  static constexpr int kBlock = 256;
  __device__ static void dequant8(const BlockQ2_K& b, int j, float v[8]) {
    const int e = 8 * j, h = e / 128, k = (e % 128) / 32, m = e % 32;
    const uint8_t sc = b.scales[e / 16];
    const float scale = f16(b.d) * float(sc & 0xF), min = f16(b.dmin) * float(sc >> 4);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = scale * float((b.qs[32 * h + m + i] >> (2 * k)) & 3) - min;
  }
};

__device__ inline int q3k_scale_device(const uint8_t* scales, int s) {
  const int low = (scales[s % 8] >> (4 * (s / 8))) & 0xF;
  const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - 32;
}

template <>
struct Quant<BlockQ3_K> {
  static constexpr int kBlock = 256;
  __device__ static void dequant8(const BlockQ3_K& b, int j, float v[8]) {
    const int e = 8 * j, h = e / 128, k = (e % 128) / 32, m = e % 32;
    const float scale = f16(b.d) * float(q3k_scale_device(b.scales, e / 16));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int low = (b.qs[32 * h + m + i] >> (2 * k)) & 3;
      const int high = (b.hmask[m + i] >> (4 * h + k)) & 1;
      v[i] = scale * float(low + 4 * high - 4);
    }
  }
};

// q4k_scale_min (quant.h) on the device.
__device__ inline void q4k_scale_min_device(int s, const uint8_t* scales, int& scale, int& min) {
  if (s < 4) {
    scale = scales[s] & 63;
    min = scales[s + 4] & 63;
  } else {
    scale = (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4);
    min = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

template <>
struct Quant<BlockQ4_K> {
  static constexpr int kBlock = 256;
  __device__ static void dequant8(const BlockQ4_K& b, int j, float v[8]) {
    const int e = 8 * j, sub = e / 32, c = e / 64, s = sub % 2, l = e % 32;
    int sc, mn;
    q4k_scale_min_device(sub, b.scales, sc, mn);
    const float scale = f16(b.d) * float(sc), min = f16(b.dmin) * float(mn);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = scale * float((b.qs[32 * c + l + i] >> (4 * s)) & 0xF) - min;
  }
};

template <>
struct Quant<BlockQ5_K> {
  static constexpr int kBlock = 256;
  __device__ static void dequant8(const BlockQ5_K& b, int j, float v[8]) {
    const int e = 8 * j, sub = e / 32, c = e / 64, s = sub % 2, l = e % 32;
    int sc, mn;
    q4k_scale_min_device(sub, b.scales, sc, mn);
    const float scale = f16(b.d) * float(sc), min = f16(b.dmin) * float(mn);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int q = ((b.qs[32 * c + l + i] >> (4 * s)) & 0xF) | (((b.qh[l + i] >> sub) & 1) << 4);
      v[i] = scale * float(q) - min;
    }
  }
};

template <>
struct Quant<BlockQ6_K> {
  static constexpr int kBlock = 256;
  __device__ static void dequant8(const BlockQ6_K& b, int j, float v[8]) {
    const int e = 8 * j, h = e / 128, k = (e % 128) / 32, l = e % 32;
    const float scale = f16(b.d) * float(b.scales[8 * h + l / 16 + 2 * k]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int low = (b.ql[64 * h + 32 * (k & 1) + l + i] >> (4 * (k >> 1))) & 0xF;
      const int high = (b.qh[32 * h + l + i] >> (2 * k)) & 3;
      v[i] = scale * float((low | (high << 4)) - 32);
    }
  }
};

template <>
struct Quant<BlockIQ4_XS> {
  static constexpr int kBlock = 256;
  __device__ static void dequant8(const BlockIQ4_XS& b, int j, float v[8]) {
    const int e = 8 * j, s = e / 32;
    const int ls =
        (((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4));
    const float scale = f16(b.d) * float(ls - 32);
    int q[8];
    nibbles8(b.qs + 16 * s, (e % 32) / 8, q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = scale * float(kIQ4LevelsDevice[q[i]]);
  }
};

// Plain element types.
__device__ inline float load_elem(const float* p, int64_t i) {
  return p[i];
}
__device__ inline float load_elem(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
__device__ inline float load_elem(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

// Calls f(Block{}) for a block dtype, f(Element{}) (float, __half, __nv_bfloat16) for a plain
// one, and returns false for a dtype no kernel reads.
template <typename F>
bool dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32:
      f(float{});
      return true;
    case DType::F16:
      f(__half{});
      return true;
    case DType::BF16:
      f(__nv_bfloat16{});
      return true;
    case DType::Q4_0:
      f(BlockQ4_0{});
      return true;
    case DType::Q4_1:
      f(BlockQ4_1{});
      return true;
    case DType::Q5_0:
      f(BlockQ5_0{});
      return true;
    case DType::Q5_1:
      f(BlockQ5_1{});
      return true;
    case DType::Q8_0:
      f(BlockQ8_0{});
      return true;
    case DType::Q2_K:
      f(BlockQ2_K{});
      return true;
    case DType::Q3_K:
      f(BlockQ3_K{});
      return true;
    case DType::Q4_K:
      f(BlockQ4_K{});
      return true;
    case DType::Q5_K:
      f(BlockQ5_K{});
      return true;
    case DType::Q6_K:
      f(BlockQ6_K{});
      return true;
    case DType::IQ4_NL:
      f(BlockIQ4_NL{});
      return true;
    case DType::IQ4_XS:
      f(BlockIQ4_XS{});
      return true;
    default:
      return false;
  }
}

template <typename T>
inline constexpr bool kIsPlain =
    std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

}  // namespace torchless::cuda
