#pragma once
// Helpers for the Metal tests: a MetalBackend over the emulated device at a given simdgroup
// width, random data with fixed seeds, weights in every dtype, and float64 references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "torchless/backends/metal/emulated/emulated_metal_device.h"
#include "torchless/backends/metal/metal_backend.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless::metal_test {

inline std::unique_ptr<MetalBackend> make_backend(uint32_t simd_width) {
  metal::EmulatedMetalOptions options;
  options.simd_width = simd_width;
  return std::make_unique<MetalBackend>(metal::create_emulated_metal_device(options),
                                        "metal-emulated");
}

inline metal::EmulatedMetalDevice& emulated(MetalBackend& backend) {
  return dynamic_cast<metal::EmulatedMetalDevice&>(backend.metal_device());
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Bytes of `values` ([rows, cols]) stored as dtype (quantised row by row).
inline std::vector<std::byte> encode(std::span<const float> values, int64_t rows, int64_t cols,
                                     DType dtype) {
  const size_t row_bytes = dtype_row_bytes(dtype, cols);
  std::vector<std::byte> out(row_bytes * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = values.data() + r * cols;
    std::byte* dst = out.data() + static_cast<size_t>(r) * row_bytes;
    for (int64_t c = 0; c < cols; ++c) {
      if (dtype == DType::F32) {
        std::memcpy(dst + c * 4, &src[c], 4);
      } else if (dtype == DType::F16 || dtype == DType::BF16) {
        const uint16_t h = dtype == DType::F16 ? fp32_to_fp16(src[c]) : fp32_to_bf16(src[c]);
        std::memcpy(dst + c * 2, &h, 2);
      }
    }
    if (dtype_is_quantized(dtype)) quantize_row(dtype, src, dst, cols);
  }
  return out;
}

// What the kernels should see: the stored weights converted back to float.
inline std::vector<double> decode(std::span<const std::byte> bytes, int64_t rows, int64_t cols,
                                  DType dtype) {
  const size_t row_bytes = dtype_row_bytes(dtype, cols);
  std::vector<double> out(static_cast<size_t>(rows * cols));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const std::byte* src = bytes.data() + static_cast<size_t>(r) * row_bytes;
    for (int64_t c = 0; c < cols; ++c) {
      uint16_t h;
      if (dtype == DType::F32) {
        std::memcpy(&row[c], src + c * 4, 4);
      } else if (dtype == DType::F16 || dtype == DType::BF16) {
        std::memcpy(&h, src + c * 2, 2);
        row[c] = dtype == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
      }
    }
    if (dtype_is_quantized(dtype)) dequantize_row(dtype, src, row.data(), cols);
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(r * cols + c)] = row[c];
  }
  return out;
}

inline Tensor upload_f32(Backend& backend, const std::vector<float>& values, const Shape& shape) {
  Tensor t = backend.alloc(shape, DType::F32);
  backend.upload(std::as_bytes(std::span(values)), t);
  return t;
}

inline Tensor upload_bytes(Backend& backend, const std::vector<std::byte>& bytes,
                           const Shape& shape, DType dtype) {
  Tensor t = backend.alloc(shape, dtype);
  backend.upload(bytes, t);
  return t;
}

// Asserts |actual - expected| <= tol * (1 + |expected|) elementwise, naming the first failure.
inline void expect_near(std::span<const float> actual, std::span<const double> expected, double tol,
                        const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], tol * (1.0 + std::abs(expected[i])))
        << what << " at element " << i;
  }
}

inline std::string dtype_label(DType dtype) {
  return std::string(dtype_name(dtype));
}

}  // namespace torchless::metal_test
