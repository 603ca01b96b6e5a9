#include "torchless/core/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define TORCHLESS_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define TORCHLESS_CPU_RELAX() asm volatile("yield")
#else
#define TORCHLESS_CPU_RELAX() ((void)0)
#endif

#include "torchless/core/error.h"

namespace torchless {
namespace {

// Spinning keeps the wake-up latency of back-to-back decode ops near zero; after this many
// pauses (tens of microseconds) an idle thread sleeps so an idle pool costs no CPU.
constexpr int kSpinIterations = 4000;
constexpr int64_t kMaxChunks = 0xFFFF;

uint64_t pack(uint32_t generation, uint32_t count, uint32_t next) {
  return (uint64_t{generation} << 32) | (uint64_t{count} << 16) | next;
}
uint32_t generation_of(uint64_t job) {
  return static_cast<uint32_t>(job >> 32);
}
uint32_t count_of(uint64_t job) {
  return static_cast<uint32_t>((job >> 16) & 0xFFFF);
}
uint32_t next_of(uint64_t job) {
  return static_cast<uint32_t>(job & 0xFFFF);
}

thread_local bool t_in_parallel = false;
thread_local int t_thread_index = 0;

#if defined(__linux__)
bool read_int(const std::string& path, int& value) {
  std::ifstream in(path);
  return static_cast<bool>(in >> value);
}

int linux_physical_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    int core = cpu, package = 0;
    if (!read_int(dir + "core_id", core)) core = cpu;
    read_int(dir + "physical_package_id", package);
    cores.emplace(package, core);
  }
  return static_cast<int>(cores.size());
}
#endif

}  // namespace

int ThreadPool::default_thread_count() {
  int n = 0;
#if defined(__linux__)
  n = linux_physical_cores();
#elif defined(__APPLE__)
  int value = 0;
  size_t size = sizeof value;
  // Performance cores only: efficiency cores slow down an evenly split mat-vec.
  if (sysctlbyname("hw.perflevel0.physicalcpu", &value, &size, nullptr, 0) == 0 ||
      sysctlbyname("hw.physicalcpu", &value, &size, nullptr, 0) == 0) {
    n = value;
  }
#endif
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(n, 1);
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = default_thread_count();
  workers_.reserve(static_cast<size_t>(threads - 1));
  try {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
  } catch (const std::system_error& e) {
    // Stop and join the workers already running: a joinable std::thread destroyed during
    // unwinding would call std::terminate.
    const size_t started = workers_.size();
    stop_workers();
    fail("cannot start {} threads (only {} started: {}); use fewer with --threads", threads,
         started + 1, e.what());
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard lock(call_mutex_);
    stop_ = true;
    job_.store(pack(generation_of(job_.load()) + 1, 0, 0));
    job_.notify_all();
  }
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::run(int64_t n, int64_t grain, void* ctx, Trampoline call) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  // Several chunks per thread let the others catch up with a thread that was descheduled.
  const int64_t target_chunks = static_cast<int64_t>(size()) * 4;
  int64_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  chunk = std::max(chunk, (n + kMaxChunks - 1) / kMaxChunks);
  if (t_in_parallel || workers_.empty() || chunk >= n) {
    call(ctx, 0, n, t_thread_index);
    return;
  }
  std::lock_guard lock(call_mutex_);
  const int64_t chunks = (n + chunk - 1) / chunk;
  n_ = n;
  chunk_ = chunk;
  ctx_ = ctx;
  call_ = call;
  failed_.store(false, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = generation_of(job_.load()) + 1;
  job_.store(pack(generation, static_cast<uint32_t>(chunks), 0));  // seq_cst: see worker_loop
  if (sleepers_.load() > 0) job_.notify_all();

  work(generation, t_thread_index);
  // Only chunks that other threads are running right now remain.
  for (int spins = 0; done_.load(std::memory_order_acquire) != chunks; ++spins) {
    if (spins < kSpinIterations) {
      TORCHLESS_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
  if (failed_.load()) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::work(uint32_t generation, int thread) {
  t_in_parallel = true;
  uint64_t job = job_.load(std::memory_order_acquire);
  while (generation_of(job) == generation && next_of(job) < count_of(job)) {
    if (!job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      continue;  // job now holds the current word
    }
    const int64_t begin = static_cast<int64_t>(next_of(job)) * chunk_;
    const int64_t end = std::min(n_, begin + chunk_);
    try {
      call_(ctx_, begin, end, thread);
    } catch (...) {
      if (!failed_.exchange(true)) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_release);
    job = job_.load(std::memory_order_acquire);
  }
  t_in_parallel = false;
}

void ThreadPool::worker_loop(int thread) {
  t_thread_index = thread;
  uint32_t seen = 0;
  for (;;) {
    uint64_t job = job_.load(std::memory_order_acquire);
    for (int spins = 0; generation_of(job) == seen && spins < kSpinIterations; ++spins) {
      TORCHLESS_CPU_RELAX();
      job = job_.load(std::memory_order_acquire);
    }
    if (generation_of(job) == seen) {
      // seq_cst on both sides: either run() sees this sleeper and notifies, or this wait sees
      // the new job word and returns at once.
      sleepers_.fetch_add(1);
      job_.wait(job);
      sleepers_.fetch_sub(1);
      continue;
    }
    seen = generation_of(job);
    if (stop_) return;
    work(seen, thread);
  }
}

}  // namespace torchless
