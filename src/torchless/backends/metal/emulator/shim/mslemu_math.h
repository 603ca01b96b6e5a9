#pragma once
// The MSL math library for float, half and vectors. half functions compute in float and round
// once; vector functions apply the scalar one per component.
// Functions with a fast and a precise variant (MSL section 6.5) exist three times for float:
// precise:: evaluates them with the C library (at least as accurate as MSL's Table 8.1 asks),
// fast:: at the worst accuracy the specification allows fast functions (mslemu_fast_math.h),
// and the unqualified name picks one by the dispatch's Options::math_functions, as Metal picks
// by the library's mathFloatingPointFunctions. half functions have one precision.
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "mslemu_fast_math.h"
#include "mslemu_runtime.h"
#include "mslemu_vec.h"

namespace metal {

template <class T>
concept FloatScalar = std::is_floating_point_v<std::remove_cvref_t<T>> || is_half_v<T>;

// Unary float functions: float and half overloads plus a component-wise vector template.
// The vector templates call the scalar function qualified (ns::name): an unqualified call on a
// half would find ::metal::name by argument-dependent lookup too, ambiguously inside fast::.
#define MSLEMU_UNARY_VEC(ns, name)                                     \
  template <VecLike X>                                                 \
  requires FloatScalar<elem_t<X>>                                      \
  inline vec_of_t<X> name(const X& v) {                                \
    return map(v, [](elem_t<X> c) { return elem_t<X>(ns::name(c)); }); \
  }
#define MSLEMU_UNARY(name, expr)              \
  inline float name(float x) {                \
    return expr;                              \
  }                                           \
  inline half name(half h) {                  \
    return half(name(static_cast<float>(h))); \
  }                                           \
  MSLEMU_UNARY_VEC(::metal, name)
MSLEMU_UNARY(floor, std::floor(x))
MSLEMU_UNARY(ceil, std::ceil(x))
MSLEMU_UNARY(round, std::round(x))
MSLEMU_UNARY(rint, std::rint(x))
MSLEMU_UNARY(trunc, std::trunc(x))
MSLEMU_UNARY(fabs, std::fabs(x))
MSLEMU_UNARY(fract, std::fmin(x - std::floor(x), 0x1.fffffep-1f))
MSLEMU_UNARY(saturate, std::fmin(std::fmax(x, 0.0f), 1.0f))
MSLEMU_UNARY(sign, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f))
#undef MSLEMU_UNARY

// Unary functions with fast and precise variants. precise:: and fast:: get float, half (which
// is always precise) and vector overloads; the unqualified float overload follows the mode.
#define MSLEMU_FAST_UNARY(name, expr)                                                           \
  namespace precise {                                                                           \
  inline float name(float x) {                                                                  \
    return expr;                                                                                \
  }                                                                                             \
  inline half name(half h) {                                                                    \
    return half(name(static_cast<float>(h)));                                                   \
  }                                                                                             \
  MSLEMU_UNARY_VEC(::metal::precise, name)                                                      \
  }                                                                                             \
  namespace fast {                                                                              \
  inline float name(float x) {                                                                  \
    return ::torchless::mslemu::fast_math::name(x);                                             \
  }                                                                                             \
  inline half name(half h) {                                                                    \
    return precise::name(h);                                                                    \
  }                                                                                             \
  MSLEMU_UNARY_VEC(::metal::fast, name)                                                         \
  }                                                                                             \
  inline float name(float x) {                                                                  \
    return ::torchless::mslemu::detail::fast_math_functions ? fast::name(x) : precise::name(x); \
  }                                                                                             \
  inline half name(half h) {                                                                    \
    return precise::name(h);                                                                    \
  }                                                                                             \
  MSLEMU_UNARY_VEC(::metal, name)
MSLEMU_FAST_UNARY(sqrt, std::sqrt(x))
MSLEMU_FAST_UNARY(rsqrt, 1.0f / std::sqrt(x))
MSLEMU_FAST_UNARY(exp, std::exp(x))
MSLEMU_FAST_UNARY(exp2, std::exp2(x))
MSLEMU_FAST_UNARY(exp10, std::pow(10.0f, x))
MSLEMU_FAST_UNARY(log, std::log(x))
MSLEMU_FAST_UNARY(log2, std::log2(x))
MSLEMU_FAST_UNARY(log10, std::log10(x))
MSLEMU_FAST_UNARY(sin, std::sin(x))
MSLEMU_FAST_UNARY(cos, std::cos(x))
MSLEMU_FAST_UNARY(tan, std::tan(x))
MSLEMU_FAST_UNARY(asin, std::asin(x))
MSLEMU_FAST_UNARY(acos, std::acos(x))
MSLEMU_FAST_UNARY(atan, std::atan(x))
MSLEMU_FAST_UNARY(sinh, std::sinh(x))
MSLEMU_FAST_UNARY(cosh, std::cosh(x))
MSLEMU_FAST_UNARY(tanh, std::tanh(x))
#undef MSLEMU_FAST_UNARY
#undef MSLEMU_UNARY_VEC

// Binary float functions.
#define MSLEMU_BINARY_VEC(ns, name)                                        \
  template <class A, class B>                                              \
  requires VecOperands<A, B> && FloatScalar<elem_t<vec_result_t<A, B>>>    \
  inline vec_result_t<A, B> name(const A& a, const B& b) {                 \
    using R = vec_result_t<A, B>;                                          \
    const R va = to_vec<R>(a), vb = to_vec<R>(b);                          \
    R r;                                                                   \
    for (int i = 0; i < R::size; ++i) r.e[i] = ns::name(va.e[i], vb.e[i]); \
    return r;                                                              \
  }
#define MSLEMU_BINARY(name, expr)                                    \
  inline float name(float x, float y) {                              \
    return expr;                                                     \
  }                                                                  \
  inline half name(half a, half b) {                                 \
    return half(name(static_cast<float>(a), static_cast<float>(b))); \
  }                                                                  \
  MSLEMU_BINARY_VEC(::metal, name)
MSLEMU_BINARY(fmin, std::fmin(x, y))
MSLEMU_BINARY(fmax, std::fmax(x, y))
MSLEMU_BINARY(copysign, std::copysign(x, y))
MSLEMU_BINARY(step, y < x ? 0.0f : 1.0f)
#undef MSLEMU_BINARY

#define MSLEMU_FAST_BINARY(name, expr)                                             \
  namespace precise {                                                              \
  inline float name(float x, float y) {                                            \
    return expr;                                                                   \
  }                                                                                \
  inline half name(half a, half b) {                                               \
    return half(name(static_cast<float>(a), static_cast<float>(b)));               \
  }                                                                                \
  MSLEMU_BINARY_VEC(::metal::precise, name)                                        \
  }                                                                                \
  namespace fast {                                                                 \
  inline float name(float x, float y) {                                            \
    return ::torchless::mslemu::fast_math::name(x, y);                             \
  }                                                                                \
  inline half name(half a, half b) {                                               \
    return precise::name(a, b);                                                    \
  }                                                                                \
  MSLEMU_BINARY_VEC(::metal::fast, name)                                           \
  }                                                                                \
  inline float name(float x, float y) {                                            \
    return ::torchless::mslemu::detail::fast_math_functions ? fast::name(x, y)     \
                                                            : precise::name(x, y); \
  }                                                                                \
  inline half name(half a, half b) {                                               \
    return precise::name(a, b);                                                    \
  }                                                                                \
  MSLEMU_BINARY_VEC(::metal, name)
MSLEMU_FAST_BINARY(pow, std::pow(x, y))
MSLEMU_FAST_BINARY(powr, std::pow(x, y))
MSLEMU_FAST_BINARY(fmod, std::fmod(x, y))
MSLEMU_FAST_BINARY(atan2, std::atan2(x, y))
MSLEMU_FAST_BINARY(divide, x / y)
#undef MSLEMU_FAST_BINARY
#undef MSLEMU_BINARY_VEC

// min/max/abs/clamp for every scalar type (same-type operands, as MSL requires) and vectors.
template <Scalar T>
inline T min(T a, T b) {
  return b < a ? b : a;
}
template <Scalar T>
inline T max(T a, T b) {
  return a < b ? b : a;
}
template <Scalar T>
inline T clamp(T x, T lo, T hi) {
  return min(max(x, lo), hi);
}
template <Scalar T>
inline T abs(T x) {
  if constexpr (std::is_unsigned_v<T>) {
    return x;
  } else {
    return x < T(0) ? T(-x) : x;
  }
}
template <class A, class B>
requires VecOperands<A, B>
inline vec_result_t<A, B> min(const A& a, const B& b) {
  using R = vec_result_t<A, B>;
  const R va = to_vec<R>(a), vb = to_vec<R>(b);
  R r;
  for (int i = 0; i < R::size; ++i) r.e[i] = min(va.e[i], vb.e[i]);
  return r;
}
template <class A, class B>
requires VecOperands<A, B>
inline vec_result_t<A, B> max(const A& a, const B& b) {
  using R = vec_result_t<A, B>;
  const R va = to_vec<R>(a), vb = to_vec<R>(b);
  R r;
  for (int i = 0; i < R::size; ++i) r.e[i] = max(va.e[i], vb.e[i]);
  return r;
}
template <VecLike X, class L, class H>
inline vec_of_t<X> clamp(const X& x, const L& lo, const H& hi) {
  return min(max(x, lo), hi);
}
template <VecLike X>
inline vec_of_t<X> abs(const X& x) {
  return map(x, [](elem_t<X> c) { return abs(c); });
}

// fma/mad/mix/smoothstep: scalar float, half, and vectors (scalars broadcast).
inline float fma(float a, float b, float c) {
  return std::fma(a, b, c);
}
inline half fma(half a, half b, half c) {
  return half(std::fma(static_cast<float>(a), static_cast<float>(b), static_cast<float>(c)));
}
inline float mad(float a, float b, float c) {
  return a * b + c;
}
inline half mad(half a, half b, half c) {
  return fma(a, b, c);
}
inline float mix(float x, float y, float a) {
  return x + (y - x) * a;
}
inline half mix(half x, half y, half a) {
  return half(mix(static_cast<float>(x), static_cast<float>(y), static_cast<float>(a)));
}
inline float smoothstep(float e0, float e1, float x) {
  const float t = std::fmin(std::fmax((x - e0) / (e1 - e0), 0.0f), 1.0f);
  return t * t * (3.0f - 2.0f * t);
}
#define MSLEMU_TERNARY(name)                                                    \
  template <VecLike X, class B, class C>                                        \
  inline vec_of_t<X> name(const X& a, const B& b, const C& c) {                 \
    using R = vec_of_t<X>;                                                      \
    const R va = a, vb = to_vec<R>(b), vc = to_vec<R>(c);                       \
    R r;                                                                        \
    for (int i = 0; i < R::size; ++i) r.e[i] = name(va.e[i], vb.e[i], vc.e[i]); \
    return r;                                                                   \
  }
MSLEMU_TERNARY(fma)
MSLEMU_TERNARY(mad)
MSLEMU_TERNARY(mix)
#undef MSLEMU_TERNARY

// Classification.
template <FloatScalar T>
inline bool isnan(T x) {
  return std::isnan(static_cast<float>(x));
}
template <FloatScalar T>
inline bool isinf(T x) {
  return std::isinf(static_cast<float>(x));
}
template <FloatScalar T>
inline bool isfinite(T x) {
  return std::isfinite(static_cast<float>(x));
}
template <VecLike X>
inline vec<bool, size_v<X>> isnan(const X& x) {
  return map(x, [](elem_t<X> c) { return isnan(c); });
}
template <VecLike X>
inline vec<bool, size_v<X>> isinf(const X& x) {
  return map(x, [](elem_t<X> c) { return isinf(c); });
}
template <VecLike X>
inline vec<bool, size_v<X>> isfinite(const X& x) {
  return map(x, [](elem_t<X> c) { return isfinite(c); });
}

// Boolean reductions and select.
inline bool all(bool b) {
  return b;
}
inline bool any(bool b) {
  return b;
}
template <VecLike X>
inline bool all(const X& x) {
  const vec_of_t<X> v = x;
  for (int i = 0; i < size_v<X>; ++i)
    if (!v.e[i]) return false;
  return true;
}
template <VecLike X>
inline bool any(const X& x) {
  const vec_of_t<X> v = x;
  for (int i = 0; i < size_v<X>; ++i)
    if (v.e[i]) return true;
  return false;
}
template <Scalar T>
inline T select(T a, T b, bool c) {
  return c ? b : a;
}
template <VecLike X, class B, class C>
inline vec_of_t<X> select(const X& a, const B& b, const C& c) {
  using R = vec_of_t<X>;
  const R va = a, vb = to_vec<R>(b);
  const vec<bool, R::size> vc = to_vec<vec<bool, R::size>>(c);
  R r;
  for (int i = 0; i < R::size; ++i) r.e[i] = vc.e[i] ? vb.e[i] : va.e[i];
  return r;
}

// Geometry.
template <class A, class B>
requires VecLike<A> && VecLike<B> && VecOperands<A, B>
inline elem_t<A> dot(const A& a, const B& b) {
  const vec_of_t<A> va = a, vb = b;
  elem_t<A> s = va.e[0] * vb.e[0];
  for (int i = 1; i < size_v<A>; ++i) s = elem_t<A>(s + va.e[i] * vb.e[i]);
  return s;
}
template <VecLike X>
inline elem_t<X> length_squared(const X& x) {
  return dot(x, x);
}

// Integer bit functions.
template <class T>
requires std::is_integral_v<T>
inline T popcount(T x) {
  return static_cast<T>(std::popcount(static_cast<std::make_unsigned_t<T>>(x)));
}
template <class T>
requires std::is_integral_v<T>
inline T clz(T x) {
  return static_cast<T>(std::countl_zero(static_cast<std::make_unsigned_t<T>>(x)));
}
template <class T>
requires std::is_integral_v<T>
inline T ctz(T x) {
  return static_cast<T>(std::countr_zero(static_cast<std::make_unsigned_t<T>>(x)));
}

// as_type: reinterpret the bits of a value of the same size.
template <class To, class From>
inline To as_type(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs types of the same size");
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

// The functions without a fast variant (or whose variants differ only in NaN handling, which
// the emulator does not model) are the same in fast:: and precise::.
// clang-format off
#define MSLEMU_MATH_NAMES(X)                                                                   \
  X(floor) X(ceil) X(round) X(rint) X(trunc) X(fabs) X(fract) X(saturate) X(sign) X(fmin)      \
  X(fmax) X(copysign) X(step) X(min) X(max) X(clamp) X(abs) X(fma) X(mad) X(mix) X(smoothstep) \
  X(isnan) X(isinf) X(isfinite) X(dot) X(length_squared)
// clang-format on
#define MSLEMU_USING(name) using ::metal::name;
namespace fast {
MSLEMU_MATH_NAMES(MSLEMU_USING)
}
namespace precise {
MSLEMU_MATH_NAMES(MSLEMU_USING)
}

// Geometric functions with fast and precise variants: each uses its namespace's sqrt/rsqrt.
#define MSLEMU_GEOMETRY(ns)                           \
  template <VecLike X>                                \
  inline elem_t<X> length(const X& x) {               \
    return ns::sqrt(::metal::dot(x, x));              \
  }                                                   \
  template <VecLike X>                                \
  inline vec_of_t<X> normalize(const X& x) {          \
    return x * ns::rsqrt(::metal::dot(x, x));         \
  }                                                   \
  template <class A, class B>                         \
  requires VecLike<A> && VecLike<B>                   \
  inline elem_t<A> distance(const A& a, const B& b) { \
    return ns::length(a - b);                         \
  }
MSLEMU_GEOMETRY(::metal)
namespace fast {
MSLEMU_GEOMETRY(::metal::fast)
}
namespace precise {
MSLEMU_GEOMETRY(::metal::precise)
}
#undef MSLEMU_GEOMETRY

}  // namespace metal

// mslemu_gen puts the .metal text in (anonymous)::mslemu_kernels. There `using namespace metal;`
// makes metal's functions visible as if declared in the global namespace, where libc++'s
// <math.h> also declares float overloads of the C functions (::exp(float), ...; libstdc++ has
// only the C library's double ones there), so exp(x) of a float would be ambiguous. Declared in
// the kernels' own namespace, the metal functions are found first, as on a GPU.
// clang-format off
#define MSLEMU_MODE_MATH_NAMES(X)                                                             \
  X(sqrt) X(rsqrt) X(exp) X(exp2) X(exp10) X(log) X(log2) X(log10) X(sin) X(cos) X(tan)      \
  X(asin) X(acos) X(atan) X(sinh) X(cosh) X(tanh) X(pow) X(powr) X(fmod) X(atan2) X(divide)
// clang-format on
namespace {
namespace mslemu_kernels {
MSLEMU_MATH_NAMES(MSLEMU_USING)
MSLEMU_MODE_MATH_NAMES(MSLEMU_USING)
}  // namespace mslemu_kernels
}  // namespace
#undef MSLEMU_MODE_MATH_NAMES
#undef MSLEMU_USING
#undef MSLEMU_MATH_NAMES
