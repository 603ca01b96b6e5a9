// SharedLibrary against the C math library, which every test machine has: the candidate that
// opens is the first the loader finds, a symbol resolves to the function the linker gives this
// program, and a missing library or symbol is an Error naming it.
#include "torchless/core/shared_library.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "torchless/core/error.h"

namespace torchless {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

using CosFn = double (*)(double);

// No such file anywhere, then libm as glibc names it, then as macOS does.
const std::vector<std::string> kMathCandidates = {"libtorchless-no-such-library.so", "libm.so.6",
                                                  "libm.dylib"};

TEST(SharedLibrary, OpensTheFirstCandidateTheLoaderFinds) {
  const SharedLibrary library("libm", kMathCandidates);
  EXPECT_EQ(library.name(), "libm");
  EXPECT_NE(library.file_name(), kMathCandidates[0]);
  EXPECT_THAT(kMathCandidates, ::testing::Contains(library.file_name()));
}

TEST(SharedLibrary, ResolvesAFunctionThatComputesLikeTheLinkedOne) {
  const SharedLibrary library("libm", kMathCandidates);
  const auto cos_fn = library.symbol<CosFn>("cos");
  ASSERT_NE(cos_fn, nullptr);
  for (double x : {0.0, 0.5, -1.25, 3.0}) EXPECT_DOUBLE_EQ(cos_fn(x), std::cos(x)) << "x = " << x;
  CosFn bound = nullptr;
  library.bind("cos", bound);
  EXPECT_EQ(bound, cos_fn);
}

TEST(SharedLibrary, AMissingLibraryNamesItTheFilesTriedAndTheRemedy) {
  try {
    const SharedLibrary library("libnothing", {"libtorchless-none-1.so", "libtorchless-none-2.so"},
                                "install nothing");
    FAIL() << "opened " << library.file_name();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("libnothing could not be opened"),
                                HasSubstr("libtorchless-none-1.so, libtorchless-none-2.so"),
                                // the loader's reason for the first, which names the file
                                ContainsRegex("none-2\\.so: .*libtorchless-none-1\\.so"),
                                HasSubstr("; install nothing")));
  }
}

TEST(SharedLibrary, AMissingSymbolNamesTheLibraryAndTheSymbol) {
  const SharedLibrary library("libm", kMathCandidates);
  try {
    library.symbol<CosFn>("torchless_no_such_symbol");
    FAIL() << "resolved a symbol libm does not have";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("libm (" + library.file_name() + ")"),
                                HasSubstr("has no torchless_no_such_symbol")));
  }
}

}  // namespace
}  // namespace torchless
