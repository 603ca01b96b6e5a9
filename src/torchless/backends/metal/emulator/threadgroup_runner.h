#pragma once
// Runs threadgroups of one dispatch on the calling OS thread: each thread of the group is a
// fiber, and a cooperative scheduler resumes the ready ones in the configured order until
// every thread has returned. Barriers and simdgroup collectives are rendezvous points.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "torchless/backends/metal/emulator/fiber.h"
#include "torchless/backends/metal/emulator/kernel_registry.h"
#include "torchless/backends/metal/emulator/shim/mslemu_runtime.h"

namespace torchless::mslemu::detail {

// What every threadgroup of a dispatch shares. Threadgroup-memory slots are filled per runner.
struct Launch {
  const Kernel* kernel = nullptr;
  std::vector<ArgSlot> slots;                                 // one per kernel parameter
  std::vector<std::pair<size_t, size_t>> threadgroup_memory;  // (parameter, length)
  Size3 grid;
  Size3 group;
  Options options;
};

class ThreadgroupRunner {
 public:
  explicit ThreadgroupRunner(const Launch& launch);
  ~ThreadgroupRunner();
  ThreadgroupRunner(const ThreadgroupRunner&) = delete;
  ThreadgroupRunner& operator=(const ThreadgroupRunner&) = delete;

  // Runs the threadgroup of linear index `group`; false with error() set on failure.
  bool run(uint32_t group);
  const std::string& error() const { return error_; }

  // Called from kernel code (fibers) through mslemu_runtime.h.
  void collective(const char* op, SimdLeader leader, const void* in, void* out, const void* param,
                  const char* file, int line);
  void barrier(const char* file, int line);
  // From the SIGSEGV handler when the current fiber ran into its guard page.
  [[noreturn]] void stack_overflow();
  bool on_guard_page(const void* address) const;

 private:
  enum class State : uint8_t { Ready, AtBarrier, AtSimd, Done };
  struct Thread {
    FiberContext context;
    State state = State::Ready;
    uint32_t index = 0;
    const char* wait_op = nullptr;
    const char* wait_file = nullptr;
    int wait_line = 0;
    void* asan_fake_stack = nullptr;
  };
  struct Simdgroup {
    uint64_t active = 0;   // lanes that have not returned
    uint64_t waiting = 0;  // lanes at the pending collective
    const char* op = nullptr;
    SimdLeader leader = nullptr;
    const char* file = nullptr;
    int line = 0;
    SimdLaneArgs lanes[64];
  };
  struct FreeDeleter {
    void operator()(void* p) const;
  };

  static void fiber_main();
  void start_group(uint32_t group);
  void resume(Thread& t);
  void block(Thread& t);
  [[noreturn]] void exit_fiber(Thread& t);
  [[noreturn]] void fail_in_fiber(Thread& t);
  bool complete(Simdgroup& sg, uint32_t simdgroup);
  void thread_returned(Thread& t);
  bool end_of_pass(uint32_t resumed);
  void set_order(bool reverse);
  void next_order();
  void compute_ids(const Thread& t, ThreadIds& ids) const;
  std::string describe_waiting() const;

  const Launch& launch_;
  uint32_t width_;
  uint32_t n_;
  std::vector<Thread> threads_;
  std::vector<Stack> stacks_;
  std::vector<Simdgroup> simdgroups_;
  std::vector<ArgSlot> slots_;
  std::vector<std::unique_ptr<std::byte, FreeDeleter>> threadgroup_memory_;
  std::vector<uint32_t> order_;
  std::vector<uint32_t> sg_order_;
  uint64_t rng_ = 0;
  Size3 group_id_;
  FiberContext scheduler_;
  [[maybe_unused]] const void* scheduler_stack_bottom_ = nullptr;  // ASan fiber annotations
  [[maybe_unused]] size_t scheduler_stack_size_ = 0;
  Thread* current_ = nullptr;
  uint32_t remaining_ = 0;
  uint32_t at_barrier_ = 0;
  const char* barrier_file_ = nullptr;
  int barrier_line_ = 0;
  bool failed_ = false;
  bool abandoned_fibers_ = false;
  char overflow_message_[256] = {};
  std::string error_;
  std::vector<std::byte> alt_stack_;
  bool alt_stack_installed_ = false;
};

}  // namespace torchless::mslemu::detail
