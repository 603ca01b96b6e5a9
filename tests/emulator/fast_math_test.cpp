// The emulator's model of Metal's fast math functions (shim/mslemu_fast_math.h) against float64
// references: every bound of MSL Table 8.2 is reached but never exceeded, the error's sign
// changes between inputs, and the rows that say "implemented as" are exactly that formula.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include <fmt/format.h>

#include "torchless/backends/metal/emulator/shim/mslemu_fast_math.h"

namespace torchless::mslemu::fast_math {
namespace {

constexpr uint32_t kSeed = 8;

double ulp_of(double r) {
  return std::ldexp(1.0, std::ilogb(r) - 23);
}

std::vector<float> uniform(size_t n, float lo, float hi, uint32_t seed = kSeed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Errors of one function over a sample, against the bound of each input.
struct ErrorStats {
  int over = 0;      // |error| > bound
  int short_of = 0;  // |error| < bound by more than one float step of the result
  int up = 0, down = 0;
  std::string first_failure;

  void add(float x, double got, double exact, double bound) {
    const double error = got - exact;
    const double step = ulp_of(std::max(std::fabs(got), std::fabs(exact)));
    const bool is_over = std::fabs(error) > bound, is_short = std::fabs(error) < bound - step;
    over += is_over;
    short_of += is_short;
    if ((is_over || is_short) && first_failure.empty())
      first_failure = fmt::format("x {} got {} exact {} bound {}", x, got, exact, bound);
    (error > 0 ? up : down) += 1;
  }
  // Within the bound everywhere, at the bound up to one float step, both signs common.
  void expect_worst(const char* what) const {
    EXPECT_EQ(over + short_of, 0) << what << ": " << first_failure << " seed " << kSeed;
    EXPECT_GT(up, (up + down) / 3) << what << " seed " << kSeed;
    EXPECT_GT(down, (up + down) / 3) << what << " seed " << kSeed;
  }
};

TEST(FastMath, ExpAndExp2ErrByThreePlusTwiceTheArgumentInUlps) {
  ErrorStats e, e2;
  for (float x : uniform(20000, -80.0f, 80.0f)) {
    const double bound = 3.0 + std::floor(std::fabs(2.0 * x));
    const double exact = std::exp(static_cast<double>(x));
    e.add(x, fast_math::exp(x), exact, bound * ulp_of(exact));
    const double exact2 = std::exp2(static_cast<double>(x));
    e2.add(x, fast_math::exp2(x), exact2, bound * ulp_of(exact2));
  }
  e.expect_worst("exp");
  e2.expect_worst("exp2");
  EXPECT_EQ(fast_math::exp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(fast_math::exp(200.0f), std::numeric_limits<float>::infinity());
}

TEST(FastMath, LogAndLog2AreAbsoluteNearOneAndInUlpsElsewhere) {
  ErrorStats near_log, near_log2, far_log, far_log2;
  for (float x : uniform(20000, 0.5f, 2.0f)) {
    near_log.add(x, fast_math::log(x), std::log(static_cast<double>(x)), 0x1p-21);
    near_log2.add(x, fast_math::log2(x), std::log2(static_cast<double>(x)), 0x1p-22);
  }
  for (float e : uniform(20000, -120.0f, 120.0f)) {
    const float x = std::exp2(e);
    if (x >= 0.5f && x <= 2.0f) continue;
    const double exact = std::log(static_cast<double>(x)),
                 exact2 = std::log2(static_cast<double>(x));
    far_log.add(x, fast_math::log(x), exact, 3.0 * ulp_of(exact));
    far_log2.add(x, fast_math::log2(x), exact2, 2.0 * ulp_of(exact2));
  }
  near_log.expect_worst("log on [0.5, 2]");
  near_log2.expect_worst("log2 on [0.5, 2]");
  far_log.expect_worst("log");
  far_log2.expect_worst("log2");
  EXPECT_TRUE(std::isnan(fast_math::log(-1.0f)));
  EXPECT_TRUE(std::isnan(fast_math::log2(-0.5f)));
  EXPECT_EQ(fast_math::log2(0.0f), -std::numeric_limits<float>::infinity());
}

TEST(FastMath, SinAndCosErrByTwoToMinus13InsidePiAndMoreOutside) {
  constexpr double kPiD = 3.14159265358979323846;
  ErrorStats s, c;
  for (float x : uniform(20000, -3.14159f, 3.14159f)) {
    s.add(x, fast_math::sin(x), std::sin(static_cast<double>(x)), 0x1p-13);
    c.add(x, fast_math::cos(x), std::cos(static_cast<double>(x)), 0x1p-13);
  }
  s.expect_worst("sin on [-pi, pi]");
  c.expect_worst("cos on [-pi, pi]");
  // Outside [-pi, pi] the error grows with |x| / pi; results stay in [-1, 1].
  for (float x : uniform(2000, 4.0f, 20000.0f)) {
    for (float v : {x, -x}) {
      const double exact = std::sin(static_cast<double>(v));
      const float got = fast_math::sin(v);
      const double bound = 0x1p-13 * std::fabs(v) / kPiD;
      ASSERT_LE(std::fabs(got), 1.0f) << v;
      ASSERT_LE(std::fabs(got - exact), bound * (1 + 1e-6)) << v;
      if (std::fabs(got) < 1.0f) {
        ASSERT_GE(std::fabs(got - exact), bound * (1 - 1e-3)) << v;
      }
    }
  }
  EXPECT_GT(std::fabs(fast_math::cos(3000.0f) - std::cos(3000.0)), 0.05);
  EXPECT_TRUE(std::isnan(fast_math::sin(std::numeric_limits<float>::infinity())));
}

TEST(FastMath, RsqrtAsinAcosAtanErrInUlps) {
  ErrorStats r, as, ac, at;
  for (float e : uniform(20000, -100.0f, 100.0f)) {
    const float x = std::exp2(e);
    const double exact = 1.0 / std::sqrt(static_cast<double>(x));
    r.add(x, fast_math::rsqrt(x), exact, 2.0 * ulp_of(exact));
    const double exact_atan = std::atan(static_cast<double>(x));
    at.add(x, fast_math::atan(x), exact_atan, 5.0 * ulp_of(exact_atan));
  }
  for (float x : uniform(20000, -1.0f, 1.0f)) {
    const double exact_asin = std::asin(static_cast<double>(x));
    as.add(x, fast_math::asin(x), exact_asin, 5.0 * ulp_of(exact_asin));
    const double exact_acos = std::acos(static_cast<double>(x));
    ac.add(x, fast_math::acos(x), exact_acos, 5.0 * ulp_of(exact_acos));
  }
  r.expect_worst("rsqrt");
  as.expect_worst("asin");
  ac.expect_worst("acos");
  at.expect_worst("atan");
  EXPECT_TRUE(std::isnan(fast_math::rsqrt(-1.0f)));
  EXPECT_TRUE(std::isnan(fast_math::asin(1.5f)));
}

TEST(FastMath, DivideErrsByTwoAndAHalfUlpsInsideItsDomainOnly) {
  ErrorStats d;
  const auto num = uniform(20000, -1000.0f, 1000.0f, kSeed + 1);
  const auto den = uniform(20000, -60.0f, 60.0f, kSeed + 2);
  for (size_t i = 0; i < num.size(); ++i) {
    const float y = std::copysign(std::exp2(den[i]), num[(i + 1) % num.size()]);
    const double exact = static_cast<double>(num[i]) / y;
    d.add(num[i], fast_math::divide(num[i], y), exact, 2.5 * ulp_of(exact));
  }
  d.expect_worst("divide");
  EXPECT_TRUE(std::isnan(fast_math::divide(1.0f, 0.0f)));
  EXPECT_TRUE(std::isnan(fast_math::divide(1.0f, 1e38f)));  // |y| > 2^126
  EXPECT_TRUE(std::isnan(fast_math::fmod(5.0f, 3.0f)));     // Table 8.2: "Undefined"
}

TEST(FastMath, ImplementedAsRowsAreThoseFormulas) {
  const float log2_10 = static_cast<float>(std::log2(10.0));
  const float log10_2 = static_cast<float>(std::log10(2.0));
  for (float x : uniform(2000, -8.0f, 8.0f)) {
    const float p = std::fabs(x) + 0.01f;
    ASSERT_EQ(fast_math::exp10(x), fast_math::exp2(x * log2_10)) << x;
    ASSERT_EQ(fast_math::log10(p), fast_math::log2(p) * log10_2) << x;
    ASSERT_EQ(fast_math::pow(p, x), fast_math::exp2(x * fast_math::log2(p))) << x;
    ASSERT_EQ(fast_math::powr(p, x), fast_math::pow(p, x)) << x;
    ASSERT_EQ(fast_math::sqrt(p), p * fast_math::rsqrt(p)) << x;
    ASSERT_EQ(fast_math::tan(x), fast_math::sin(x) * fast_math::recip(fast_math::cos(x))) << x;
    ASSERT_EQ(fast_math::sinh(x), 0.5f * (fast_math::exp(x) - fast_math::exp(-x))) << x;
    ASSERT_EQ(fast_math::cosh(x), 0.5f * (fast_math::exp(x) + fast_math::exp(-x))) << x;
    const float t = fast_math::exp(2.0f * x);
    ASSERT_EQ(fast_math::tanh(x), fast_math::divide(t - 1.0f, t + 1.0f)) << x;
  }
  // Undefined or non-finite cases of those formulas.
  EXPECT_TRUE(std::isnan(fast_math::pow(0.0f, 0.0f)));
  EXPECT_TRUE(std::isnan(fast_math::pow(-2.0f, 2.0f)));  // log2 of a negative number
  EXPECT_EQ(fast_math::pow(0.0f, 3.0f), 0.0f);
  EXPECT_TRUE(std::isnan(fast_math::tanh(50.0f)));  // exp(100) overflows: inf / inf
  EXPECT_NEAR(fast_math::tanh(-50.0f), -1.0f, 1e-6f);
  EXPECT_EQ(fast_math::sqrt(-0.0f), -0.0f);
  EXPECT_TRUE(std::signbit(fast_math::sqrt(-0.0f)));
  EXPECT_EQ(fast_math::sqrt(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fast_math::atan2(0.0f, 1.0f)));
  EXPECT_NEAR(fast_math::atan2(1.0f, -1.0f), std::atan2(1.0, -1.0), 1e-5);
  EXPECT_NEAR(fast_math::atan2(-1.0f, -1.0f), std::atan2(-1.0, -1.0), 1e-5);
}

TEST(FastMath, ErrorsAreDeterministic) {
  for (float x : uniform(1000, -10.0f, 10.0f)) {
    ASSERT_EQ(fast_math::exp(x), fast_math::exp(x)) << x;
    ASSERT_EQ(fast_math::sin(x), fast_math::sin(x)) << x;
  }
}

}  // namespace
}  // namespace torchless::mslemu::fast_math
