#include "torchless/engine/weight_prefetch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace torchless {
namespace {

TEST(WeightPrefetch, TouchesEveryWeightByte) {
  std::vector<std::byte> a(100000, std::byte{1}), b(7, std::byte{2});
  WeightStore store;
  store.add("a", {Shape{25000}, DType::F32, a.data(), a.size()});
  store.add("b", {Shape{7}, DType::I8, b.data(), b.size()});
  EXPECT_EQ(prefetch_weights(store, {}), a.size() + b.size());
}

TEST(WeightPrefetch, SkipsTheTensorsItIsToldTo) {
  std::vector<std::byte> a(100000, std::byte{1}), b(7, std::byte{2});
  WeightStore store;
  store.add("a", {Shape{25000}, DType::F32, a.data(), a.size()});
  store.add("b", {Shape{7}, DType::I8, b.data(), b.size()});
  PrefetchOptions options;
  options.skip = [](const std::string& name, const HostTensorView&) { return name == "a"; };
  EXPECT_EQ(prefetch_weights(store, options), b.size());
}

TEST(WeightPrefetch, EmptyStoreIsANoOp) {
  WeightStore store;
  EXPECT_EQ(prefetch_weights(store, {.show_progress = true}), 0u);
}

}  // namespace
}  // namespace torchless
