#pragma once
// Host-to-device copies of weights through pinned staging buffers: the bytes (usually a mapped
// model file) are copied chunk by chunk into one of two page-locked buffers while the other's
// asynchronous DMA to the device runs, so reading the file and the PCIe transfer overlap and the
// DMA runs at pinned-memory speed. (A cudaMemcpy from pageable memory stages through the
// driver's own small buffers and waits for each.) The buffers are allocated at the first copy.
//
// Copies out of the mapped model file (add_region) advance the "loading weights" bar on a
// terminal: on this backend the copy is what reads the file (the session skips its prefetch for
// backends without unified memory), so it is where the user waits for the disk.
#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <cuda_runtime.h>

#include "torchless/core/load_progress.h"

namespace torchless::cuda {

class PinnedUploader {
 public:
  static constexpr size_t kChunkBytes = size_t{16} << 20;

  explicit PinnedUploader(cudaStream_t stream) : stream_(stream) {}
  ~PinnedUploader();
  PinnedUploader(const PinnedUploader&) = delete;
  PinnedUploader& operator=(const PinnedUploader&) = delete;

  // Enqueues the copy of n bytes to device memory `dst` on the stream. `src` may be reused as
  // soon as this returns (its bytes are in the staging buffers or already sent); the device
  // side completes in stream order. Errors name `op`.
  void copy(std::byte* dst, const std::byte* src, size_t n, std::string_view op);

  // A mapped model file whose tensors copy() will upload: its size joins the bar's total.
  void add_region(std::span<const std::byte> region);
  // Ends the bar (the model is loaded).
  void finish_progress();

 private:
  struct Stage {
    std::byte* host = nullptr;
    cudaEvent_t sent = nullptr;  // recorded after the DMA out of `host`
  };
  void allocate(std::string_view op);

  void advance(const std::byte* src, size_t n);

  cudaStream_t stream_;
  std::array<Stage, 2> stages_{};
  size_t next_ = 0;
  std::vector<std::span<const std::byte>> regions_;
  uint64_t region_bytes_ = 0, uploaded_ = 0;
  std::unique_ptr<LoadProgress> progress_;  // while a model loads, on a terminal
};

}  // namespace torchless::cuda
