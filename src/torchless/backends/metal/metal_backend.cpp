// MetalBackend: construction, memory, synchronisation and dispatch plumbing. The ops are in
// metal_ops.cpp and metal_attention.cpp.
#include "torchless/backends/metal/metal_backend.h"
#include "torchless/backends/metal/metal_memory_plan.h"

#include <algorithm>
#include <cstring>

#include "torchless/backends/metal/metal_storage.h"
#include "torchless/backends/metal/metal_weight_types.h"
#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

namespace torchless {

using metal::BufferArg;
using metal::MetalStorage;

namespace {

// Weights are read in place from the host's (mapped) memory only on Apple GPUs.
bool zero_copy_weights(const metal::MetalDeviceInfo& info) {
  return info.unified_memory && info.apple_gpu;
}

const MetalStorage& storage_of(const Tensor& t) {
  const auto* storage = dynamic_cast<const MetalStorage*>(t.buffer.get());
  if (!storage) fail("tensor of shape {} is not a Metal tensor of this backend", t.shape.str());
  return *storage;
}

}  // namespace

MetalBackend::MetalBackend() : MetalBackend(metal::create_apple_metal_device(), "metal") {}

MetalBackend::MetalBackend(std::unique_ptr<metal::MetalDevice> device, std::string name)
    : device_(std::move(device)),
      name_(std::move(name)),
      pool_(std::make_shared<metal::MetalBufferPool>(*device_)),
      recorder_(*device_) {}

MetalBackend::~MetalBackend() = default;

bool MetalBackend::is_available() {
  return metal::apple_metal_available(nullptr);
}

BackendInfo MetalBackend::info() {
  BackendInfo result;
  result.name = "metal";
  result.available = metal::apple_metal_available(&result.detail);
  return result;
}

DeviceInfo MetalBackend::device() const {
  const metal::MetalDeviceInfo& info = device_->info();
  return DeviceInfo{info.name, info.recommended_max_working_set, info.unified_memory};
}

std::string MetalBackend::device_name() const {
  return device_->info().name;
}

bool MetalBackend::supports_weight_dtype(DType dtype) const {
  if (dtype == DType::BF16) return device_->info().supports_bf16;
  return metal::is_weight_type(dtype);
}

std::string MetalBackend::check_memory_plan(const MemoryPlan& plan) const {
  return metal::enforce_memory_plan(plan, device_->info().recommended_max_working_set,
                                    physical_memory_bytes());
}

metal::MetalBackendStats MetalBackend::stats() const {
  const metal::RecorderStats& r = recorder_.stats();
  return {r.command_buffers, r.dispatches, r.barriers, weight_bytes_read_, r.threads};
}

Tensor MetalBackend::alloc(const Shape& shape, DType dtype) {
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  const size_t nbytes = t.nbytes();
  t.buffer = std::make_shared<MetalStorage>(pool_->acquire(nbytes), pool_);
  return t;
}

std::shared_ptr<metal::MetalBuffer> MetalBackend::wrap(const std::byte* data, size_t nbytes,
                                                       size_t& offset) {
  for (const auto& views : weight_views_) {
    if (views->contains(data, nbytes)) return views->bind(data, nbytes, offset);
  }
  for (auto it = wrapped_.begin(); it != wrapped_.end();) {
    auto buffer = it->buffer.lock();
    if (!buffer) {
      it = wrapped_.erase(it);
      continue;
    }
    if (data >= it->begin && data + nbytes <= it->end) {
      offset = static_cast<size_t>(data - it->begin);
      return buffer;
    }
    ++it;
  }
  // newBufferWithBytesNoCopy wants whole pages: round out to the system page size. Every page
  // of the rounded range holds bytes of the tensor, so it is mapped.
  const size_t page = system_page_size();
  const auto address = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = address / page * page;
  const uintptr_t end = (address + nbytes + page - 1) / page * page;
  if (end - begin > device_->info().max_buffer_length) {
    fail("a {}-byte tensor exceeds the device's maximum buffer length of {} bytes", nbytes,
         device_->info().max_buffer_length);
  }
  const auto* base = reinterpret_cast<const std::byte*>(begin);
  auto buffer = device_->wrap_host_memory(base, end - begin);
  wrapped_.push_back({base, base + (end - begin), buffer});
  offset = address - begin;
  return buffer;
}

void MetalBackend::map_host_region(std::span<const std::byte> region, size_t largest_tensor) {
  if (!zero_copy_weights(device_->info()) || region.empty()) return;
  // The OS never maps two live regions over one address, so an announced region that overlaps
  // the new one has been unmapped: its plan must not bind tensors of the new file. Tensors
  // bound from it keep their own buffers alive.
  std::erase_if(weight_views_, [&](const auto& views) { return views->overlaps(region); });
  weight_views_.push_back(
      std::make_unique<metal::MetalWeightViews>(*device_, region, largest_tensor));
}

Tensor MetalBackend::to_device(const HostTensorView& view) {
  Tensor t;
  t.shape = view.shape;
  t.dtype = view.dtype;
  if (view.nbytes != t.nbytes()) {
    fail("to_device: {} bytes given for a {} tensor of shape {} ({} bytes)", view.nbytes,
         dtype_name(view.dtype), view.shape.str(), t.nbytes());
  }
  if (!zero_copy_weights(device_->info())) {
    // Discrete GPU: managed storage, copied once and flagged for upload. Other vendors'
    // integrated GPUs: shared storage, copied once.
    Tensor copy = alloc(view.shape, view.dtype);
    upload({view.data, view.nbytes}, copy);
    return copy;
  }
  size_t offset = 0;
  t.buffer = std::make_shared<MetalStorage>(wrap(view.data, view.nbytes, offset),
                                            std::weak_ptr<metal::MetalBufferPool>{});
  t.offset = offset;
  return t;
}

void MetalBackend::to_host(const Tensor& tensor, std::span<std::byte> out) {
  const MetalStorage& storage = storage_of(tensor);
  if (out.size() != tensor.nbytes()) {
    fail("to_host: {} bytes requested of a {}-byte tensor", out.size(), tensor.nbytes());
  }
  recorder_.prepare_host_read(*storage.buffer());
  recorder_.flush();
  std::memcpy(out.data(), storage.buffer()->contents() + tensor.offset, out.size());
}

void MetalBackend::upload(std::span<const std::byte> bytes, Tensor& tensor) {
  const MetalStorage& storage = storage_of(tensor);
  if (bytes.size() != tensor.nbytes()) {
    fail("upload: {} bytes given for a {}-byte tensor of shape {}", bytes.size(), tensor.nbytes(),
         tensor.shape.str());
  }
  // Recorded work runs later: writing now would change what it reads. Finish it first.
  if (recorder_.uses(*storage.buffer())) recorder_.flush();
  std::memcpy(storage.buffer()->contents() + tensor.offset, bytes.data(), bytes.size());
  storage.buffer()->did_modify_range(tensor.offset, bytes.size());
}

void MetalBackend::synchronize() {
  recorder_.flush();
}

const metal::MetalPipeline& MetalBackend::pipeline(std::string_view name) {
  const metal::MetalPipeline& p = device_->pipeline(name);
  if (p.max_total_threads_per_threadgroup() == 0 || p.thread_execution_width() == 0) {
    fail("Metal pipeline {} is incompatible with {} (reports zero threads)", name,
         device_->info().name);
  }
  return p;
}

bool MetalBackend::uses_kernel(const metal::MetalDeviceInfo& info, std::string_view kernel_name) {
  const bool gemm = kernel_name.starts_with("matmul_") && !kernel_name.starts_with("matmul_vec");
  const bool matrix_probe = kernel_name.starts_with("probe_simdgroup_");
  const bool bf16 = kernel_name.find("_bf16") != std::string_view::npos;
  if (bf16 && !info.supports_bf16) return false;  // BF16 weights are refused there
  return info.has_simdgroup_matrix || !(gemm || matrix_probe);
}

uint32_t MetalBackend::fit_threads(const metal::MetalPipeline& pipeline, uint64_t wanted) {
  const uint64_t width = pipeline.thread_execution_width();
  const uint64_t limit = pipeline.max_total_threads_per_threadgroup() / width * width;
  const uint64_t rounded = (std::max<uint64_t>(wanted, 1) + width - 1) / width * width;
  return static_cast<uint32_t>(std::max(width, std::min(rounded, limit)));
}

BufferArg MetalBackend::read(const Tensor& t) const {
  return rows_arg(t, 0, t.rows(), false);
}

BufferArg MetalBackend::write(const Tensor& t) const {
  return rows_arg(t, 0, t.rows(), true);
}

BufferArg MetalBackend::rows_arg(const Tensor& t, int64_t first_row, int64_t n_rows,
                                 bool written) const {
  const MetalStorage& storage = storage_of(t);
  const size_t offset = t.offset + static_cast<size_t>(first_row) * t.row_bytes();
  const size_t length = static_cast<size_t>(n_rows) * t.row_bytes();
  if (offset + length > storage.buffer()->length()) {
    fail("tensor of shape {} ({} bytes at offset {}) overruns its {}-byte Metal buffer",
         t.shape.str(), length, offset, storage.buffer()->length());
  }
  return BufferArg{storage.buffer(), offset, length, written};
}

}  // namespace torchless
