// Options::math_functions reaches the kernel: unqualified math functions are the fast variants
// in fast mode and the precise ones otherwise, on every worker thread, while fast:: and
// precise:: calls ignore the option; TORCHLESS_MSL_MATH selects the mode.
#include <gtest/gtest.h>

#include <cstdlib>

#include "emulator/emulator_test_util.h"

namespace torchless::mslemu {
namespace {

struct Spellings {
  std::vector<float> unqualified, fast, precise;
};

// 37 threadgroups of 32 over x in [-3, 3], run with `math` on two OS threads.
Spellings run_spellings(MathFunctions math) {
  testing::register_kernels();
  constexpr uint32_t kGroups = 37, kThreads = 32, kN = kGroups * kThreads;
  const std::vector<float> x = testing::random_floats(kN, 41, -3.0f, 3.0f);
  Spellings s{std::vector<float>(kN), std::vector<float>(kN), std::vector<float>(kN)};
  Options o = default_options();
  o.math_functions = math;
  o.os_threads = 2;
  Dispatch("math_spellings")
      .buffer(0, const_cast<float*>(x.data()), kN * sizeof(float))
      .buffer(1, s.unqualified.data(), kN * sizeof(float))
      .buffer(2, s.fast.data(), kN * sizeof(float))
      .buffer(3, s.precise.data(), kN * sizeof(float))
      .dispatch_threadgroups({kGroups, 1, 1}, {kThreads, 1, 1}, o);
  return s;
}

TEST(MathModes, UnqualifiedFunctionsFollowTheOption) {
  const Spellings fast = run_spellings(MathFunctions::Fast);
  const Spellings precise = run_spellings(MathFunctions::Precise);
  EXPECT_EQ(fast.unqualified, fast.fast) << "seed 41";
  EXPECT_EQ(precise.unqualified, precise.precise) << "seed 41";
  // The variants themselves do not depend on the option, and do differ.
  EXPECT_EQ(fast.fast, precise.fast);
  EXPECT_EQ(fast.precise, precise.precise);
  size_t differing = 0;
  for (size_t i = 0; i < fast.fast.size(); ++i) differing += fast.fast[i] != fast.precise[i];
  EXPECT_GT(differing, fast.fast.size() * 9 / 10) << "seed 41";
}

TEST(MathModes, PreciseIsTheDefaultAndTheEnvironmentSelectsFast) {
  const char* saved = std::getenv("TORCHLESS_MSL_MATH");
  const std::string restore = saved ? saved : "";
  unsetenv("TORCHLESS_MSL_MATH");
  EXPECT_EQ(default_options().math_functions, MathFunctions::Precise);
  setenv("TORCHLESS_MSL_MATH", "fast", 1);
  EXPECT_EQ(default_options().math_functions, MathFunctions::Fast);
  setenv("TORCHLESS_MSL_MATH", "precise", 1);
  EXPECT_EQ(default_options().math_functions, MathFunctions::Precise);
  setenv("TORCHLESS_MSL_MATH", "relaxed", 1);
  EXPECT_THROW(default_options(), Error);
  if (saved) {
    setenv("TORCHLESS_MSL_MATH", restore.c_str(), 1);
  } else {
    unsetenv("TORCHLESS_MSL_MATH");
  }
}

}  // namespace
}  // namespace torchless::mslemu
