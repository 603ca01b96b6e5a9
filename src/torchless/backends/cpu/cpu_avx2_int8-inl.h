// Integer primitives of the AVX2 int8 kernels, compiled only for Highway's AVX2 target. AVX2
// has no vpdpbusd; vpmaddubsw multiplies 32 unsigned weight bytes by 32 signed activation bytes
// and adds adjacent pairs into int16 (saturating), and vpmaddwd with ones adds the pairs of
// those into int32: together the four-products-per-lane sum of vpdpbusd. The int16 step is
// exact while each pair sum fits: |u| <= 128 with |x| <= 127 gives at most 2 * 128 * 127 =
// 32512 < 32767, which holds for every unsigned code the kernels use (nibbles, 5- and 6-bit
// codes, |Q8_0| <= 128). Integer results therefore equal the VNNI kernels' exactly.

// Per-target include guard (Highway's -inl.h convention).
#if defined(TORCHLESS_CPU_AVX2_INT8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TORCHLESS_CPU_AVX2_INT8_INL_H_
#undef TORCHLESS_CPU_AVX2_INT8_INL_H_
#else
#define TORCHLESS_CPU_AVX2_INT8_INL_H_
#endif

#include <hwy/highway.h>

#if HWY_TARGET == HWY_AVX2
#include <immintrin.h>

#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace avx2 {

// acc + (per int32 lane) the sum of the four products u[4i + k] * s[4i + k]; u unsigned codes
// of at most 128 (see above), s signed bytes in [-127, 127].
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// Sum of the 8 int32 lanes (exact).
inline int32_t reduce_add_i32(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
}

// Sum of the 8 float lanes in a fixed order (pairs of halves, then within the half).
inline float reduce_add_f32(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

}  // namespace avx2
}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#endif  // HWY_TARGET == HWY_AVX2

#endif  // include guard
