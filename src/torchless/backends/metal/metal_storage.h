#pragma once
// The Tensor storage of the Metal backend: a MetalBuffer, returned to its pool (if pooled)
// when the last tensor viewing it goes away.
#include <memory>

#include "torchless/backends/metal/metal_buffer_pool.h"
#include "torchless/backends/metal/metal_device.h"
#include "torchless/core/tensor.h"

namespace torchless::metal {

class MetalStorage final : public Buffer {
 public:
  MetalStorage(std::shared_ptr<MetalBuffer> buffer, std::weak_ptr<MetalBufferPool> pool)
      : buffer_(std::move(buffer)), pool_(std::move(pool)) {}
  ~MetalStorage() override {
    if (auto pool = pool_.lock()) pool->release(std::move(buffer_));
  }
  MetalStorage(const MetalStorage&) = delete;
  MetalStorage& operator=(const MetalStorage&) = delete;

  std::byte* host_data() const override { return buffer_->contents(); }
  size_t size() const override { return buffer_->length(); }
  const std::shared_ptr<MetalBuffer>& buffer() const { return buffer_; }

 private:
  std::shared_ptr<MetalBuffer> buffer_;
  std::weak_ptr<MetalBufferPool> pool_;
};

}  // namespace torchless::metal
