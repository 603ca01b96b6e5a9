#include "torchless/backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "torchless/backends/cpu/cpu_kernels.h"
#include "torchless/backends/cpu/cpu_memory.h"
#include "torchless/backends/cpu/cpu_repack.h"
#include "torchless/backends/op_checks.h"
#include "torchless/core/error.h"
#include "torchless/core/quant.h"
#include "torchless/core/system_memory.h"

namespace torchless {
namespace {

std::string cpu_model_name() {
#if defined(__APPLE__)
  char brand[256] = {};
  size_t size = sizeof brand;
  if (sysctlbyname("machdep.cpu.brand_string", brand, &size, nullptr, 0) == 0) return brand;
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        const auto start = line.find_first_not_of(" \t", colon + 1);
        if (start != std::string::npos) return line.substr(start);
      }
    }
  }
  return "CPU";
}

// Rows per parallel chunk for row-wise ops: enough elements that a chunk outweighs the
// hand-off cost of the pool (about a microsecond).
int64_t row_grain(int64_t cols) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
}

}  // namespace

CpuBackend::CpuBackend(const BackendOptions& options)
    : pool_(options.threads), device_name_(cpu_model_name()) {
  thread_scratch_.resize(static_cast<size_t>(pool_.size()));
}

BackendInfo CpuBackend::info() {
  return BackendInfo{
      "cpu", true,
      fmt::format("{} ({} threads)", cpu_model_name(), ThreadPool::default_thread_count())};
}

DeviceInfo CpuBackend::device() const {
  return DeviceInfo{fmt::format("{} ({} threads)", device_name_, pool_.size()),
                    physical_memory_bytes(), true};
}

bool CpuBackend::supports_weight_dtype(DType dtype) const {
  switch (dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
      return true;
    default:
      return can_dequantize(dtype);
  }
}

// --- memory -------------------------------------------------------------------------------

Tensor CpuBackend::alloc(const Shape& shape, DType dtype) {
  if (shape.numel() < 0) fail("alloc: invalid shape {}", shape.str());
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.buffer = std::make_shared<cpu::HostBuffer>(t.nbytes());
  return t;
}

Tensor CpuBackend::to_device(const HostTensorView& view) {
  Tensor t;
  t.shape = view.shape;
  t.dtype = view.dtype;
  if (view.data == nullptr) fail("to_device: null data for a tensor of shape {}", view.shape.str());
  if (view.nbytes < t.nbytes()) {
    fail("to_device: {} bytes given for a {} tensor of shape {} ({} bytes)", view.nbytes,
         dtype_name(view.dtype), view.shape.str(), t.nbytes());
  }
  t.buffer = std::make_shared<cpu::ExternalHostBuffer>(view.data, view.nbytes);
  return t;
}

namespace {

// TORCHLESS_CPU_REPACK: unset, repack where the VNNI kernels run; "0", never (to measure the
// plain layout's kernels); "force", on every CPU (to measure the load's time and memory where
// the kernels then unpack each group: slower than the plain layout).
// Any other value is refused, so a misspelt setting never silently measures the wrong layout.
std::string_view repack_setting() {
  const char* v = std::getenv("TORCHLESS_CPU_REPACK");
  const std::string_view setting = v == nullptr ? std::string_view() : std::string_view(v);
  if (!setting.empty() && setting != "0" && setting != "force") {
    fail(
        "TORCHLESS_CPU_REPACK={}: expected 0 (never repack), force (always) or unset (where "
        "the kernels read the repacked layout)",
        setting);
  }
  return setting;
}

}  // namespace

bool CpuBackend::repacks_matrix(DType dtype, int64_t cols) const {
  const std::string_view setting = repack_setting();
  if (setting == "0") return false;
  if (setting == "force") return cpu::repackable(dtype, cols);
  return cpu::can_repack(dtype, cols);
}

Tensor CpuBackend::to_device_matrix(const HostTensorView& view, bool mapped) {
  if (view.shape.rank() != 2 || !repacks_matrix(view.dtype, view.shape.cols())) {
    return to_device(view);
  }
  return repack_matrix(view, mapped);
}

Tensor CpuBackend::repack_matrix(const HostTensorView& view, bool mapped) {
  if (view.shape.rank() != 2 || !cpu::repackable(view.dtype, view.shape.cols())) {
    fail("repack_matrix: no repacked layout for a {} tensor of shape {}", dtype_name(view.dtype),
         view.shape.str());
  }
  Tensor plain = to_device(view);  // checks the view
  const int64_t rows = plain.rows(), cols = plain.cols();
  Tensor t = plain;
  t.buffer = std::make_shared<cpu::HostBuffer>(cpu::repacked_bytes(view.dtype, rows, cols));
  t.offset = 0;
  t.layout = WeightLayout::CpuRows16;
  const int64_t groups = (rows + cpu::kRepackRows - 1) / cpu::kRepackRows;
  pool_.parallel_for(groups, 1, [&](int64_t g0, int64_t g1, int) {
    cpu::repack_groups(view.dtype, view.data, rows, cols, t.data(), g0, g1);
  });
  if (mapped) cpu::release_mapped_pages(view.data, plain.nbytes());
  return t;
}

void CpuBackend::to_host(const Tensor& tensor, std::span<std::byte> out) {
  op_checks::require_tensor(tensor, "to_host", "tensor");
  const std::byte* src = cpu::host_bytes(tensor);
  if (out.size() != tensor.nbytes()) {
    fail("to_host: tensor of shape {} has {} bytes, destination {}", tensor.shape.str(),
         tensor.nbytes(), out.size());
  }
  if (tensor.layout == WeightLayout::CpuRows16) {
    cpu::unpack_rows(tensor.dtype, src, tensor.cols(), 0, tensor.rows(), out.data());
    return;
  }
  std::memcpy(out.data(), src, out.size());
}

void CpuBackend::upload(std::span<const std::byte> bytes, Tensor& tensor) {
  op_checks::require_tensor(tensor, "upload", "tensor");
  if (tensor.layout != WeightLayout::Plain) fail("upload: the tensor is a repacked weight matrix");
  std::byte* dst = cpu::host_bytes(tensor);
  if (bytes.size() != tensor.nbytes()) {
    fail("upload: tensor of shape {} has {} bytes, source {}", tensor.shape.str(), tensor.nbytes(),
         bytes.size());
  }
  std::memcpy(dst, bytes.data(), bytes.size());
}

// --- row-wise ops (operands checked by Backend: op_checks.h) ------------------------------

void CpuBackend::rmsnorm_impl(const Tensor& x, const Tensor& weight, Tensor& y, float eps) {
  const float* xp = cpu::host_f32(x);
  const float* wp = cpu::host_f32(weight);
  float* yp = cpu::host_f32(y);
  const int64_t cols = x.cols();
  pool_.parallel_for(x.rows(), row_grain(cols), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = xp + r * cols;
      const float mean = cpu::sum_squares(row, cols) / static_cast<float>(cols);
      cpu::scale_mul(row, wp, 1.0f / std::sqrt(mean + eps), yp + r * cols, cols);
    }
  });
}

void CpuBackend::softmax_impl(Tensor& x) {
  float* xp = cpu::host_f32(x);
  const int64_t cols = x.cols();
  pool_.parallel_for(x.rows(), row_grain(cols), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) cpu::softmax_row(xp + r * cols, cols);
  });
}

void CpuBackend::silu_impl(Tensor& x) {
  float* xp = cpu::host_f32(x);
  pool_.parallel_for(x.numel(), 16384,
                     [&](int64_t i0, int64_t i1, int) { cpu::silu_row(xp + i0, i1 - i0); });
}

void CpuBackend::fused_silu_mul_impl(const Tensor& gate, const Tensor& up, Tensor& out) {
  const float* gp = cpu::host_f32(gate);
  const float* upp = cpu::host_f32(up);
  float* op = cpu::host_f32(out);
  pool_.parallel_for(gate.numel(), 16384, [&](int64_t i0, int64_t i1, int) {
    cpu::silu_mul_row(gp + i0, upp + i0, op + i0, i1 - i0);
  });
}

void CpuBackend::add_impl(const Tensor& a, const Tensor& b, Tensor& out) {
  const float* ap = cpu::host_f32(a);
  const float* bp = cpu::host_f32(b);
  float* op = cpu::host_f32(out);
  const int64_t cols = a.cols();
  if (b.numel() == a.numel()) {
    pool_.parallel_for(a.numel(), 16384, [&](int64_t i0, int64_t i1, int) {
      cpu::add_row(ap + i0, bp + i0, op + i0, i1 - i0);
    });
    return;
  }
  // b is one row, broadcast over a's rows.
  pool_.parallel_for(a.rows(), row_grain(cols), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) cpu::add_row(ap + r * cols, bp, op + r * cols, cols);
  });
}

// --- rope, embedding, kv_store -------------------------------------------------------------

void CpuBackend::rope_impl(Tensor& x, const Tensor& inv_freq, const RopeParams& p) {
  float* xp = cpu::host_f32(x);
  const float* fp = cpu::host_f32(inv_freq);
  const int64_t width = static_cast<int64_t>(p.n_heads) * p.head_dim;
  const int64_t half = p.head_dim / 2;
  reserve_thread_scratch(static_cast<size_t>(p.head_dim));
  pool_.parallel_for(x.numel() / width, 1, [&](int64_t t0, int64_t t1, int thread) {
    float* cos_sin = thread_scratch(thread);
    for (int64_t t = t0; t < t1; ++t) {
      // Angles in double: pos * inv_freq loses precision in float at large positions.
      const double pos = static_cast<double>(p.pos0 + t);
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * static_cast<double>(fp[i]);
        cos_sin[2 * i] = static_cast<float>(std::cos(angle));
        cos_sin[2 * i + 1] = static_cast<float>(std::sin(angle));
      }
      for (int h = 0; h < p.n_heads; ++h) {
        float* v = xp + t * width + static_cast<int64_t>(h) * p.head_dim;
        const int64_t stride = p.neox ? 1 : 2;      // distance between pair starts
        const int64_t partner = p.neox ? half : 1;  // offset of the second element
        for (int64_t i = 0; i < half; ++i) {
          float& a = v[i * stride];
          float& b = v[i * stride + partner];
          const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
          const float a0 = a, b0 = b;
          a = a0 * c - b0 * s;
          b = a0 * s + b0 * c;
        }
      }
    }
  });
}

// Ids were range-checked by Backend::embedding (CPU tensors are always readable).
void CpuBackend::embedding_impl(const Tensor& table, const Tensor& ids, Tensor& out) {
  const std::byte* tp = cpu::host_bytes(table);
  const auto* id = reinterpret_cast<const int32_t*>(cpu::host_bytes(ids));
  float* op = cpu::host_f32(out);
  const int64_t dim = table.cols();
  const int64_t n = ids.numel();
  pool_.parallel_for(n, 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      const std::byte* row = tp + static_cast<size_t>(id[i]) * table.row_bytes();
      float* dst = op + i * dim;
      switch (table.dtype) {
        case DType::F16:
          cpu::f16_to_f32(reinterpret_cast<const uint16_t*>(row), dst, dim);
          break;
        case DType::BF16:
          cpu::bf16_to_f32(reinterpret_cast<const uint16_t*>(row), dst, dim);
          break;
        default:
          dequantize_row(table.dtype, row, dst, dim);
          break;
      }
    }
  });
}

void CpuBackend::kv_store_impl(const Tensor& src, Tensor& cache, int pos0) {
  const float* sp = cpu::host_f32(src);
  std::byte* cp = cpu::host_bytes(cache);
  const int64_t cols = cache.cols();
  const int64_t n = src.numel() / cols;
  for (int64_t i = 0; i < n; ++i) {
    std::byte* dst = cp + static_cast<size_t>(pos0 + i) * cache.row_bytes();
    switch (cache.dtype) {
      case DType::F16:
        cpu::f32_to_f16(sp + i * cols, reinterpret_cast<uint16_t*>(dst), cols);
        break;
      case DType::Q8_0:  // blocks of 32 along the row, never across heads (head_dim % 32 == 0)
        quantize_row(DType::Q8_0, sp + i * cols, dst, cols);
        break;
      default:
        std::memcpy(dst, sp + i * cols, static_cast<size_t>(cols) * sizeof(float));
        break;
    }
  }
}

void CpuBackend::reserve_thread_scratch(size_t count) {
  for (auto& scratch : thread_scratch_) {
    if (scratch.size() < count) scratch.resize(count);
  }
}

}  // namespace torchless
