// K-quant reference code. Layouts follow ggml's block_q*_K (ggml-common.h) and its reference
// dequantisers (ggml-quants.c); the quantisers are our own simple min/max scale choice, not
// ggml's error-minimising search, so they are less accurate than llama-quantize but produce
// bit-compatible blocks.
#include <algorithm>
#include <cmath>

#include "torchless/core/half.h"
#include "torchless/core/quant_k.h"

namespace torchless::quant_k {
namespace {

int nearest(float x) {
  return static_cast<int>(std::nearbyint(x));
}

float inverse(float d) {
  return d != 0.0f ? 1.0f / d : 0.0f;
}

// A super-block scale as stored (fp16), nudged up so that the largest sub-block scale still
// fits in `levels` steps after fp16 rounding.
uint16_t super_scale(float max_sub, int levels) {
  return fp32_to_fp16(max_sub / static_cast<float>(levels) * 1.001f);
}

// --- Q2_K: 16 sub-blocks of 16, 4-bit scale and min, 2-bit codes ------------------------------
// Element 128h + 32j + m (h < 2, j < 4, m < 32): bits 2j..2j+1 of qs[32h + m].

void dequantize_q2_k_block(const BlockQ2_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int i = 0; i < kQK_K; ++i) {
    const int h = i / 128, j = (i % 128) / 32, m = i % 32;
    const int q = (b.qs[32 * h + m] >> (2 * j)) & 3;
    const uint8_t sc = b.scales[i / 16];
    y[i] = d * static_cast<float>(sc & 0xF) * static_cast<float>(q) -
           dmin * static_cast<float>(sc >> 4);
  }
}

// --- Q3_K: 16 sub-blocks of 16, 6-bit signed scales, 3-bit signed codes -----------------------
// Element 128h + 32j + m: low bits 2j..2j+1 of qs[32h + m], high bit (4h + j) of hmask[m];
// code = low + 4*high - 4. Scales: q3k_scale (quant.h).

void dequantize_q3_k_block(const BlockQ3_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int i = 0; i < kQK_K; ++i) {
    const int h = i / 128, j = (i % 128) / 32, m = i % 32;
    const int low = (b.qs[32 * h + m] >> (2 * j)) & 3;
    const int high = (b.hmask[m] >> (4 * h + j)) & 1;
    y[i] = d * static_cast<float>(q3k_scale(b.scales, i / 16)) *
           static_cast<float>(low + 4 * high - 4);
  }
}

// --- Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins (q4k_scale_min) ------------------
// Element 64c + 32s + l (c < 4, s < 2, l < 32): nibble s of qs[32c + l]; for Q5_K the 5th bit
// is bit 2c + s of qh[l].

int q4k_code(const uint8_t* qs, int i) {
  const int c = i / 64, s = (i % 64) / 32, l = i % 32;
  return (qs[32 * c + l] >> (4 * s)) & 0xF;
}

int q5k_high(const uint8_t* qh, int i) {
  return (qh[i % 32] >> (i / 32)) & 1;
}

template <typename Block, bool kFiveBit>
void dequantize_q45_k_block(const Block& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int sub = 0; sub < 8; ++sub) {
    uint8_t sc, mn;
    q4k_scale_min(sub, b.scales, sc, mn);
    const float scale = d * sc, min = dmin * mn;
    for (int i = 32 * sub; i < 32 * sub + 32; ++i) {
      int q = q4k_code(b.qs, i);
      if constexpr (kFiveBit) q |= q5k_high(b.qh, i) << 4;
      y[i] = scale * static_cast<float>(q) - min;
    }
  }
}

void pack_q4k_scales(const int* sc, const int* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
}

// Chooses scales/mins of the 8 sub-blocks for codes 0..levels and returns the codes.
template <typename Block>
void quantize_q45_k_block(const float* x, Block& b, int levels, int* codes) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int sub = 0; sub < 8; ++sub) {
    const float* xs = x + 32 * sub;
    const float lo = std::min(0.0f, *std::min_element(xs, xs + 32));
    const float hi = *std::max_element(xs, xs + 32);
    sub_min[sub] = -lo;  // mins are subtracted, so only non-positive minima are representable
    sub_scale[sub] = (hi - lo) / static_cast<float>(levels);
    max_scale = std::max(max_scale, sub_scale[sub]);
    max_min = std::max(max_min, sub_min[sub]);
  }
  b.d = super_scale(max_scale, 63);
  b.dmin = super_scale(max_min, 63);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  int sc[8], mn[8];
  for (int sub = 0; sub < 8; ++sub) {
    sc[sub] = std::clamp(nearest(sub_scale[sub] * inverse(d)), 0, 63);
    mn[sub] = std::clamp(nearest(sub_min[sub] * inverse(dmin)), 0, 63);
    const float scale = d * static_cast<float>(sc[sub]), min = dmin * static_cast<float>(mn[sub]);
    for (int i = 32 * sub; i < 32 * sub + 32; ++i) {
      codes[i] = std::clamp(nearest((x[i] + min) * inverse(scale)), 0, levels);
    }
  }
  pack_q4k_scales(sc, mn, b.scales);
}

void pack_q4k_codes(const int* codes, uint8_t* qs) {
  for (int i = 0; i < kQK_K / 2; ++i) qs[i] = 0;
  for (int i = 0; i < kQK_K; ++i) {
    const int c = i / 64, s = (i % 64) / 32, l = i % 32;
    qs[32 * c + l] = static_cast<uint8_t>(qs[32 * c + l] | ((codes[i] & 0xF) << (4 * s)));
  }
}

// --- Q6_K: 16 sub-blocks of 16, int8 scales, 6-bit codes stored + 32 --------------------------
// Element 128h + 32k + l: low nibble (k >= 2 ? high : low half) of ql[64h + 32(k&1) + l], top
// two bits at bit 2k of qh[32h + l].

int q6k_code(const BlockQ6_K& b, int i) {
  const int h = i / 128, k = (i % 128) / 32, l = i % 32;
  const int low = (b.ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF;
  const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
  return (low | (high << 4)) - 32;
}

void set_q6k_code(BlockQ6_K& b, int i, int code) {
  const int h = i / 128, k = (i % 128) / 32, l = i % 32;
  const int q = code + 32;
  uint8_t& low = b.ql[64 * h + 32 * (k & 1) + l];
  low = static_cast<uint8_t>(low | ((q & 0xF) << (4 * (k >> 1))));
  uint8_t& high = b.qh[32 * h + l];
  high = static_cast<uint8_t>(high | ((q >> 4) << (2 * k)));
}

// Signed per-sub-block scales for symmetric codes in [-half, half - 1] (Q3_K, Q6_K): the value
// of largest magnitude maps to -half. Returns the fp16 super-scale and the integer scales.
uint16_t signed_sub_scales(const float* x, int half, int max_int, int* ints, float* scales) {
  float sub[16], amax = 0.0f;
  for (int s = 0; s < 16; ++s) {
    sub[s] = signed_absmax(x + 16 * s, 16) / static_cast<float>(-half);
    amax = std::max(amax, std::fabs(sub[s]));
  }
  const uint16_t dbits = super_scale(amax, max_int);
  const float d = fp16_to_fp32(dbits);
  for (int s = 0; s < 16; ++s) {
    ints[s] = std::clamp(nearest(sub[s] * inverse(d)), -max_int, max_int);
    scales[s] = d * static_cast<float>(ints[s]);
  }
  return dbits;
}

}  // namespace

void dequantize_q2_k(const BlockQ2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dequantize_q2_k_block(x[i], y + i * kQK_K);
}

void dequantize_q3_k(const BlockQ3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dequantize_q3_k_block(x[i], y + i * kQK_K);
}

void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dequantize_q45_k_block<BlockQ4_K, false>(x[i], y + i * kQK_K);
}

void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dequantize_q45_k_block<BlockQ5_K, true>(x[i], y + i * kQK_K);
}

void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    float* yb = y + i * kQK_K;
    for (int e = 0; e < kQK_K; ++e) {
      const int group = e / 16;
      yb[e] = d * static_cast<float>(x[i].scales[group]) * static_cast<float>(q6k_code(x[i], e));
    }
  }
}

void dequantize_q8_k(const BlockQ8_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    for (int e = 0; e < kQK_K; ++e) y[i * kQK_K + e] = x[i].d * static_cast<float>(x[i].qs[e]);
  }
}

void quantize_q2_k(const float* x, BlockQ2_K* y, int64_t nb) {
  for (int64_t blk = 0; blk < nb; ++blk, x += kQK_K) {
    BlockQ2_K& b = y[blk];
    float sub_scale[16], sub_min[16], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 16; ++s) {
      const float lo = std::min(0.0f, *std::min_element(x + 16 * s, x + 16 * s + 16));
      const float hi = *std::max_element(x + 16 * s, x + 16 * s + 16);
      sub_scale[s] = (hi - lo) / 3.0f;
      sub_min[s] = -lo;
      max_scale = std::max(max_scale, sub_scale[s]);
      max_min = std::max(max_min, sub_min[s]);
    }
    b.d = super_scale(max_scale, 15);
    b.dmin = super_scale(max_min, 15);
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    std::fill(std::begin(b.qs), std::end(b.qs), uint8_t{0});
    for (int s = 0; s < 16; ++s) {
      const int sc = std::clamp(nearest(sub_scale[s] * inverse(d)), 0, 15);
      const int mn = std::clamp(nearest(sub_min[s] * inverse(dmin)), 0, 15);
      b.scales[s] = static_cast<uint8_t>(sc | (mn << 4));
      const float scale = d * static_cast<float>(sc), min = dmin * static_cast<float>(mn);
      for (int i = 16 * s; i < 16 * s + 16; ++i) {
        const int q = std::clamp(nearest((x[i] + min) * inverse(scale)), 0, 3);
        const int h = i / 128, j = (i % 128) / 32, m = i % 32;
        b.qs[32 * h + m] = static_cast<uint8_t>(b.qs[32 * h + m] | (q << (2 * j)));
      }
    }
  }
}

void quantize_q3_k(const float* x, BlockQ3_K* y, int64_t nb) {
  for (int64_t blk = 0; blk < nb; ++blk, x += kQK_K) {
    BlockQ3_K& b = y[blk];
    int ints[16];
    float scales[16];
    b.d = signed_sub_scales(x, 4, 31, ints, scales);
    std::fill(std::begin(b.scales), std::end(b.scales), uint8_t{0});
    for (int i = 0; i < 16; ++i) {
      const int v = ints[i] + 32;
      b.scales[i % 8] = static_cast<uint8_t>(b.scales[i % 8] | ((v & 0xF) << (4 * (i / 8))));
      b.scales[8 + i % 4] = static_cast<uint8_t>(b.scales[8 + i % 4] | ((v >> 4) << (2 * (i / 4))));
    }
    std::fill(std::begin(b.qs), std::end(b.qs), uint8_t{0});
    std::fill(std::begin(b.hmask), std::end(b.hmask), uint8_t{0});
    for (int i = 0; i < kQK_K; ++i) {
      const int q = std::clamp(nearest(x[i] * inverse(scales[i / 16])), -4, 3) + 4;
      const int h = i / 128, j = (i % 128) / 32, m = i % 32;
      b.qs[32 * h + m] = static_cast<uint8_t>(b.qs[32 * h + m] | ((q & 3) << (2 * j)));
      b.hmask[m] = static_cast<uint8_t>(b.hmask[m] | ((q >> 2) << (4 * h + j)));
    }
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t nb) {
  for (int64_t blk = 0; blk < nb; ++blk, x += kQK_K) {
    int codes[kQK_K];
    quantize_q45_k_block(x, y[blk], 15, codes);
    pack_q4k_codes(codes, y[blk].qs);
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t nb) {
  for (int64_t blk = 0; blk < nb; ++blk, x += kQK_K) {
    int codes[kQK_K];
    quantize_q45_k_block(x, y[blk], 31, codes);
    pack_q4k_codes(codes, y[blk].qs);
    std::fill(std::begin(y[blk].qh), std::end(y[blk].qh), uint8_t{0});
    for (int i = 0; i < kQK_K; ++i) {
      y[blk].qh[i % 32] = static_cast<uint8_t>(y[blk].qh[i % 32] | ((codes[i] >> 4) << (i / 32)));
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t nb) {
  for (int64_t blk = 0; blk < nb; ++blk, x += kQK_K) {
    BlockQ6_K& b = y[blk];
    int ints[16];
    float scales[16];
    b.d = signed_sub_scales(x, 32, 127, ints, scales);
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(ints[s]);
    std::fill(std::begin(b.ql), std::end(b.ql), uint8_t{0});
    std::fill(std::begin(b.qh), std::end(b.qh), uint8_t{0});
    for (int i = 0; i < kQK_K; ++i) {
      set_q6k_code(b, i, std::clamp(nearest(x[i] * inverse(scales[i / 16])), -32, 31));
    }
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t blk = 0; blk < nb; ++blk, x += kQK_K) {
    BlockQ8_K& b = y[blk];
    const float max = signed_absmax(x, kQK_K);
    b.d = max / -127.0f;
    for (int i = 0; i < kQK_K; ++i) {
      b.qs[i] = static_cast<int8_t>(std::clamp(nearest(x[i] * inverse(b.d)), -128, 127));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += b.qs[16 * g + i];
      b.bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

}  // namespace torchless::quant_k
