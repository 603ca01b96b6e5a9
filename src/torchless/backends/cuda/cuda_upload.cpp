#include "torchless/backends/cuda/cuda_upload.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "torchless/backends/cuda/cuda_memory.h"

namespace torchless::cuda {

PinnedUploader::~PinnedUploader() {
  progress_.reset();
  for (Stage& s : stages_) {
    if (s.sent != nullptr) {
      cudaEventSynchronize(s.sent);
      cudaEventDestroy(s.sent);
    }
    if (s.host != nullptr) cudaFreeHost(s.host);
  }
}

void PinnedUploader::allocate(std::string_view op) {
  for (Stage& s : stages_) {  // what an earlier, failed call left undone
    if (s.host == nullptr) {
      void* p = nullptr;
      check(cudaHostAlloc(&p, kChunkBytes, cudaHostAllocDefault), "cudaHostAlloc", op);
      s.host = static_cast<std::byte*>(p);
    }
    if (s.sent == nullptr) {
      check(cudaEventCreateWithFlags(&s.sent, cudaEventDisableTiming), "cudaEventCreate", op);
    }
  }
}

void PinnedUploader::copy(std::byte* dst, const std::byte* src, size_t n, std::string_view op) {
  if (stages_[1].sent == nullptr) allocate(op);
  for (size_t done = 0; done < n;) {
    Stage& s = stages_[next_];
    next_ = 1 - next_;
    const size_t len = std::min(kChunkBytes, n - done);
    // The buffer's previous DMA must be over before it is refilled; the other buffer's may run.
    check(cudaEventSynchronize(s.sent), "cudaEventSynchronize", op);
    std::memcpy(s.host, src + done, len);
    check(cudaMemcpyAsync(dst + done, s.host, len, cudaMemcpyHostToDevice, stream_),
          "cudaMemcpyAsync", op);
    check(cudaEventRecord(s.sent, stream_), "cudaEventRecord", op);
    done += len;
  }
  advance(src, n);
}

void PinnedUploader::add_region(std::span<const std::byte> region) {
  // Small models load too fast to need a bar (as the prefetch's 64 MiB threshold).
  constexpr uint64_t kMinBytesForProgress = uint64_t{64} << 20;
  regions_.push_back(region);
  region_bytes_ += region.size();
  progress_.reset();
  progress_ = std::make_unique<LoadProgress>(
      isatty(STDERR_FILENO) != 0 && region_bytes_ >= kMinBytesForProgress, region_bytes_);
}

void PinnedUploader::advance(const std::byte* src, size_t n) {
  if (!progress_) return;
  for (std::span<const std::byte> r : regions_) {
    if (src >= r.data() && src + n <= r.data() + r.size()) {
      uploaded_ += n;
      progress_->update(uploaded_);
      return;
    }
  }
}

void PinnedUploader::finish_progress() {
  if (!progress_) return;
  progress_->update(region_bytes_);  // the file's headers and unused tensors are not copied
  progress_.reset();
  regions_.clear();
  region_bytes_ = uploaded_ = 0;
}

}  // namespace torchless::cuda
