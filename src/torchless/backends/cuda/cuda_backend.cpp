#include "torchless/backends/cuda/cuda_backend.h"

#include <algorithm>
#include <vector>

#include "torchless/backends/cuda/cuda_blas.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_kernels.h"
#include "torchless/backends/cuda/cuda_memory.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

// Tokens up to which a batched matmul runs the mat-vec kernel once per token (weights then come
// from L2 after the first token); above it, cuBLAS.
constexpr int64_t kMatvecTokens = 8;
// Floats per tile of dequantised weights for cuBLAS (64 MiB).
constexpr size_t kTileFloats = size_t{16} << 20;

void check_cublas(cublasStatus_t status, std::string_view call, std::string_view op) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail("{}: {} failed: {}", op, call, cuda::blas().status_string(status));
  }
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

CudaBackend::CudaBackend(int device) : device_(device) {
  int count = 0;
  cuda::check(cudaGetDeviceCount(&count), "cudaGetDeviceCount", "init");
  if (count == 0) fail("no CUDA device");
  if (device < 0 || device >= count) {
    fail("there is no CUDA device {}: this machine has {}", device, count);
  }
  cuda::check(cudaSetDevice(device_), "cudaSetDevice", "init");
  // A blocking stream: ordered after the legacy default stream's cudaMemset/cudaMemcpy of
  // alloc() and to_device(), whose device-side work may still be in flight when they return.
  cuda::check(cudaStreamCreate(&stream_), "cudaStreamCreate", "init");
  const cuda::Blas& blas = cuda::blas();
  check_cublas(blas.create(&cublas_), "cublasCreate", "init");
  check_cublas(blas.set_stream(cublas_, stream_), "cublasSetStream", "init");
  // F32 products stay F32: TF32 tensor cores would move results by ~1e-3.
  check_cublas(blas.set_math_mode(cublas_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode", "init");
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);  // a tensor-parallel rank's backend may be destroyed on another thread
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  scratch_.reset();
  if (cublas_ != nullptr) cuda::blas().destroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

BackendInfo CudaBackend::info() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return {"cuda", false,
            fmt::format("no usable CUDA device or driver ({})", cudaGetErrorString(status))};
  }
  if (count == 0) return {"cuda", false, "no CUDA device"};
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties", "info");
  return {"cuda", true,
          fmt::format("{} ({:.1f} GiB, sm_{}{})", prop.name,
                      static_cast<double>(prop.totalGlobalMem) / kGiB, prop.major, prop.minor)};
}

DeviceInfo CudaBackend::device() const {
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties", "device");
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device_);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device_);
  DeviceInfo info{prop.name, prop.totalGlobalMem, false};
  // Double data rate: two transfers per clock.
  info.memory_bandwidth =
      2ull * static_cast<uint64_t>(clock_khz) * 1000ull * static_cast<uint64_t>(bus_bits) / 8ull;
  return info;
}

bool CudaBackend::supports_weight_dtype(DType dtype) const {
  return cuda::kernel_supports(dtype);
}

bool CudaBackend::supports_kv_dtype(DType dtype) const {
  return dtype == DType::F32 || dtype == DType::F16;  // no Q8_0 KV kernels yet (docs/cuda.md)
}

std::string CudaBackend::check_memory_plan(const MemoryPlan& plan) const {
  size_t free_bytes = 0, total_bytes = 0;
  cuda::check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo", "check_memory_plan");
  const double need = static_cast<double>(plan.total()) / kGiB;
  const double free = static_cast<double>(free_bytes) / kGiB;
  if (plan.total() > free_bytes) {
    fail(
        "the model needs {:.2f} GiB on the GPU (weights {:.2f}, KV cache {:.2f}, scratch {:.2f}) "
        "but only {:.2f} GiB of {:.2f} are free: use a smaller quantisation, a shorter context "
        "(--ctx-size), an F16 KV cache, or --backend cpu",
        need, static_cast<double>(plan.weight_bytes) / kGiB,
        static_cast<double>(plan.kv_cache_bytes) / kGiB,
        static_cast<double>(plan.scratch_bytes) / kGiB, free,
        static_cast<double>(total_bytes) / kGiB);
  }
  if (static_cast<double>(plan.total()) > 0.9 * static_cast<double>(free_bytes)) {
    return fmt::format("the model fills {:.2f} of the GPU's {:.2f} free GiB", need, free);
  }
  return {};
}

// --- memory -------------------------------------------------------------------------------

Tensor CudaBackend::alloc(const Shape& shape, DType dtype) {
  if (shape.numel() < 0) fail("alloc: invalid shape {}", shape.str());
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.buffer = std::make_shared<cuda::DeviceBuffer>(t.nbytes());
  return t;
}

Tensor CudaBackend::to_device(const HostTensorView& view) {
  if (view.data == nullptr) fail("to_device: null data for a tensor of shape {}", view.shape.str());
  Tensor t = alloc(view.shape, view.dtype);
  if (view.nbytes < t.nbytes()) {
    fail("to_device: {} bytes given for a {} tensor of shape {} ({} bytes)", view.nbytes,
         dtype_name(view.dtype), view.shape.str(), t.nbytes());
  }
  cuda::check(cudaMemcpy(cuda::device_ptr(t, "to_device", "tensor"), view.data, t.nbytes(),
                         cudaMemcpyHostToDevice),
              "cudaMemcpy", "to_device");
  return t;
}

void CudaBackend::to_host(const Tensor& tensor, std::span<std::byte> out) {
  const std::byte* src = cuda::device_ptr(tensor, "to_host", "tensor");
  if (out.size() != tensor.nbytes()) {
    fail("to_host: tensor of shape {} has {} bytes, destination {}", tensor.shape.str(),
         tensor.nbytes(), out.size());
  }
  cuda::check(cudaMemcpyAsync(out.data(), src, out.size(), cudaMemcpyDeviceToHost, stream_),
              "cudaMemcpyAsync", "to_host");
  synchronize();
}

void CudaBackend::upload(std::span<const std::byte> bytes, Tensor& tensor) {
  std::byte* dst = cuda::device_ptr(tensor, "upload", "tensor");
  if (bytes.size() != tensor.nbytes()) {
    fail("upload: tensor of shape {} has {} bytes, source {}", tensor.shape.str(), tensor.nbytes(),
         bytes.size());
  }
  // From pageable memory the copy is staged before the call returns, so the caller may reuse
  // its bytes at once; it stays ordered with the ops on the stream.
  cuda::check(cudaMemcpyAsync(dst, bytes.data(), bytes.size(), cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync", "upload");
}

void CudaBackend::make_current() {
  cuda::check(cudaSetDevice(device_), "cudaSetDevice", "make_current");
}

void CudaBackend::synchronize() {
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", "synchronize");
}

float* CudaBackend::scratch(size_t floats) {
  if (!scratch_ || scratch_->size() < floats * sizeof(float)) {
    synchronize();  // the old buffer may still be in use by queued work
    scratch_.reset();
    scratch_ = std::make_unique<cuda::DeviceBuffer>(floats * sizeof(float));
  }
  return reinterpret_cast<float*>(scratch_->device_data());
}

// --- linear algebra -----------------------------------------------------------------------

void CudaBackend::matmul_vec_impl(const Tensor& w, const Tensor& x, Tensor& y) {
  cuda::device_ptr(w, "matmul_vec", "w");
  const float* xp = cuda::f32_ptr(x, "matmul_vec", "x");
  float* yp = cuda::f32_ptr(y, "matmul_vec", "y");
  linear(w, xp, 1, yp, "matmul_vec");
}

void CudaBackend::matmul_impl(const Tensor& w, const Tensor& x, Tensor& y) {
  cuda::device_ptr(w, "matmul", "w");
  const float* xp = cuda::f32_ptr(x, "matmul", "x");
  float* yp = cuda::f32_ptr(y, "matmul", "y");
  linear(w, xp, x.rows(), yp, "matmul");
}

void CudaBackend::linear(const Tensor& w, const float* x, int64_t n, float* y,
                         std::string_view op) {
  if (n == 0 || w.rows() == 0) return;
  if (n <= kMatvecTokens) {
    cuda::matvec(w.dtype, cuda::device_ptr(w, op, "w"), x, y, w.rows(), w.cols(), n, stream_);
    cuda::check_launch(op);
  } else {
    linear_gemm(w, x, n, y);
  }
}

// Row-major y[n, rows] = x[n, cols] W^T is, in cuBLAS's column-major terms, Y' = W' x' with W'
// the [cols, rows] matrix transposed: SGEMM(op T, op N) per tile of weight rows.
void CudaBackend::linear_gemm(const Tensor& w, const float* x, int64_t n, float* y) {
  const int64_t rows = w.rows(), cols = w.cols();
  const std::byte* wp = cuda::device_ptr(w, "matmul", "w");
  const int64_t tile_rows =
      std::clamp<int64_t>(static_cast<int64_t>(kTileFloats) / std::max<int64_t>(cols, 1), 1, rows);
  float* tile = w.dtype == DType::F32 ? nullptr : scratch(static_cast<size_t>(tile_rows * cols));
  const float alpha = 1.0f, beta = 0.0f;
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - r0);
    const float* a = reinterpret_cast<const float*>(wp) + r0 * cols;
    if (tile != nullptr) {
      cuda::dequantize_rows(w.dtype, wp, cols, r0, count, nullptr, tile, stream_);
      cuda::check_launch("matmul");
      a = tile;
    }
    check_cublas(cuda::blas().sgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(count),
                                    static_cast<int>(n), static_cast<int>(cols), &alpha, a,
                                    static_cast<int>(cols), x, static_cast<int>(cols), &beta,
                                    y + r0, static_cast<int>(rows)),
                 "cublasSgemm", "matmul");
  }
}

// --- row-wise ops -------------------------------------------------------------------------

void CudaBackend::rmsnorm_impl(const Tensor& x, const Tensor& weight, Tensor& y, float eps) {
  const float* xp = cuda::f32_ptr(x, "rmsnorm", "x");
  const float* wp = cuda::f32_ptr(weight, "rmsnorm", "weight");
  float* yp = cuda::f32_ptr(y, "rmsnorm", "y");
  if (x.numel() == 0) return;
  cuda::rmsnorm(xp, wp, yp, x.rows(), x.cols(), eps, stream_);
  cuda::check_launch("rmsnorm");
}

void CudaBackend::softmax_impl(Tensor& x) {
  float* xp = cuda::f32_ptr(x, "softmax", "x");
  if (x.numel() == 0) return;
  cuda::softmax(xp, x.rows(), x.cols(), stream_);
  cuda::check_launch("softmax");
}

void CudaBackend::silu_impl(Tensor& x) {
  float* xp = cuda::f32_ptr(x, "silu", "x");
  if (x.numel() == 0) return;
  cuda::silu(xp, x.numel(), stream_);
  cuda::check_launch("silu");
}

void CudaBackend::fused_silu_mul_impl(const Tensor& gate, const Tensor& up, Tensor& out) {
  const float* gp = cuda::f32_ptr(gate, "fused_silu_mul", "gate");
  const float* upp = cuda::f32_ptr(up, "fused_silu_mul", "up");
  float* op = cuda::f32_ptr(out, "fused_silu_mul", "out");
  if (gate.numel() == 0) return;
  cuda::silu_mul(gp, upp, op, gate.numel(), stream_);
  cuda::check_launch("fused_silu_mul");
}

void CudaBackend::add_impl(const Tensor& a, const Tensor& b, Tensor& out) {
  const float* ap = cuda::f32_ptr(a, "add", "a");
  const float* bp = cuda::f32_ptr(b, "add", "b");
  float* op = cuda::f32_ptr(out, "add", "out");
  if (a.numel() == 0) return;
  cuda::add(ap, bp, op, a.numel(), b.numel(), stream_);
  cuda::check_launch("add");
}

// --- rope, embedding, kv_store -------------------------------------------------------------

void CudaBackend::rope_impl(Tensor& x, const Tensor& inv_freq, const RopeParams& p) {
  float* xp = cuda::f32_ptr(x, "rope", "x");
  const float* fp = cuda::f32_ptr(inv_freq, "rope", "inv_freq");
  if (x.numel() == 0) return;
  cuda::rope(xp, fp, x.rows(), p.n_heads, p.head_dim, p.pos0, p.neox, stream_);
  cuda::check_launch("rope");
}

void CudaBackend::embedding_impl(const Tensor& table, const Tensor& ids, Tensor& out) {
  const std::byte* tp = cuda::device_ptr(table, "embedding", "table");
  const auto* idp = reinterpret_cast<const int32_t*>(cuda::device_ptr(ids, "embedding", "ids"));
  float* op = cuda::f32_ptr(out, "embedding", "out");
  const int64_t n = ids.numel();
  if (n == 0) return;
  // The ids are checked on the host, as the CPU backend does: a few bytes, one wait.
  std::vector<int32_t> host_ids(static_cast<size_t>(n));
  to_host(ids, std::as_writable_bytes(std::span(host_ids)));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = host_ids[static_cast<size_t>(i)];
    if (id < 0 || id >= table.rows()) {
      fail("embedding: token id {} at index {} outside the table's {} rows", id, i, table.rows());
    }
  }
  cuda::dequantize_rows(table.dtype, tp, table.cols(), 0, n, idp, op, stream_);
  cuda::check_launch("embedding");
}

void CudaBackend::kv_store_impl(const Tensor& src, Tensor& cache, int pos0) {
  const float* sp = cuda::f32_ptr(src, "kv_store", "src");
  const int64_t cols = cache.cols();
  const int64_t n = cols == 0 ? 0 : src.numel() / cols;  // whole rows (op_checks.h)
  if (n == 0 || cols == 0) return;
  cuda::kv_store(sp, cuda::device_ptr(cache, "kv_store", "cache"), cache.dtype == DType::F16, n,
                 cols, pos0, stream_);
  cuda::check_launch("kv_store");
}

}  // namespace torchless
