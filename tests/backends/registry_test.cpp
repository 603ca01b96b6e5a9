#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "torchless/backends/backend.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

using ::testing::HasSubstr;

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BackendRegistry, NamesParse) {
  EXPECT_EQ(parse_backend_preference("auto"), BackendPreference::Auto);
  EXPECT_EQ(parse_backend_preference("cpu"), BackendPreference::Cpu);
  EXPECT_EQ(parse_backend_preference("metal"), BackendPreference::Metal);
  EXPECT_EQ(parse_backend_preference("cuda"), BackendPreference::Cuda);
}

TEST(BackendRegistry, UnknownNameListsValidNames) {
  const std::string message = error_of([] { parse_backend_preference("tpu"); });
  EXPECT_THAT(message, HasSubstr("'tpu'"));
  EXPECT_THAT(message, HasSubstr("auto, cpu, metal, cuda"));
  EXPECT_THAT(error_of([] { init_backend("vulkan"); }), HasSubstr("valid:"));
}

TEST(BackendRegistry, CpuIsAlwaysAvailable) {
  const auto backend = init_backend(BackendPreference::Cpu);
  EXPECT_EQ(backend->name(), "cpu");
  EXPECT_EQ(init_backend("cpu")->name(), "cpu");
}

TEST(BackendRegistry, AutoPicksAnAvailableBackend) {
  const auto backend = init_backend(BackendPreference::Auto);
#if defined(TORCHLESS_HAS_METAL)
  EXPECT_TRUE(backend->name() == "metal" || backend->name() == "cpu");
#else
  EXPECT_EQ(backend->name(), "cpu");  // no GPU backend in this build
#endif
  EXPECT_EQ(init_backend("auto")->name(), backend->name());
}

TEST(BackendRegistry, UnavailableBackendsSayWhy) {
#if !defined(TORCHLESS_HAS_METAL)
  EXPECT_THAT(error_of([] { init_backend(BackendPreference::Metal); }),
              HasSubstr("built without the Metal backend (configure with -DTORCHLESS_METAL=ON"));
#endif
  // CUDA: not built (no toolkit), or built without a device here; either way the error
  // carries the reason discover_backends() gives. On a GPU machine there is nothing to check.
  for (const BackendInfo& info : discover_backends()) {
    if (info.name != "cuda" || info.available) continue;
    EXPECT_THAT(error_of([] { init_backend(BackendPreference::Cuda); }), HasSubstr(info.detail));
    EXPECT_THAT(error_of([] { init_backend("cuda"); }), HasSubstr(info.detail));
  }
}

TEST(BackendRegistry, DiscoverListsEveryBackendWithDeviceOrReason) {
  const auto infos = discover_backends();
  std::vector<std::string> names;
  for (const auto& info : infos) {
    names.push_back(info.name);
    EXPECT_FALSE(info.detail.empty()) << info.name;
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"cpu", "metal", "cuda"}));
  EXPECT_TRUE(infos.at(0).available);
  EXPECT_EQ(infos.at(0).name, "cpu");
}

TEST(BackendRegistry, ThreadOptionReachesTheCpuBackend) {
  BackendOptions options;
  options.threads = 3;
  const auto backend = init_backend(BackendPreference::Cpu, options);
  EXPECT_THAT(backend->device().name, HasSubstr("(3 threads)"));
}

}  // namespace
}  // namespace torchless
