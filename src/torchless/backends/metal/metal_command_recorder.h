#pragma once
// Records MetalBackend's ops into one command buffer per forward pass. Ops only record; the
// command buffer is committed and waited on in flush() (synchronize(), to_host(), or an
// upload into a buffer the pending work uses). A pass that outgrows RecorderLimits is split:
// the full command buffer is committed without waiting and recording continues in a new one,
// so no single command buffer runs long enough to trip the macOS GPU watchdog ("Caused GPU
// Timeout Error"). flush() waits for every committed buffer and reports the first error. A memory
// barrier is placed only where a dispatch reads or writes a byte range that an earlier dispatch
// since the last barrier wrote, or writes a range one of them read; everything else may run
// concurrently. A dispatch's ranges are the buffers it binds: a buffer still bound at a higher
// index by an earlier dispatch is not touched by a kernel that does not declare that index
// (the emulated device, which checks every command buffer for missing barriers, agrees).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_set>
#include <vector>

#include "torchless/backends/metal/metal_device.h"

namespace torchless::metal {

// One [[buffer(i)]] argument, i = 1, 2, ... in order.
struct BufferArg {
  std::shared_ptr<MetalBuffer> buffer;
  size_t offset = 0;
  size_t length = 0;
  bool written = false;
};

struct RecorderStats {
  uint64_t command_buffers = 0;  // committed
  uint64_t dispatches = 0;
  uint64_t barriers = 0;
  uint64_t threads = 0;        // threads launched (grid size), the work estimate below
  uint64_t early_commits = 0;  // command buffers committed because a limit was reached
};

// How much one command buffer may hold before it is committed early. Dispatch count bounds
// the encoding size; threads launched is a cheap estimate of GPU time that grows with the
// number of tokens in a prefill (a decode step's matvecs launch ~8 threads per weight row).
struct RecorderLimits {
  // A Llama 1B decode step is ~290 dispatches, an 8B one ~580: one command buffer per token.
  static constexpr uint64_t kDefaultMaxDispatches = 1024;
  // A 1B Q4_0 decode step launches 3.6M threads (measured, pos 200), an 8B one ~15M
  // (estimated: ~8 threads per weight row); the GEMMs of a 512-token prefill chunk launch
  // ~64 threads per weight row (1B: ~24M, 8B: ~110M), split into buffers of ~16M each.
  static constexpr uint64_t kDefaultMaxThreads = uint64_t{1} << 24;
  uint64_t max_dispatches = kDefaultMaxDispatches;
  uint64_t max_threads = kDefaultMaxThreads;
  // Defaults, overridden by TORCHLESS_METAL_MAX_DISPATCHES_PER_BUFFER and
  // TORCHLESS_METAL_MAX_THREADS_PER_BUFFER (positive integers; Error otherwise).
  static RecorderLimits from_environment();
};

class MetalCommandRecorder {
 public:
  explicit MetalCommandRecorder(MetalDevice& device,
                                RecorderLimits limits = RecorderLimits::from_environment())
      : device_(device), limits_(limits) {}
  ~MetalCommandRecorder();
  MetalCommandRecorder(const MetalCommandRecorder&) = delete;
  MetalCommandRecorder& operator=(const MetalCommandRecorder&) = delete;

  // Records pipeline + args (setBytes at index 0) + buffers (indices 1..n) + threadgroup
  // memory at index 0 (when non-zero) + the dispatch, preceded by a barrier when needed.
  void dispatch(const MetalPipeline& pipeline, const void* args, size_t args_length,
                std::span<const BufferArg> buffers, size_t threadgroup_memory, MetalSize groups,
                MetalSize threads);
  // Before the CPU reads `buffer`: when GPU work (pending or already waited for) wrote it
  // since its last host read, records the blit that syncs managed storage, in the newest
  // command buffer so that it follows the write.
  void prepare_host_read(const MetalBuffer& buffer);
  // True when recorded or committed work not yet waited for binds `buffer`.
  bool uses(const MetalBuffer& buffer) const { return used_.count(&buffer) != 0; }
  // True when work not yet waited for writes `buffer` (its host bytes are not final yet).
  bool writes(const MetalBuffer& buffer) const { return written_.count(&buffer) != 0; }
  bool pending() const { return current_ != nullptr || !in_flight_.empty(); }
  // Commits the current command buffer (if any) and waits for it and every buffer committed
  // early; throws the first one's Error on failure.
  void flush();
  const RecorderLimits& limits() const { return limits_; }
  const RecorderStats& stats() const { return stats_; }

 private:
  struct Range {
    const MetalBuffer* buffer;
    size_t begin;
    size_t end;
    bool overlaps(const Range& other) const {
      return buffer == other.buffer && begin < other.end && other.begin < end;
    }
  };
  bool needs_barrier(std::span<const BufferArg> buffers) const;
  MetalCommandBuffer& current();
  // Commits the current buffer without waiting when `threads` more would exceed a limit.
  void split_if_full(uint64_t threads);

  MetalDevice& device_;
  RecorderLimits limits_;
  std::unique_ptr<MetalCommandBuffer> current_;
  uint64_t current_dispatches_ = 0;
  uint64_t current_threads_ = 0;
  // Committed early, in commit order; waited for in flush(). Command buffers of one queue run
  // in order and Metal tracks hazards between them (buffers are hazard-tracked), so no
  // barrier is needed across the split.
  std::vector<std::unique_ptr<MetalCommandBuffer>> in_flight_;
  std::vector<Range> reads_;                        // since the last barrier
  std::vector<Range> writes_;                       // since the last barrier
  std::unordered_set<const MetalBuffer*> used_;     // until flush()
  std::unordered_set<const MetalBuffer*> written_;  // until flush()
  // Without unified memory: written by the GPU and not synchronised for the CPU since; kept
  // across flushes, because a caller may synchronize() first and read later. A stale entry (a
  // freed buffer whose address is reused) costs only a redundant sync.
  std::unordered_set<const MetalBuffer*> host_stale_;
  std::vector<std::shared_ptr<MetalBuffer>> retained_;  // alive until the GPU is done
  RecorderStats stats_;
};

}  // namespace torchless::metal
