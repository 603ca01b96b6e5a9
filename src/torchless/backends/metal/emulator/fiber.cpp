#include "torchless/backends/metal/emulator/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "torchless/backends/metal/emulator/msl_emulator.h"

#if defined(MSLEMU_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace torchless::mslemu::detail {

#if !defined(MSLEMU_UCONTEXT)
extern "C" void mslemu_switch_context(void** save_sp, void* new_sp);

// The symbol's prologue/epilogue directives: Mach-O (macOS) prefixes C symbols with `_`, spells
// hidden visibility `.private_extern` and has no .type/.size; ELF needs them for a function.
#if defined(__APPLE__)
#define MSLEMU_SWITCH_BEGIN(type)            \
  ".text\n"                                  \
  ".p2align 4\n"                             \
  ".globl _mslemu_switch_context\n"          \
  ".private_extern _mslemu_switch_context\n" \
  "_mslemu_switch_context:\n"
#define MSLEMU_SWITCH_END ""
#else
#define MSLEMU_SWITCH_BEGIN(type)      \
  ".pushsection .text\n"               \
  ".p2align 4\n"                       \
  ".globl mslemu_switch_context\n"     \
  ".hidden mslemu_switch_context\n"    \
  ".type mslemu_switch_context, " type \
  "\n"                                 \
  "mslemu_switch_context:\n"
#define MSLEMU_SWITCH_END                                  \
  ".size mslemu_switch_context, .-mslemu_switch_context\n" \
  ".popsection\n"
#endif

#if defined(__x86_64__)
// Saves the callee-saved registers on the current stack, swaps stack pointers, restores
// the other context's registers and returns into it.
asm(MSLEMU_SWITCH_BEGIN("@function") R"(
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)" MSLEMU_SWITCH_END);
constexpr size_t kSavedWords = 6;  // then the return address
#elif defined(__aarch64__)
// x19-x30 and d8-d15 are callee-saved (AAPCS64); x30 holds the return address.
asm(MSLEMU_SWITCH_BEGIN("%function") R"(
  sub sp, sp, #160
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #160
  ret
)" MSLEMU_SWITCH_END);
#endif
#endif

namespace {

std::mutex g_pool_mutex;
std::vector<Stack> g_pool;

Stack make_stack() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, page + kFiberStackSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw Error("mslemu: cannot map a fiber stack");
  if (mprotect(mem, page, PROT_NONE) != 0) {
    munmap(mem, page + kFiberStackSize);
    throw Error("mslemu: cannot protect a fiber stack's guard page");
  }
  static std::atomic<size_t> created{0};
  auto* bytes = static_cast<std::byte*>(mem);
  return Stack{bytes, page, bytes + page, kFiberStackSize, created++ % 63 * 64};
}

}  // namespace

std::vector<Stack> acquire_stacks(size_t count) {
  std::vector<Stack> out;
  out.reserve(count);
  {
    std::lock_guard lock(g_pool_mutex);
    while (out.size() < count && !g_pool.empty()) {
      out.push_back(g_pool.back());
      g_pool.pop_back();
    }
  }
  while (out.size() < count) out.push_back(make_stack());
  return out;
}

void release_stacks(std::vector<Stack>& stacks, bool dirty) {
#if defined(MSLEMU_ASAN)
  if (dirty)
    for (const Stack& s : stacks) __asan_unpoison_memory_region(s.base, s.size);
#else
  (void)dirty;
#endif
  std::lock_guard lock(g_pool_mutex);
  g_pool.insert(g_pool.end(), stacks.begin(), stacks.end());
  stacks.clear();
}

#if defined(MSLEMU_UCONTEXT)
void fiber_init(FiberContext& ctx, const Stack& stack, void (*entry)()) {
  getcontext(&ctx.uc);
  ctx.uc.uc_stack.ss_sp = stack.base;
  ctx.uc.uc_stack.ss_size = stack.size - stack.color;
  ctx.uc.uc_link = nullptr;
  makecontext(&ctx.uc, entry, 0);
}

void fiber_switch(FiberContext& from, FiberContext& to) {
  swapcontext(&from.uc, &to.uc);
}
#else
void fiber_init(FiberContext& ctx, const Stack& stack, void (*entry)()) {
  auto* top = reinterpret_cast<uintptr_t*>(
      (reinterpret_cast<uintptr_t>(stack.base + stack.size - stack.color)) & ~uintptr_t{15});
#if defined(__x86_64__)
  // [top-8] a null return address for entry, [top-16] entry (popped by `ret`, leaving the
  // stack 8 mod 16 as after a call), then the six saved registers, all zero.
  uintptr_t* sp = top - 2 - kSavedWords;
  for (size_t i = 0; i < kSavedWords; ++i) sp[i] = 0;
  top[-1] = 0;
  top[-2] = reinterpret_cast<uintptr_t>(entry);
  ctx.sp = sp;
#else
  // A 160-byte frame of saved registers, all zero but x30 (the `ret` target) at offset 88.
  uintptr_t* sp = top - 20;
  for (int i = 0; i < 20; ++i) sp[i] = 0;
  sp[11] = reinterpret_cast<uintptr_t>(entry);
  ctx.sp = sp;
#endif
}

void fiber_switch(FiberContext& from, FiberContext& to) {
  mslemu_switch_context(&from.sp, to.sp);
}
#endif

}  // namespace torchless::mslemu::detail
