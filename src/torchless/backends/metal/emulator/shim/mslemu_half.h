#pragma once
// MSL `half`: a 16-bit IEEE struct. Every arithmetic result is rounded back to half, as the
// GPU does; `half op float` computes in float. Conversions use F16C when the translation unit
// is compiled with it (cmake/MetalEmulator.cmake adds -mf16c); otherwise a software
// round-to-nearest-even fallback. Arithmetic via float then one rounding is exact-rounded:
// float has more than 2*11+2 significant bits, so the double rounding is innocuous.
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "torchless/core/half.h"

namespace metal {

namespace detail {
inline float f16_to_f32_soft(uint16_t h) {
  return torchless::fp16_to_fp32(h);
}
inline uint16_t f32_to_f16_soft(float f) {
  return torchless::fp32_to_fp16(f);
}

inline float f16_to_f32(uint16_t h) {
#if defined(__F16C__) && !defined(MSLEMU_SOFT_HALF)
  return _cvtsh_ss(h);
#else
  return f16_to_f32_soft(h);
#endif
}
inline uint16_t f32_to_f16(float f) {
#if defined(__F16C__) && !defined(MSLEMU_SOFT_HALF)
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
  return f32_to_f16_soft(f);
#endif
}
}  // namespace detail

struct half {
  uint16_t bits;

  half() = default;
  half(float f) : bits(detail::f32_to_f16(f)) {}  // NOLINT: implicit, as in MSL
  template <class A>
  requires std::is_arithmetic_v<A> half(A a)
      : bits(detail::f32_to_f16(static_cast<float>(a))) {}     // NOLINT
  operator float() const { return detail::f16_to_f32(bits); }  // NOLINT

  static half from_bits(uint16_t b) {
    half h;
    h.bits = b;
    return h;
  }
  half& operator++() { return *this = half(float(*this) + 1.0f); }
  half& operator--() { return *this = half(float(*this) - 1.0f); }
  half operator++(int) {
    half old = *this;
    ++*this;
    return old;
  }
  half operator--(int) {
    half old = *this;
    --*this;
    return old;
  }
};
static_assert(sizeof(half) == 2 && alignof(half) == 2);
static_assert(std::is_trivially_copyable_v<half> &&
              std::is_trivially_default_constructible_v<half>);

template <class T>
inline constexpr bool is_half_v = std::is_same_v<std::remove_cvref_t<T>, half>;

// half with half or an integer gives half; half with float gives float (MSL's promotions).
template <class A, class B>
concept HalfOperands = (is_half_v<A> || is_half_v<B>)&&(
    is_half_v<A> ||
    std::is_arithmetic_v<std::remove_cvref_t<A>>)&&(is_half_v<B> ||
                                                    std::is_arithmetic_v<std::remove_cvref_t<B>>);

template <class A, class B>
using half_result_t = std::conditional_t<std::is_floating_point_v<std::remove_cvref_t<A>> ||
                                             std::is_floating_point_v<std::remove_cvref_t<B>>,
                                         float, half>;

#define MSLEMU_HALF_BINARY(op)                                                  \
  template <class A, class B>                                                   \
  requires HalfOperands<A, B>                                                   \
  inline half_result_t<A, B> operator op(A a, B b) {                            \
    return half_result_t<A, B>(static_cast<float>(a) op static_cast<float>(b)); \
  }                                                                             \
  template <class B>                                                            \
  requires HalfOperands<half, B>                                                \
  inline half& operator op##=(half& a, B b) {                                   \
    return a = half(static_cast<float>(a) op static_cast<float>(b));            \
  }
MSLEMU_HALF_BINARY(+)
MSLEMU_HALF_BINARY(-)
MSLEMU_HALF_BINARY(*)
MSLEMU_HALF_BINARY(/)
#undef MSLEMU_HALF_BINARY

#define MSLEMU_HALF_COMPARE(op)                            \
  template <class A, class B>                              \
  requires HalfOperands<A, B>                              \
  inline bool operator op(A a, B b) {                      \
    return static_cast<float>(a) op static_cast<float>(b); \
  }
MSLEMU_HALF_COMPARE(<)
MSLEMU_HALF_COMPARE(<=)
MSLEMU_HALF_COMPARE(>)
MSLEMU_HALF_COMPARE(>=)
MSLEMU_HALF_COMPARE(==)
MSLEMU_HALF_COMPARE(!=)
#undef MSLEMU_HALF_COMPARE

inline half operator-(half a) {
  return half::from_bits(static_cast<uint16_t>(a.bits ^ 0x8000u));
}
inline half operator+(half a) {
  return a;
}

}  // namespace metal
