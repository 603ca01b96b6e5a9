// The integer dot products of the CUDA mat-vec (backends/cuda/cuda_dot_q8.cuh) checked on the
// host, so that CI without a GPU still tests how they unpack every block layout: the header is
// compiled by the C++ compiler with host versions of the three intrinsics it uses, and each
// unit's product is compared with the CPU backend's dequantisation of the same block times the
// same int8 activations. Needs the CUDA headers (cuda_fp16.h), present when the backend is built.
#include <gtest/gtest.h>

#if __has_include(<cuda_fp16.h>) && __has_include("torchless/backends/cuda/cuda_dot_q8.cuh")

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <vector_types.h>

#include "torchless/core/half.h"
#include "torchless/core/quant.h"

// Host stand-ins for the CUDA intrinsics, from their definitions in the CUDA math API.
static int __dp4a(int a, int b, int c) {  // c + the sum of the 4 signed byte products
  for (int i = 0; i < 4; ++i) c += int(int8_t(a >> (8 * i))) * int(int8_t(b >> (8 * i)));
  return c;
}
static unsigned __vsub4(unsigned a, unsigned b) {  // per-byte a - b, modulo 256
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= (((a >> (8 * i)) - (b >> (8 * i))) & 0xFFu) << (8 * i);
  return r;
}
static unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {  // bytes of (y:x) picked by s
  uint8_t bytes[8];
  for (int i = 0; i < 4; ++i) {
    bytes[i] = uint8_t(x >> (8 * i));
    bytes[4 + i] = uint8_t(y >> (8 * i));
  }
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= unsigned(bytes[(s >> (4 * i)) & 7]) << (8 * i);
  return r;
}

// The CUDA headers define __device__ and __forceinline__ for host compilers (crt/host_defines.h);
// tests/CMakeLists.txt turns off the warning about `#pragma unroll` for this file.
#include "torchless/backends/cuda/cuda_dot_q8.cuh"

namespace torchless {
namespace {

// Random bytes are a valid block of every type; its half-precision scales are set to finite
// values (random bits could be inf or NaN).
template <typename Block>
void set_scales(Block& b) {
  if constexpr (requires { b.d; }) {
    if constexpr (sizeof(b.d) == 2) b.d = fp32_to_fp16(0.75f);
  }
  if constexpr (requires { b.dmin; }) b.dmin = fp32_to_fp16(0.5f);
  if constexpr (requires { b.m; }) b.m = fp32_to_fp16(-0.25f);
}

template <typename Block>
void check_units(DType dtype) {
  using Dot = cuda::DotQ8<Block>;
  constexpr int kElements = 32 * Dot::kUnits;
  std::mt19937 rng(static_cast<uint32_t>(dtype) + 1);
  for (int trial = 0; trial < 500; ++trial) {
    alignas(16) Block b;
    auto* raw = reinterpret_cast<unsigned char*>(&b);
    for (size_t i = 0; i < sizeof(Block); ++i) raw[i] = static_cast<unsigned char>(rng());
    set_scales(b);
    std::vector<float> w(kElements);
    dequantize_row(dtype, reinterpret_cast<const std::byte*>(&b), w.data(), kElements);
    for (int s = 0; s < Dot::kUnits; ++s) {
      int8_t codes[32];
      int sum = 0;
      for (int8_t& c : codes) {
        c = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
        sum += c;
      }
      cuda::ActUnit x;
      std::memcpy(x.q, codes, sizeof codes);
      x.d = 0.01f;
      x.s = x.d * static_cast<float>(sum);
      double want = 0, scale = 0;
      for (int i = 0; i < 32; ++i) {
        want += static_cast<double>(w[static_cast<size_t>(32 * s + i)]) * x.d * codes[i];
        scale +=
            std::fabs(static_cast<double>(w[static_cast<size_t>(32 * s + i)]) * x.d * codes[i]);
      }
      const double got = Dot::dot(b, s, x);
      ASSERT_NEAR(got, want, 1e-5 * scale + 1e-6)
          << dtype_name(dtype) << " trial " << trial << " unit " << s;
    }
  }
}

TEST(CudaDotQ8OnHost, EveryBlockTypeMatchesTheCpuDequantisation) {
  check_units<BlockQ4_0>(DType::Q4_0);
  check_units<BlockQ4_1>(DType::Q4_1);
  check_units<BlockQ5_0>(DType::Q5_0);
  check_units<BlockQ5_1>(DType::Q5_1);
  check_units<BlockQ8_0>(DType::Q8_0);
  check_units<BlockIQ4_NL>(DType::IQ4_NL);
  check_units<BlockQ2_K>(DType::Q2_K);
  check_units<BlockQ3_K>(DType::Q3_K);
  check_units<BlockQ4_K>(DType::Q4_K);
  check_units<BlockQ5_K>(DType::Q5_K);
  check_units<BlockQ6_K>(DType::Q6_K);
  check_units<BlockIQ4_XS>(DType::IQ4_XS);
}

}  // namespace
}  // namespace torchless

#else

TEST(CudaDotQ8OnHost, EveryBlockTypeMatchesTheCpuDequantisation) {
  GTEST_SKIP() << "built without the CUDA toolkit's headers";
}

#endif
