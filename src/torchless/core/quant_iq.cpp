// IQ4_NL / IQ4_XS reference code. Layouts follow ggml's block_iq4_nl / block_iq4_xs; the
// quantisers are our own simple choice (the largest magnitude of a block maps to the grid's
// end, -127, and every value to its nearest grid point), not ggml's importance-weighted
// search, so they are less accurate than llama-quantize but produce bit-compatible blocks.
#include "torchless/core/quant_iq.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "torchless/core/half.h"
#include "torchless/core/quant_k.h"

namespace torchless::quant_iq {
namespace {

// The 32 values of one IQ4 run: byte j holds element j (low nibble) and j + 16 (high nibble).
void dequantize_run(const uint8_t* qs, float d, float* y) {
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(kIq4nlValues[qs[j] & 0xF]);
    y[j + kQK / 2] = d * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
  }
}

// Index of the grid value nearest to v (the grid is sorted).
int nearest_index(float v) {
  int best = 0;
  for (int i = 1; i < 16; ++i) {
    if (std::fabs(v - static_cast<float>(kIq4nlValues[i])) <
        std::fabs(v - static_cast<float>(kIq4nlValues[best]))) {
      best = i;
    }
  }
  return best;
}

void quantize_run(const float* x, float d, uint8_t* qs) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = nearest_index(x[j] * id), hi = nearest_index(x[j + kQK / 2] * id);
    qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

}  // namespace

void dequantize_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dequantize_run(x[i].qs, fp16_to_fp32(x[i].d), y + i * kQK);
}

void dequantize_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK_K / kQK; ++j) {
      const float dl = d * static_cast<float>(iq4xs_scale(x[i], j));
      dequantize_run(x[i].qs + 16 * j, dl, y + i * kQK_K + kQK * j);
    }
  }
}

void quantize_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    y[i].d = fp32_to_fp16(quant_k::signed_absmax(x, kQK) / -127.0f);
    quantize_run(x, fp16_to_fp32(y[i].d), y[i].qs);
  }
}

void quantize_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t nb) {
  constexpr int kSubs = kQK_K / kQK;
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float sub[kSubs], amax = 0.0f;
    for (int j = 0; j < kSubs; ++j) {
      sub[j] = quant_k::signed_absmax(x + kQK * j, kQK) / -127.0f;
      amax = std::max(amax, std::fabs(sub[j]));
    }
    y[i].d = fp32_to_fp16(amax / 31.0f);
    const float d = fp16_to_fp32(y[i].d);
    y[i].scales_h = 0;
    for (int j = 0; j < kSubs; ++j) {
      const int ls =
          std::clamp(static_cast<int>(std::nearbyint(d != 0.0f ? sub[j] / d : 0.0f)), -32, 31) + 32;
      if (j % 2 == 0) y[i].scales_l[j / 2] = 0;
      y[i].scales_l[j / 2] =
          static_cast<uint8_t>(y[i].scales_l[j / 2] | ((ls & 0xF) << (4 * (j % 2))));
      y[i].scales_h = static_cast<uint16_t>(y[i].scales_h | ((ls >> 4) << (2 * j)));
      quantize_run(x + kQK * j, d * static_cast<float>(ls - 32), y[i].qs + 16 * j);
    }
  }
}

}  // namespace torchless::quant_iq
