#include "torchless/backends/cuda/cuda_scratch.h"

#include <algorithm>
#include <cstring>

#include "torchless/backends/cuda/cuda_memory.h"

namespace torchless::cuda {
namespace {

constexpr size_t kMinScratch = size_t{1} << 20;  // decode's activations fit without growing
constexpr size_t kMinStaging = size_t{64} << 10;

}  // namespace

DeviceScratch::~DeviceScratch() {
  for (std::byte* p : retired_) cudaFree(p);
  if (data_ != nullptr) cudaFree(data_);
}

std::byte* DeviceScratch::get(size_t bytes, cudaStream_t stream, bool capturing) {
  if (bytes <= size_ && data_ != nullptr) return data_;
  const size_t size = std::max({bytes, 2 * size_, kMinScratch});
  if (data_ != nullptr) {
    if (capturing) {
      retired_.push_back(data_);
    } else {
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize", "scratch");
      cudaFree(data_);
    }
    data_ = nullptr;
    size_ = 0;
  }
  void* p = nullptr;
  check(cudaMalloc(&p, size), "cudaMalloc", "scratch");
  data_ = static_cast<std::byte*>(p);
  size_ = size;
  return data_;
}

HostStaging::~HostStaging() {
  for (const Chunk& c : chunks_) cudaFreeHost(c.data);
}

const std::byte* HostStaging::stage(const std::byte* bytes, size_t size) {
  const size_t need = (size + 15) / 16 * 16;
  auto fits = [&](const Chunk& c) { return c.size - c.used >= need; };
  auto chunk = std::find_if(chunks_.begin(), chunks_.end(), fits);
  if (chunk == chunks_.end()) {
    void* p = nullptr;
    const size_t chunk_size = std::max(need, kMinStaging);
    check(cudaMallocHost(&p, chunk_size), "cudaMallocHost", "upload");
    chunks_.push_back({static_cast<std::byte*>(p), chunk_size, 0});
    chunk = chunks_.end() - 1;
  }
  std::byte* dst = chunk->data + chunk->used;
  chunk->used += need;
  if (size > 0) std::memcpy(dst, bytes, size);
  return dst;
}

void HostStaging::reset() {
  for (Chunk& c : chunks_) c.used = 0;
}

}  // namespace torchless::cuda
