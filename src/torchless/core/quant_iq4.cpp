// Reference (de)quantisers of IQ4_NL and IQ4_XS (layouts in quant_iq4.h).
#include "torchless/core/quant_iq4.h"

#include <algorithm>
#include <cmath>

#include "torchless/core/half.h"
#include "torchless/core/quant_k.h"

namespace torchless::quant_iq4 {
namespace {

constexpr int kBlock = 32;
constexpr int kSuperBlock = 256;

// Dequantises the 32 elements whose codes are the nibbles of qs[0..15].
void dequantize_nibbles(const uint8_t* qs, float scale, float* y) {
  for (int j = 0; j < kBlock / 2; ++j) {
    y[j] = scale * static_cast<float>(kIQ4Levels[qs[j] & 0xF]);
    y[j + kBlock / 2] = scale * static_cast<float>(kIQ4Levels[qs[j] >> 4]);
  }
}

// The code whose level is nearest to v (levels ascend; ties go to the lower code).
int nearest_level(float v) {
  int best = 0;
  float best_err = std::fabs(v - static_cast<float>(kIQ4Levels[0]));
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(v - static_cast<float>(kIQ4Levels[i]));
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

// Codes of 32 elements for a given (stored) scale, packed as in dequantize_nibbles.
void quantize_nibbles(const float* x, float scale, uint8_t* qs) {
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  for (int j = 0; j < kBlock / 2; ++j) {
    const int lo = nearest_level(x[j] * inv);
    const int hi = nearest_level(x[j + kBlock / 2] * inv);
    qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

int iq4_xs_scale(const BlockIQ4_XS& b, int s) {
  const int low = (b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF;
  const int high = (b.scales_h >> (2 * s)) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace

void dequantize_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i)
    dequantize_nibbles(x[i].qs, fp16_to_fp32(x[i].d), y + i * kBlock);
}

void dequantize_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int s = 0; s < kSuperBlock / kBlock; ++s) {
      const float scale = d * static_cast<float>(iq4_xs_scale(x[i], s));
      dequantize_nibbles(x[i].qs + 16 * s, scale, y + i * kSuperBlock + kBlock * s);
    }
  }
}

void quantize_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kBlock) {
    const float level0 = static_cast<float>(kIQ4Levels[0]);
    y[i].d = fp32_to_fp16(quant_k::signed_absmax(x, kBlock) / level0);
    quantize_nibbles(x, fp16_to_fp32(y[i].d), y[i].qs);
  }
}

void quantize_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t nb) {
  constexpr int kSubs = kSuperBlock / kBlock;
  const float level0 = static_cast<float>(kIQ4Levels[0]);
  for (int64_t i = 0; i < nb; ++i, x += kSuperBlock) {
    BlockIQ4_XS& b = y[i];
    float sub[kSubs], amax = 0.0f;
    for (int s = 0; s < kSubs; ++s) {
      sub[s] = quant_k::signed_absmax(x + kBlock * s, kBlock) / level0;
      amax = std::max(amax, std::fabs(sub[s]));
    }
    b.d = fp32_to_fp16(amax / 31.0f);  // sub-block scales are integers in [-32, 31]
    const float d = fp16_to_fp32(b.d);
    b.scales_h = 0;
    std::fill(std::begin(b.scales_l), std::end(b.scales_l), uint8_t{0});
    for (int s = 0; s < kSubs; ++s) {
      const int ls =
          d != 0.0f ? std::clamp(static_cast<int>(std::nearbyint(sub[s] / d)), -32, 31) : 0;
      const int stored = ls + 32;
      b.scales_l[s / 2] =
          static_cast<uint8_t>(b.scales_l[s / 2] | ((stored & 0xF) << (4 * (s % 2))));
      b.scales_h = static_cast<uint16_t>(b.scales_h | ((stored >> 4) << (2 * s)));
      quantize_nibbles(x + kBlock * s, d * static_cast<float>(ls), b.qs + 16 * s);
    }
  }
}

}  // namespace torchless::quant_iq4
