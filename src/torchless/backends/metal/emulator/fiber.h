#pragma once
// Cooperative fibers for the emulator's threads: pooled mmap'ed stacks with a PROT_NONE guard
// page, and a context switch. The switch is hand-written assembly on x86-64 and aarch64
// (10-20 ns); ucontext is the fallback elsewhere (or with MSLEMU_FORCE_UCONTEXT), ~50x slower
// because swapcontext makes a signal-mask system call per switch.
#include <cstddef>
#include <vector>

#if defined(MSLEMU_FORCE_UCONTEXT) || !(defined(__x86_64__) || defined(__aarch64__))
#define MSLEMU_UCONTEXT 1
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define MSLEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSLEMU_ASAN 1
#endif
#endif

namespace torchless::mslemu::detail {

// 64 KiB leaves ~9x headroom over the deepest kernel frame measured under ASan at -O0.
inline constexpr size_t kFiberStackSize = 64 * 1024;

struct Stack {
  std::byte* guard = nullptr;  // lowest page, PROT_NONE: an overflow faults here
  size_t guard_size = 0;
  std::byte* base = nullptr;  // usable memory [base, base + size); the stack grows down
  size_t size = 0;
  // The first frame starts this far below the top. Stacks are 68 KiB apart, so without an
  // offset every fiber's hot top-of-stack lines would share the same L1 cache sets.
  size_t color = 0;

  bool guard_contains(const void* p) const {
    auto* b = static_cast<const std::byte*>(p);
    return b >= guard && b < guard + guard_size;
  }
};

// Process-wide pool: creating stacks is a few system calls each, and small dispatches would
// otherwise pay them every time. Stacks are never unmapped.
std::vector<Stack> acquire_stacks(size_t count);
// `dirty`: a fiber was abandoned on these stacks, so ASan's shadow must be cleared.
void release_stacks(std::vector<Stack>& stacks, bool dirty);

struct FiberContext {
#if defined(MSLEMU_UCONTEXT)
  ucontext_t uc;
#else
  void* sp = nullptr;
#endif
};

// Prepares `ctx` so that switching to it runs entry() on `stack`; entry must never return.
void fiber_init(FiberContext& ctx, const Stack& stack, void (*entry)());
// Saves the current context in `from` and resumes `to`.
void fiber_switch(FiberContext& from, FiberContext& to);

}  // namespace torchless::mslemu::detail
