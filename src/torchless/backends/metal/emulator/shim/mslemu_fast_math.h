#pragma once
// Metal's fast single-precision math functions at the worst accuracy the Metal Shading Language
// specification allows them: MSL 4 and 4.1, section 8.4, "Table 8.2. Accuracy of
// single-precision operations and functions with fast math enabled" (the same in both
// revisions). From macOS 15 on, an unqualified sin/exp/... compiles to these unless the library
// is compiled with mathFloatingPointFunctions = precise (-fmetal-math-fp32-functions=precise,
// MSL section 1.6.3); metal::fast:: always names them. A kernel that is correct only with
// precise functions fails in the emulator's fast-math mode instead of on a user's Mac.
//
// How "worst allowed" is modelled. Each function computes the exact result in double and moves
// it by the full error the table allows, up or down by a hash of the function and its
// arguments: deterministic, at the bound, and of changing sign between neighbouring elements (a
// uniform bias would cancel in normalisations such as softmax). ulp(r) is the spacing of floats
// in r's binade, 2^(floor(log2 |r|) - 23).
//   exp, exp2            (3 + floor(|2x|)) ulp
//   log                  2^-21 absolute on [0.5, 2], else 3 ulp
//   log2                 2^-22 absolute on [0.5, 2], else 2 ulp
//                        (both: x < 0 undefined, NaN; x = 0 gives -inf, which the pow row needs)
//   rsqrt                2 ulp
//   1.0 / x (reciprocal) 1 ulp for |x| in [2^-126, 2^126]
//   divide(x, y)         2.5 ulp for |y| in [2^-126, 2^126]; undefined (NaN) outside
//   sin, cos             2^-13 absolute on [-pi, pi]. Outside, the table says only "larger
//                        otherwise"; the emulator lets the error grow as 2^-13 * |x| / pi and
//                        keeps the result in [-1, 1], so a kernel that feeds large angles (RoPE
//                        angles reach the token position) to fast sin/cos fails clearly
//   asin, acos, atan     5 ulp (asin below |x| = 2^-125 returns x)
//   fmod                 "Undefined": NaN
// Rows that say "implemented as" are evaluated as written, in float, over the fast functions
// above: exp10 = exp2(x * log2(10)), log10 = log2(x) * log10(2), pow = powr = exp2(y * log2(x))
// (undefined, NaN, for x = 0 and y = 0, and NaN for x < 0 through log2), sqrt = x * rsqrt(x)
// (0 and inf exact), tan = sin(x) * (1.0 / cos(x)), tanh = (t - 1) / (t + 1) with t = exp(2x)
// (NaN once t overflows), sinh and cosh = 0.5 * (exp(x) -+ exp(-x)), atan2(y, x) = atan(y / x)
// (+ or - pi for x < 0; undefined, NaN, when x = 0 or y = 0).
// Not modelled: arithmetic operators stay IEEE (the host keeps mathMode = safe, so the
// compiler neither reassociates nor assumes finite values); results that are zero, subnormal,
// infinite or NaN are returned exact (the ulp bounds speak of finite results, and section 8.1
// leaves INF and NaN handling under fast math undefined, which the emulator does not try to
// imitate); half functions stay precise (Table 8.3 for half has no fast variant).
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

namespace torchless::mslemu::fast_math {

// The function whose error is drawn; part of the hash, so that exp(x) and log(x) of one x do
// not err in lockstep.
enum class Fn : uint32_t {
  Exp = 1,
  Exp2,
  Log,
  Log2,
  Rsqrt,
  Recip,
  Divide,
  Sin,
  Cos,
  Asin,
  Acos,
  Atan
};

constexpr double kPi = 3.14159265358979323846;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kTrigAbs = 0x1p-13;  // sin, cos on [-pi, pi]

// Whether the error of fn at (a, b) is added (true) or subtracted: splitmix64's finaliser over
// the arguments' bits.
inline bool error_up(Fn fn, float a, float b = 0.0f) {
  uint64_t z = (uint64_t{std::bit_cast<uint32_t>(a)} << 32 | std::bit_cast<uint32_t>(b)) ^
               (static_cast<uint64_t>(fn) * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return ((z ^ (z >> 31)) & 1u) != 0;
}

// The float at `bound` from `exact` in the direction `up`, or the next one toward `exact` if
// rounding went past the bound: the error is as large as allowed, never larger.
inline float off_by(double exact, double bound, bool up) {
  float f = static_cast<float>(up ? exact + bound : exact - bound);
  if (!(std::fabs(static_cast<double>(f) - exact) <= bound))
    f = std::nextafter(f, static_cast<float>(exact));
  return f;
}

// exact with an error of `ulps` ulp; results outside the normal float range stay exact.
inline float off_by_ulps(double exact, double ulps, bool up) {
  const double magnitude = std::fabs(exact);
  if (!(magnitude >= FLT_MIN && magnitude <= FLT_MAX)) return static_cast<float>(exact);
  return off_by(exact, ulps * std::ldexp(1.0, std::ilogb(exact) - 23), up);
}

inline float exp(float x) {
  return off_by_ulps(std::exp(static_cast<double>(x)), 3.0 + std::floor(std::fabs(2.0 * x)),
                     error_up(Fn::Exp, x));
}

inline float exp2(float x) {
  return off_by_ulps(std::exp2(static_cast<double>(x)), 3.0 + std::floor(std::fabs(2.0 * x)),
                     error_up(Fn::Exp2, x));
}

// log and log2 share a shape: an absolute bound on [0.5, 2], an ulp bound elsewhere.
inline float log_like(Fn fn, double exact, float x, double absolute, double ulps) {
  if (std::isnan(x) || x < 0.0f) return kNaN;
  if (x == 0.0f) return -kInf;
  if (std::isinf(x)) return kInf;
  if (x >= 0.5f && x <= 2.0f) return off_by(exact, absolute, error_up(fn, x));
  return off_by_ulps(exact, ulps, error_up(fn, x));
}

inline float log(float x) {
  return log_like(Fn::Log, std::log(static_cast<double>(x)), x, 0x1p-21, 3.0);
}

inline float log2(float x) {
  return log_like(Fn::Log2, std::log2(static_cast<double>(x)), x, 0x1p-22, 2.0);
}

inline float exp10(float x) {
  return fast_math::exp2(x * static_cast<float>(3.32192809488736234787));  // log2(10)
}

inline float log10(float x) {
  return fast_math::log2(x) * static_cast<float>(0.30102999566398119521);  // log10(2)
}

inline float rsqrt(float x) {
  if (std::isnan(x) || x < 0.0f) return kNaN;
  if (x == 0.0f) return kInf;
  return off_by_ulps(1.0 / std::sqrt(static_cast<double>(x)), 2.0, error_up(Fn::Rsqrt, x));
}

inline float sqrt(float x) {
  if (x == 0.0f || std::isinf(x)) return x;  // "special cases handled correctly"
  return x * fast_math::rsqrt(x);
}

inline bool in_division_domain(float y) {
  const float m = std::fabs(y);
  return m >= 0x1p-126f && m <= 0x1p126f;
}

// 1.0 / x, as the implementations of tan and tanh use it.
inline float recip(float x) {
  if (!in_division_domain(x)) return 1.0f / x;
  return off_by_ulps(1.0 / static_cast<double>(x), 1.0, error_up(Fn::Recip, x));
}

inline float divide(float x, float y) {
  if (!in_division_domain(y) || !std::isfinite(x)) return kNaN;
  return off_by_ulps(static_cast<double>(x) / y, 2.5, error_up(Fn::Divide, x, y));
}

// sin and cos: the in-domain absolute bound, growing with |x| / pi outside [-pi, pi].
inline float trig(Fn fn, double exact, float x) {
  if (!std::isfinite(x)) return kNaN;
  const double reach = std::fabs(static_cast<double>(x)) / kPi;
  if (reach <= 1.0) return off_by(exact, kTrigAbs, error_up(fn, x));
  const float f = off_by(exact, kTrigAbs * reach, error_up(fn, x));
  return std::fmin(std::fmax(f, -1.0f), 1.0f);
}

inline float sin(float x) {
  return trig(Fn::Sin, std::sin(static_cast<double>(x)), x);
}

inline float cos(float x) {
  return trig(Fn::Cos, std::cos(static_cast<double>(x)), x);
}

inline float tan(float x) {
  return fast_math::sin(x) * recip(fast_math::cos(x));
}

inline float asin(float x) {
  if (!(std::fabs(x) <= 1.0f)) return kNaN;
  if (std::fabs(x) < 0x1p-125f) return x;
  return off_by_ulps(std::asin(static_cast<double>(x)), 5.0, error_up(Fn::Asin, x));
}

inline float acos(float x) {
  if (!(std::fabs(x) <= 1.0f)) return kNaN;
  return off_by_ulps(std::acos(static_cast<double>(x)), 5.0, error_up(Fn::Acos, x));
}

inline float atan(float x) {
  return off_by_ulps(std::atan(static_cast<double>(x)), 5.0, error_up(Fn::Atan, x));
}

inline float atan2(float y, float x) {
  if (x == 0.0f || y == 0.0f || std::isnan(x) || std::isnan(y)) return kNaN;
  const float a = fast_math::atan(divide(y, x));
  if (x > 0.0f) return a;
  constexpr float kPiF = static_cast<float>(kPi);
  return y > 0.0f ? a + kPiF : a - kPiF;
}

inline float sinh(float x) {
  return 0.5f * (fast_math::exp(x) - fast_math::exp(-x));
}

inline float cosh(float x) {
  return 0.5f * (fast_math::exp(x) + fast_math::exp(-x));
}

inline float tanh(float x) {
  const float t = fast_math::exp(2.0f * x);
  return divide(t - 1.0f, t + 1.0f);
}

inline float pow(float x, float y) {
  if (x == 0.0f && y == 0.0f) return kNaN;
  return fast_math::exp2(y * fast_math::log2(x));
}

inline float powr(float x, float y) {
  return fast_math::pow(x, y);
}

inline float fmod(float, float) {
  return kNaN;
}

}  // namespace torchless::mslemu::fast_math
