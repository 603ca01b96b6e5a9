#pragma once
// Records MetalBackend's ops into one command buffer per forward pass. Ops only record; the
// command buffer is committed and waited on in flush() (synchronize(), to_host(), or an
// upload into a buffer the pending work uses). A memory barrier is placed only where a
// dispatch reads or writes a byte range that an earlier dispatch since the last barrier wrote,
// or writes a range one of them read; everything else may run concurrently.
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
};

class MetalCommandRecorder {
 public:
  explicit MetalCommandRecorder(MetalDevice& device) : device_(device) {}
  ~MetalCommandRecorder();
  MetalCommandRecorder(const MetalCommandRecorder&) = delete;
  MetalCommandRecorder& operator=(const MetalCommandRecorder&) = delete;

  // Records pipeline + args (setBytes at index 0) + buffers (indices 1..n) + threadgroup
  // memory at index 0 (when non-zero) + the dispatch, preceded by a barrier when needed.
  void dispatch(const MetalPipeline& pipeline, const void* args, size_t args_length,
                std::span<const BufferArg> buffers, size_t threadgroup_memory, MetalSize groups,
                MetalSize threads);
  // Before the CPU reads `buffer`: on managed storage, records the blit that syncs it.
  void prepare_host_read(const MetalBuffer& buffer);
  // True when recorded, uncommitted work binds `buffer`.
  bool uses(const MetalBuffer& buffer) const { return used_.count(&buffer) != 0; }
  // True when recorded, uncommitted work writes `buffer` (its host bytes are not final yet).
  bool writes(const MetalBuffer& buffer) const { return written_.count(&buffer) != 0; }
  bool pending() const { return current_ != nullptr; }
  // Commits the current command buffer (if any) and waits; throws Error on failure.
  void flush();
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

  MetalDevice& device_;
  std::unique_ptr<MetalCommandBuffer> current_;
  std::vector<Range> reads_;   // since the last barrier
  std::vector<Range> writes_;  // since the last barrier
  std::unordered_set<const MetalBuffer*> used_;
  std::unordered_set<const MetalBuffer*> written_;
  std::vector<std::shared_ptr<MetalBuffer>> retained_;  // alive until the GPU is done
  RecorderStats stats_;
};

}  // namespace torchless::metal
