#include "torchless/core/quant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/core/quant_iq4.h"
#include "torchless/core/quant_k.h"

namespace torchless {
namespace {

int nearest(float x) {
  return static_cast<int>(std::nearbyint(x));
}

// --- dequantisers of the 32-element types -----------------------------------------------------

void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>((x[i].qs[j] & 0xF) - 8);
      y[j + kQK / 2] = d * static_cast<float>((x[i].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_1(const BlockQ4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(x[i].qs[j] & 0xF) + m;
      y[j + kQK / 2] = d * static_cast<float>(x[i].qs[j] >> 4) + m;
    }
  }
}

uint32_t load_qh(const uint8_t* qh) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

void store_qh(uint32_t v, uint8_t* qh) {
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(v >> (8 * k));
}

// The 5-bit value of element j (0..31) of a Q5_0/Q5_1 block.
int q5_value(const uint8_t* qs, uint32_t qh, int j) {
  const int low = j < kQK / 2 ? (qs[j] & 0xF) : (qs[j - kQK / 2] >> 4);
  return low | static_cast<int>(((qh >> j) & 1u) << 4);
}

void dequantize_q5_0(const BlockQ5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q5_value(x[i].qs, qh, j) - 16);
  }
}

void dequantize_q5_1(const BlockQ5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q5_value(x[i].qs, qh, j)) + m;
  }
}

void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(x[i].qs[j]);
  }
}

// Q8_1 is Q8_0 plus s = d * sum(qs), a dot-product helper that does not affect the values.
void dequantize_q8_1(const std::byte* src, float* y, int64_t n) {
  constexpr size_t kBytes = 36;
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const std::byte* b = src + static_cast<size_t>(i) * kBytes;
    uint16_t dbits;
    std::memcpy(&dbits, b, 2);
    const float d = fp16_to_fp32(dbits);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[4 + j]));
  }
}

// --- quantisers of the 32-element types -------------------------------------------------------

using quant_k::signed_absmax;

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::clamp(nearest(x[j] * id) + 8, 0, 15);
      const int q1 = std::clamp(nearest(x[j + kQK / 2] * id) + 8, 0, 15);
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void min_max(const float* x, int n, float& lo, float& hi) {
  lo = x[0];
  hi = x[0];
  for (int j = 1; j < n; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
}

// The scale and minimum of a block of kQK values coded 0..max_code (Q4_1, Q5_1): stores d and m
// in the block and returns what to quantise against: the stored (rounded) minimum, and 1/d.
struct MinScale {
  float m, id;
};

template <class Block>
MinScale store_min_scale(const float* x, float max_code, Block& block) {
  float lo, hi;
  min_max(x, kQK, lo, hi);
  const float d = (hi - lo) / max_code;
  block.d = fp32_to_fp16(d);
  block.m = fp32_to_fp16(lo);
  return {fp16_to_fp32(block.m), d != 0.0f ? 1.0f / d : 0.0f};
}

void quantize_q4_1(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const auto [m, id] = store_min_scale(x, 15.0f, y[i]);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::clamp(nearest((x[j] - m) * id), 0, 15);
      const int q1 = std::clamp(nearest((x[j + kQK / 2] - m) * id), 0, 15);
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Packs 32 5-bit codes into the nibble array and the 32-bit high-bit word.
void pack_q5(const int* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + kQK / 2] & 0xF) << 4));
  }
  for (int j = 0; j < kQK; ++j) qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  store_qh(qh, qh_bytes);
}

void quantize_q5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = std::clamp(nearest(x[j] * id) + 16, 0, 31);
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void quantize_q5_1(const float* x, BlockQ5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const auto [m, id] = store_min_scale(x, 31.0f, y[i]);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = std::clamp(nearest((x[j] - m) * id), 0, 31);
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::clamp(nearest(x[j] * id), -127, 127));
    }
  }
}

// --- plain types ------------------------------------------------------------------------------

void copy_f32(const std::byte* src, float* y, int64_t n) {
  std::memcpy(y, src, static_cast<size_t>(n) * 4);
}

void copy_f32(const float* x, std::byte* dst, int64_t n) {
  std::memcpy(dst, x, static_cast<size_t>(n) * 4);
}

template <float (*kConvert)(uint16_t)>
void from_half(const std::byte* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    y[i] = kConvert(h);
  }
}

template <uint16_t (*kConvert)(float)>
void to_half(const float* x, std::byte* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = kConvert(x[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

// --- block types ------------------------------------------------------------------------------

// Rows are viewed as arrays of block structs when the pointer is aligned for them (GGUF tensor
// data normally is); otherwise each block goes through an aligned copy, so that a file with
// general.alignment 1 or a caller's odd buffer offset never causes a misaligned load.
template <typename Block, int kPerBlock, void (*kDequantize)(const Block*, float*, int64_t)>
void read_blocks(const std::byte* src, float* dst, int64_t n) {
  const int64_t nb = n / kPerBlock;
  if (reinterpret_cast<uintptr_t>(src) % alignof(Block) == 0) {
    kDequantize(reinterpret_cast<const Block*>(src), dst, nb);
    return;
  }
  for (int64_t i = 0; i < nb; ++i) {
    Block b;
    std::memcpy(&b, src + static_cast<size_t>(i) * sizeof(Block), sizeof(Block));
    kDequantize(&b, dst + i * kPerBlock, 1);
  }
}

template <typename Block, int kPerBlock, void (*kQuantize)(const float*, Block*, int64_t)>
void write_blocks(const float* src, std::byte* dst, int64_t n) {
  const int64_t nb = n / kPerBlock;
  if (reinterpret_cast<uintptr_t>(dst) % alignof(Block) == 0) {
    kQuantize(src, reinterpret_cast<Block*>(dst), nb);
    return;
  }
  for (int64_t i = 0; i < nb; ++i) {
    Block b;
    kQuantize(src + i * kPerBlock, &b, 1);
    std::memcpy(dst + static_cast<size_t>(i) * sizeof(Block), &b, sizeof(Block));
  }
}

// --- the table ----------------------------------------------------------------------------------

// One row per supported type: how n elements are read and (unless null) written.
struct Codec {
  DType type;
  void (*dequantize)(const std::byte* src, float* dst, int64_t n);
  void (*quantize)(const float* src, std::byte* dst, int64_t n);
};

template <typename Block, int kPerBlock, void (*kDequantize)(const Block*, float*, int64_t),
          void (*kQuantize)(const float*, Block*, int64_t)>
constexpr Codec blocks(DType type) {
  return {type, read_blocks<Block, kPerBlock, kDequantize>,
          write_blocks<Block, kPerBlock, kQuantize>};
}

constexpr Codec kCodecs[] = {
    {DType::F32, copy_f32, copy_f32},
    {DType::F16, from_half<fp16_to_fp32>, to_half<fp32_to_fp16>},
    {DType::BF16, from_half<bf16_to_fp32>, to_half<fp32_to_bf16>},
    blocks<BlockQ4_0, kQK, dequantize_q4_0, quantize_q4_0>(DType::Q4_0),
    blocks<BlockQ4_1, kQK, dequantize_q4_1, quantize_q4_1>(DType::Q4_1),
    blocks<BlockQ5_0, kQK, dequantize_q5_0, quantize_q5_0>(DType::Q5_0),
    blocks<BlockQ5_1, kQK, dequantize_q5_1, quantize_q5_1>(DType::Q5_1),
    blocks<BlockQ8_0, kQK, dequantize_q8_0, quantize_q8_0>(DType::Q8_0),
    {DType::Q8_1, dequantize_q8_1, nullptr},  // read only (a dot-product intermediate)
    blocks<BlockQ2_K, kQK_K, quant_k::dequantize_q2_k, quant_k::quantize_q2_k>(DType::Q2_K),
    blocks<BlockQ3_K, kQK_K, quant_k::dequantize_q3_k, quant_k::quantize_q3_k>(DType::Q3_K),
    blocks<BlockQ4_K, kQK_K, quant_k::dequantize_q4_k, quant_k::quantize_q4_k>(DType::Q4_K),
    blocks<BlockQ5_K, kQK_K, quant_k::dequantize_q5_k, quant_k::quantize_q5_k>(DType::Q5_K),
    blocks<BlockQ6_K, kQK_K, quant_k::dequantize_q6_k, quant_k::quantize_q6_k>(DType::Q6_K),
    blocks<BlockQ8_K, kQK_K, quant_k::dequantize_q8_k, quant_k::quantize_q8_k>(DType::Q8_K),
    blocks<BlockIQ4_NL, kQK, quant_iq4::dequantize_iq4_nl, quant_iq4::quantize_iq4_nl>(
        DType::IQ4_NL),
    blocks<BlockIQ4_XS, kQK_K, quant_iq4::dequantize_iq4_xs, quant_iq4::quantize_iq4_xs>(
        DType::IQ4_XS),
};

const Codec* find_codec(DType type) {
  for (const Codec& c : kCodecs) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

}  // namespace

bool can_dequantize(DType type) {
  return find_codec(type) != nullptr;
}

bool can_quantize(DType type) {
  const Codec* codec = find_codec(type);
  return codec != nullptr && codec->quantize != nullptr;
}

void dequantize_row(DType type, const std::byte* src, float* dst, int64_t n) {
  dtype_row_bytes(type, n);  // validates n against the block size
  const Codec* codec = find_codec(type);
  if (codec == nullptr) fail("no dequantiser for dtype {}", dtype_name(type));
  codec->dequantize(src, dst, n);
}

void quantize_row(DType type, const float* src, std::byte* dst, int64_t n) {
  dtype_row_bytes(type, n);  // validates n against the block size
  const Codec* codec = find_codec(type);
  if (codec == nullptr || codec->quantize == nullptr) {
    fail("no quantiser for dtype {}", dtype_name(type));
  }
  codec->quantize(src, dst, n);
}

}  // namespace torchless
