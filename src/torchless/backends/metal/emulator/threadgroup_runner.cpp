#include "torchless/backends/metal/emulator/threadgroup_runner.h"

#include <signal.h>  // NOLINT(modernize-deprecated-headers): sigaction, sigaltstack: POSIX

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#if defined(MSLEMU_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace torchless::mslemu::detail {
namespace {

thread_local ThreadgroupRunner* tls_runner = nullptr;

#if !defined(MSLEMU_ASAN)
// A kernel fiber that runs into its guard page is abandoned and reported by the dispatch.
// ASan builds leave SIGSEGV to ASan, which reports stack overflows itself.
struct sigaction g_previous_segv;

void on_segv(int, siginfo_t* info, void*) {
  ThreadgroupRunner* runner = tls_runner;
  if (runner && runner->on_guard_page(info->si_addr)) runner->stack_overflow();
  // Not ours: put the previous handler back; returning re-executes the faulting access.
  sigaction(SIGSEGV, &g_previous_segv, nullptr);
}

void install_segv_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &g_previous_segv);
  });
}
#endif

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool same_site(const char* file_a, int line_a, const char* file_b, int line_b) {
  return line_a == line_b && (file_a == file_b || std::strcmp(file_a, file_b) == 0);
}

}  // namespace

thread_local constinit bool fast_math_functions = false;

void simd_collective(const char* op, SimdLeader leader, const void* in, void* out,
                     const void* param, const char* file, int line) {
  tls_runner->collective(op, leader, in, out, param, file, line);
}

void threadgroup_barrier(const char* file, int line) {
  tls_runner->barrier(file, line);
}

void ThreadgroupRunner::FreeDeleter::operator()(void* p) const {
  std::free(p);
}

ThreadgroupRunner::ThreadgroupRunner(const Launch& launch)
    : launch_(launch),
      width_(static_cast<uint32_t>(launch.options.simd_width)),
      n_(launch.group.x * launch.group.y * launch.group.z),
      threads_(n_),
      stacks_(acquire_stacks(n_)),
      simdgroups_((n_ + width_ - 1) / width_),
      slots_(launch.slots),
      order_(n_) {
  // Exact-size allocations, so that ASan sees an overrun of threadgroup memory.
  for (const auto& [param, length] : launch.threadgroup_memory) {
    threadgroup_memory_.emplace_back(static_cast<std::byte*>(std::malloc(length)));
    if (!threadgroup_memory_.back()) throw Error("mslemu: out of memory for threadgroup memory");
    slots_[param].ptr = threadgroup_memory_.back().get();
  }
#if !defined(MSLEMU_ASAN)
  install_segv_handler();
  stack_t current{};
  sigaltstack(nullptr, &current);
  if (current.ss_flags & SS_DISABLE) {
    alt_stack_.resize(64 * 1024);
    stack_t alt{};
    alt.ss_sp = alt_stack_.data();
    alt.ss_size = alt_stack_.size();
    alt_stack_installed_ = sigaltstack(&alt, nullptr) == 0;
  }
#endif
}

ThreadgroupRunner::~ThreadgroupRunner() {
  if (alt_stack_installed_) {
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
  }
  release_stacks(stacks_, abandoned_fibers_);
}

// Each pass runs the simdgroups one after the other in the configured order, and each
// simdgroup until all its lanes wait at a barrier or have returned, as a simdgroup advances
// in lockstep on the GPU. So a missing barrier between simdgroups shows in reverse and
// shuffled orders.
bool ThreadgroupRunner::run(uint32_t group) {
  start_group(group);
  ThreadgroupRunner* const outer = tls_runner;
  const bool outer_fast_math = fast_math_functions;
  tls_runner = this;
  fast_math_functions = launch_.options.math_functions == MathFunctions::Fast;
  bool ok = true;
  while (ok && remaining_ > 0) {
    next_order();
    uint32_t resumed = 0;
    for (uint32_t begin = 0, s = 0; s < sg_order_.size() && !failed_; ++s) {
      const uint32_t first = sg_order_[s] * width_, end = begin + std::min(width_, n_ - first);
      for (bool again = true; again && !failed_;) {
        again = false;
        for (uint32_t k = begin; k < end && !failed_; ++k) {
          Thread& t = threads_[order_[k]];
          if (t.state != State::Ready) continue;
          resume(t);
          ++resumed;
          again = true;
          if (!failed_ && t.state == State::Done) thread_returned(t);
        }
      }
      begin = end;
    }
    ok = !failed_ && end_of_pass(resumed);
  }
  tls_runner = outer;
  fast_math_functions = outer_fast_math;
  if (overflow_message_[0]) error_ = overflow_message_;
  if (!ok) abandoned_fibers_ = true;
  return ok;
}

void ThreadgroupRunner::start_group(uint32_t group) {
  const Size3 g = launch_.grid;
  group_id_ = {group % g.x, group / g.x % g.y, group / (g.x * g.y)};
  for (size_t i = 0; i < threadgroup_memory_.size(); ++i) {
    // 0xFF bytes are NaN as floats: reads of memory no thread wrote show up in results.
    std::memset(threadgroup_memory_[i].get(), 0xFF, launch_.threadgroup_memory[i].second);
  }
  for (uint32_t i = 0; i < n_; ++i) {
    Thread& t = threads_[i];
    t.state = State::Ready;
    t.index = i;
    t.wait_op = nullptr;
    fiber_init(t.context, stacks_[i], &ThreadgroupRunner::fiber_main);
  }
  for (uint32_t s = 0; s < simdgroups_.size(); ++s) {
    const uint32_t lanes = std::min(width_, n_ - s * width_);
    simdgroups_[s].active = lanes == 64 ? ~uint64_t{0} : (uint64_t{1} << lanes) - 1;
    simdgroups_[s].waiting = 0;
  }
  remaining_ = n_;
  at_barrier_ = 0;
  failed_ = false;
  error_.clear();
  overflow_message_[0] = '\0';
  rng_ = launch_.options.seed ^ (uint64_t{group} * 0xd1b54a32d192ed03ull);
  set_order(launch_.options.thread_order == ThreadOrder::Reverse);
}

// order_ lists the threads simdgroup by simdgroup, in the order of sg_order_.
void ThreadgroupRunner::set_order(bool reverse) {
  const uint32_t groups = static_cast<uint32_t>(simdgroups_.size());
  sg_order_.resize(groups);
  for (uint32_t s = 0; s < groups; ++s) sg_order_[s] = reverse ? groups - 1 - s : s;
  uint32_t k = 0;
  for (uint32_t s : sg_order_) {
    const uint32_t first = s * width_, lanes = std::min(width_, n_ - first);
    for (uint32_t l = 0; l < lanes; ++l) order_[k++] = reverse ? first + lanes - 1 - l : first + l;
  }
}

// The shuffled order is redrawn every pass, so each barrier phase starts differently: the
// simdgroups are permuted, and the lanes inside each.
void ThreadgroupRunner::next_order() {
  if (launch_.options.thread_order != ThreadOrder::Shuffle) return;
  const uint32_t groups = static_cast<uint32_t>(simdgroups_.size());
  for (uint32_t i = groups; i > 1; --i)
    std::swap(sg_order_[i - 1], sg_order_[splitmix64(rng_) % i]);
  uint32_t k = 0;
  for (uint32_t s : sg_order_) {
    const uint32_t first = s * width_, lanes = std::min(width_, n_ - first);
    for (uint32_t l = 0; l < lanes; ++l) order_[k + l] = first + l;
    for (uint32_t i = lanes; i > 1; --i)
      std::swap(order_[k + i - 1], order_[k + splitmix64(rng_) % i]);
    k += lanes;
  }
}

void ThreadgroupRunner::fiber_main() {
  ThreadgroupRunner& r = *tls_runner;
#if defined(MSLEMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &r.scheduler_stack_bottom_, &r.scheduler_stack_size_);
#endif
  Thread& t = *r.current_;
  {
    ThreadIds ids;
    r.compute_ids(t, ids);
    r.launch_.kernel->thunk(r.launch_.kernel->fn, r.slots_.data(), ids);
  }
  t.state = State::Done;
  r.exit_fiber(t);
}

void ThreadgroupRunner::resume(Thread& t) {
  current_ = &t;
#if defined(MSLEMU_ASAN)
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, stacks_[t.index].base, stacks_[t.index].size);
#endif
  fiber_switch(scheduler_, t.context);
#if defined(MSLEMU_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  current_ = nullptr;
}

void ThreadgroupRunner::block(Thread& t) {
#if defined(MSLEMU_ASAN)
  __sanitizer_start_switch_fiber(&t.asan_fake_stack, scheduler_stack_bottom_,
                                 scheduler_stack_size_);
#endif
  fiber_switch(t.context, scheduler_);
#if defined(MSLEMU_ASAN)
  __sanitizer_finish_switch_fiber(t.asan_fake_stack, &scheduler_stack_bottom_,
                                  &scheduler_stack_size_);
#endif
}

// The last switch away from a fiber: nothing on its stack is destroyed, so every message
// must already live in the runner (LeakSanitizer would report the temporaries).
void ThreadgroupRunner::exit_fiber(Thread& t) {
#if defined(MSLEMU_ASAN)
  __sanitizer_start_switch_fiber(nullptr, scheduler_stack_bottom_, scheduler_stack_size_);
#endif
  fiber_switch(t.context, scheduler_);
  std::abort();  // a finished fiber is never resumed
}

void ThreadgroupRunner::fail_in_fiber(Thread& t) {
  failed_ = true;
  exit_fiber(t);
}

void ThreadgroupRunner::collective(const char* op, SimdLeader leader, const void* in, void* out,
                                   const void* param, const char* file, int line) {
  Thread& t = *current_;
  const uint32_t s = t.index / width_, lane = t.index % width_;
  Simdgroup& sg = simdgroups_[s];
  if (sg.waiting != 0 &&
      ((sg.op != op && std::strcmp(sg.op, op) != 0) || !same_site(sg.file, sg.line, file, line))) {
    error_ = fmt::format(
        "divergent simdgroup operation: lane {} of simdgroup {} reached {} at {}:{} while {} "
        "lane(s) wait at {} at {}:{}",
        lane, s, op, file, line, __builtin_popcountll(sg.waiting), sg.op, sg.file, sg.line);
    fail_in_fiber(t);
  }
  if (sg.waiting == 0) {
    sg.op = op;
    sg.leader = leader;
    sg.file = file;
    sg.line = line;
  }
  sg.lanes[lane] = {in, out, param};
  sg.waiting |= uint64_t{1} << lane;
  if (sg.waiting == sg.active) {
    if (!complete(sg, s)) fail_in_fiber(t);
    return;
  }
  t.state = State::AtSimd;
  t.wait_op = op;
  t.wait_file = file;
  t.wait_line = line;
  block(t);
}

bool ThreadgroupRunner::complete(Simdgroup& sg, uint32_t s) {
  SimdCall call;
  call.width = width_;
  call.active = sg.waiting;
  call.lanes = sg.lanes;
  sg.leader(call);
  const uint64_t lanes = sg.waiting;
  sg.waiting = 0;
  if (call.error) {
    error_ = fmt::format("{} at {}:{} (simdgroup {})", call.error, sg.file, sg.line, s);
    return false;
  }
  for (uint64_t m = lanes; m != 0; m &= m - 1) {
    Thread& w = threads_[s * width_ + static_cast<uint32_t>(__builtin_ctzll(m))];
    if (w.state == State::AtSimd) w.state = State::Ready;
  }
  return true;
}

void ThreadgroupRunner::barrier(const char* file, int line) {
  Thread& t = *current_;
  if (at_barrier_ == 0) {
    barrier_file_ = file;
    barrier_line_ = line;
  } else if (!same_site(barrier_file_, barrier_line_, file, line)) {
    error_ = fmt::format(
        "divergent threadgroup_barrier: thread {} reached the one at {}:{} while {} thread(s) "
        "wait at {}:{}",
        t.index, file, line, at_barrier_, barrier_file_, barrier_line_);
    fail_in_fiber(t);
  }
  ++at_barrier_;
  t.state = State::AtBarrier;
  t.wait_op = "threadgroup_barrier";
  t.wait_file = file;
  t.wait_line = line;
  block(t);
}

// A returned lane leaves its simdgroup: a collective the others wait at may now be complete
// (this models an early `return` before simd_sum).
void ThreadgroupRunner::thread_returned(Thread& t) {
  --remaining_;
  const uint32_t s = t.index / width_;
  Simdgroup& sg = simdgroups_[s];
  sg.active &= ~(uint64_t{1} << (t.index % width_));
  if (sg.waiting != 0 && sg.waiting == sg.active && !complete(sg, s)) failed_ = true;
}

bool ThreadgroupRunner::end_of_pass(uint32_t resumed) {
  if (at_barrier_ > 0 && at_barrier_ == remaining_) {
    if (remaining_ < n_) {
      error_ = fmt::format(
          "threadgroup_barrier at {}:{} reached by {} of {} threads; {} returned without "
          "reaching it",
          barrier_file_, barrier_line_, at_barrier_, n_, n_ - remaining_);
      return false;
    }
    for (Thread& t : threads_)
      if (t.state == State::AtBarrier) t.state = State::Ready;
    at_barrier_ = 0;
    return true;
  }
  if (remaining_ > 0 && resumed == 0) {
    error_ = "deadlock: no thread can proceed; " + describe_waiting();
    return false;
  }
  return true;
}

std::string ThreadgroupRunner::describe_waiting() const {
  std::vector<std::pair<std::string, uint32_t>> groups;
  for (const Thread& t : threads_) {
    std::string what = "returned";
    if (t.state == State::AtBarrier || t.state == State::AtSimd) {
      what = fmt::format("waiting at {} ({}:{})", t.wait_op, t.wait_file, t.wait_line);
      if (t.state == State::AtSimd) what += fmt::format(" in simdgroup {}", t.index / width_);
    }
    const auto it = std::find_if(groups.begin(), groups.end(),
                                 [&what](const auto& g) { return g.first == what; });
    if (it == groups.end()) {
      groups.emplace_back(what, 1);
    } else {
      ++it->second;
    }
  }
  std::string out;
  for (const auto& [text, count] : groups)
    out += fmt::format("{}{} {}", out.empty() ? "" : "; ", count, text);
  return out;
}

void ThreadgroupRunner::compute_ids(const Thread& t, ThreadIds& ids) const {
  const Size3 tg = launch_.group, grid = launch_.grid;
  const uint32_t i = t.index;
  const uint32_t local[3] = {i % tg.x, i / tg.x % tg.y, i / (tg.x * tg.y)};
  const uint32_t gid[3] = {group_id_.x, group_id_.y, group_id_.z};
  const uint32_t tpg[3] = {tg.x, tg.y, tg.z};
  const uint32_t grid3[3] = {grid.x, grid.y, grid.z};
  const auto set = [&ids](Builtin b, uint32_t x, uint32_t y, uint32_t z) {
    uint32_t* v = ids.v[static_cast<int>(b)];
    v[0] = x;
    v[1] = y;
    v[2] = z;
  };
  for (int d = 0; d < 3; ++d) {
    ids.v[static_cast<int>(Builtin::ThreadPositionInGrid)][d] = gid[d] * tpg[d] + local[d];
    ids.v[static_cast<int>(Builtin::ThreadgroupPositionInGrid)][d] = gid[d];
    ids.v[static_cast<int>(Builtin::ThreadPositionInThreadgroup)][d] = local[d];
    ids.v[static_cast<int>(Builtin::ThreadsPerThreadgroup)][d] = tpg[d];
    ids.v[static_cast<int>(Builtin::ThreadgroupsPerGrid)][d] = grid3[d];
    ids.v[static_cast<int>(Builtin::ThreadsPerGrid)][d] = grid3[d] * tpg[d];
  }
  set(Builtin::ThreadIndexInThreadgroup, i, 0, 0);
  set(Builtin::SimdgroupIndexInThreadgroup, i / width_, 0, 0);
  set(Builtin::ThreadIndexInSimdgroup, i % width_, 0, 0);
  set(Builtin::ThreadsPerSimdgroup, width_, 0, 0);
  set(Builtin::SimdgroupsPerThreadgroup, (n_ + width_ - 1) / width_, 0, 0);
}

bool ThreadgroupRunner::on_guard_page(const void* address) const {
  return current_ != nullptr && stacks_[current_->index].guard_contains(address);
}

void ThreadgroupRunner::stack_overflow() {
  std::snprintf(overflow_message_, sizeof overflow_message_,
                "stack overflow in thread %u of the threadgroup: it used more than the %zu KiB "
                "fiber stack (large thread-local arrays or recursion)",
                current_->index, kFiberStackSize / 1024);
  failed_ = true;
  exit_fiber(*current_);
}

}  // namespace torchless::mslemu::detail
