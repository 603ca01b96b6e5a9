#pragma once
// Tensors: a shape and dtype over a byte range of backend-owned storage. Views (rows(),
// reshape()) share the storage; nothing here copies data.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "torchless/core/dtype.h"
#include "torchless/core/shape.h"

namespace torchless {

// Storage owned by a backend: host memory, a mapped file region, an MTLBuffer, device memory.
class Buffer {
 public:
  virtual ~Buffer() = default;
  // CPU-visible bytes, or nullptr when the storage is not host-accessible (discrete GPUs).
  virtual std::byte* host_data() const = 0;
  virtual size_t size() const = 0;
};

// A non-owning description of bytes in host memory (e.g. a tensor inside a mapped file).
struct HostTensorView {
  Shape shape;
  DType dtype = DType::F32;
  const std::byte* data = nullptr;
  size_t nbytes = 0;  // equals dtype_row_bytes(dtype, shape.cols()) * shape.rows()
};

// How a weight matrix's bytes are arranged. Plain: rows of dtype blocks, row_bytes() apart, as
// in the file. CpuRows16: repacked by the CPU backend at load (backends/cpu/cpu_repack.h), 16
// rows interleaved; only that backend's matmul and to_host read it, and no view can slice it.
enum class WeightLayout : uint8_t { Plain, CpuRows16 };

struct Tensor {
  Shape shape;
  DType dtype = DType::F32;
  std::shared_ptr<Buffer> buffer;
  size_t offset = 0;  // bytes from the start of buffer
  WeightLayout layout = WeightLayout::Plain;

  bool empty() const { return buffer == nullptr; }
  int64_t numel() const { return shape.numel(); }
  int64_t rows() const { return shape.rows(); }
  int64_t cols() const { return shape.cols(); }
  size_t row_bytes() const { return dtype_row_bytes(dtype, shape.cols()); }
  // Bytes of the plain layout (what to_host writes), whatever the layout in storage.
  size_t nbytes() const { return row_bytes() * static_cast<size_t>(shape.rows()); }

  // Host pointer to the first byte; nullptr when the storage is not host-visible.
  std::byte* data() const;
  template <typename T>
  T* data_as() const {
    return reinterpret_cast<T*>(data());
  }
  // Rows [first, first + count) of the tensor seen as a [rows, cols] matrix, as a 2-D view.
  Tensor slice_rows(int64_t first, int64_t count) const;
  // Same bytes, another shape with the same element count and the same innermost block layout.
  Tensor reshape(const Shape& shape) const;
};

}  // namespace torchless
