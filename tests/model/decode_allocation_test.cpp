// The decode step must not touch the heap: activations are preallocated and weights are
// views. Counts operator new calls made during forward() of one token.
#include <atomic>
#include <cstdlib>
#include <new>
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

TEST(Transformer, DecodeStepDoesNotAllocate) {
#if defined(TORCHLESS_ASAN)
  GTEST_SKIP() << "allocation counting needs the real operator new, which ASan replaces";
#endif
  auto backend = init_backend("cpu");
  Transformer model(load_model(testing::require_shared("golden/qwen2/model-f32.gguf")), *backend);
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

}  // namespace
}  // namespace torchless
