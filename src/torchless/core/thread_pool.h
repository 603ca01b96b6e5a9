#pragma once
// A fixed set of persistent worker threads for data-parallel loops. Decode calls parallel_for
// hundreds of times per token, so a call costs no allocation and no thread creation: workers
// spin briefly on a generation counter before sleeping on it (futex via std::atomic::wait), and
// the calling thread takes part in the work.
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace torchless {

class ThreadPool {
 public:
  // `threads` counts the calling thread too; <= 0 means default_thread_count().
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end, thread) over disjoint ranges covering [0, n), each at least `grain`
  // long (except the last); `thread` in [0, size()) identifies the executing thread, so fn may
  // use per-thread scratch. Returns when every range is done; rethrows the first exception.
  // A call from inside a running parallel_for runs serially on the calling thread.
  template <typename Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run(n, grain, const_cast<void*>(static_cast<const void*>(&fn)),
        [](void* ctx, int64_t begin, int64_t end, int thread) {
          (*static_cast<F*>(ctx))(begin, end, thread);
        });
  }

  // Physical cores available to this process (SMT siblings counted once), at least 1.
  static int default_thread_count();

 private:
  using Trampoline = void (*)(void*, int64_t, int64_t, int);

  void run(int64_t n, int64_t grain, void* ctx, Trampoline call);
  void worker_loop(int thread);
  void stop_workers();  // wakes, stops and joins every worker
  // Claims and runs chunks of job `generation` until none is left.
  void work(uint32_t generation, int thread);

  // The job word packs [generation:32][chunk count:16][next chunk:16], so a thread claims a
  // chunk of exactly the job it saw (compare-exchange), and a late worker cannot take part in
  // a newer job with stale fields. The caller waits for done_ == chunk count, never for
  // workers to wake up: when the OS runs them late, it simply does the chunks itself.
  std::atomic<uint64_t> job_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> sleepers_{0};
  // Fields of the current job, written before job_ publishes it and stable until every chunk
  // is done.
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  void* ctx_ = nullptr;
  Trampoline call_ = nullptr;
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::atomic<bool> stop_{false};

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time per pool
};

}  // namespace torchless
