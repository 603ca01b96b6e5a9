// The decode step must not touch the heap: activations are preallocated and weights are
// views. Counts operator new calls made during forward() of one token.
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/reference_data.h"
#include "torchless/model/transformer.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// AddressSanitizer owns operator new/delete (and GCC rejects mixing its malloc with them), so
// the sanitizer build leaves them alone and skips the test.
#if !defined(TORCHLESS_ASAN)
// The replacement operator new below allocates with malloc, so free() is the matching release;
// GCC cannot see that through the replacement and warns where it inlines a delete.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
#endif

namespace torchless {
namespace {

// F32 weights, and the quantised ones whose mat-vecs quantise the activation vector first.
class DecodeAllocation : public ::testing::TestWithParam<const char*> {};

TEST_P(DecodeAllocation, DecodeStepDoesNotAllocate) {
#if defined(TORCHLESS_ASAN)
  GTEST_SKIP() << "allocation counting needs the real operator new, which ASan replaces";
#endif
  auto backend = init_backend("cpu");
  Transformer model(load_model(testing::require_shared(GetParam())), *backend);
  KvCache cache(*backend, model.config(), 64);
  const std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35};
  model.forward(prompt, 0, cache);
  int32_t next = 7;
  model.forward(std::span(&next, 1), 6, cache);  // warm up lazily created state
  g_allocations = 0;
  g_counting = true;
  for (int pos = 7; pos < 17; ++pos) model.forward(std::span(&next, 1), pos, cache);
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0) << "heap allocations in 10 decode steps";
}

INSTANTIATE_TEST_SUITE_P(Weights, DecodeAllocation,
                         ::testing::Values("golden/qwen2/model-f32.gguf",
                                           "golden/llama/model-q8_0.gguf",
                                           "golden/llama/model-q4_0.gguf",
                                           "golden/qwen2/model-q4_k.gguf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace torchless
