// Integer primitives of the AVX2 int8 kernels, compiled only for Highway's AVX2 target. AVX2
// has no vpdpbusd; vpmaddubsw multiplies 32 unsigned weight bytes by 32 signed activation bytes
// and adds adjacent pairs into int16 (saturating), and vpmaddwd (by ones, or by integer scales)
// adds the pairs of those into int32: together the four-products-per-lane sum of vpdpbusd. The
// int16 step is exact while each pair sum fits: |u| <= 128 with |x| <= 127 gives at most 2 * 128 *
// 127 = 32512 < 32767, which holds for every unsigned code the kernels use (nibbles, 5- and 6-bit
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
#include <cstring>

HWY_BEFORE_NAMESPACE();
namespace torchless::cpu {
namespace HWY_NAMESPACE {
namespace avx2 {

// The 4 bytes at `p` (a group of 4 activation codes, or 2 int16) in every 32-bit lane.
inline __m256i broadcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

}  // namespace avx2
}  // namespace HWY_NAMESPACE
}  // namespace torchless::cpu
HWY_AFTER_NAMESPACE();

#endif  // HWY_TARGET == HWY_AVX2

#endif  // include guard
