#include "torchless/backends/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "torchless/backends/cuda/cuda_blas.h"
#include "torchless/backends/cuda/cuda_checks.h"
#include "torchless/backends/cuda/cuda_flash_attention.h"
#include "torchless/backends/cuda/cuda_gemm_precision.h"
#include "torchless/backends/cuda/cuda_kernels.h"
#include "torchless/backends/cuda/cuda_memory.h"
#include "torchless/backends/cuda/cuda_pool.h"
#include "torchless/backends/cuda/cuda_upload.h"
#include "torchless/core/error.h"

namespace torchless {
namespace {

// Tokens per mat-vec launch (its grid's y dimension).
constexpr int64_t kMaxGridRows = 65535;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

CudaBackend::CudaBackend(const BackendOptions& options, int device)
    : device_(device), batch_invariant_(options.batch_invariant) {
  const char* env = std::getenv("TORCHLESS_CUDA_GRAPHS");
  step_graphs_ = env != nullptr && (*env == '0' || *env == '1') ? *env == '1' : options.step_graphs;
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
  cuda::check_blas(blas.create(&cublas_), "cublasCreate", "init");
  cuda::check_blas(blas.set_stream(cublas_, stream_), "cublasSetStream", "init");
  // Tensor cores for the F16/BF16 GEMMs; each GEMM names its compute type, and the F32 one
  // (F32 weights) is CUBLAS_COMPUTE_32F_PEDANTIC: no TF32, which would move results by ~1e-3.
  cuda::check_blas(blas.set_math_mode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", "init");
  cuda::check(cudaEventCreateWithFlags(&step_done_, cudaEventDisableTiming), "cudaEventCreate",
              "init");
  // Sized before any step: growing it while a step is captured keeps the old buffer.
  activations_.get(0, stream_, false);
  pool_ = std::make_shared<cuda::DevicePool>(stream_);
  uploader_ = std::make_unique<cuda::PinnedUploader>(stream_);
  decode_partials_ =
      std::make_unique<cuda::DeviceBuffer>(cuda::kDecodePartialFloats * sizeof(float));
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);  // a tensor-parallel rank's backend may be destroyed on another thread
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  // TORCHLESS_CUDA_GRAPH_STATS=1: whether graph updates succeeded (few instantiations) or each
  // step paid for a new executable graph.
  if (const char* stats = std::getenv("TORCHLESS_CUDA_GRAPH_STATS"); stats && *stats == '1') {
    fmt::print(stderr, "cuda: {} decode steps, {} launched as graphs, {} graph instantiations\n",
               steps_, graph_.launches(), graph_.instantiations());
  }
  if (step_done_ != nullptr) cudaEventDestroy(step_done_);
  scratch_.reset();
  uploader_.reset();
  decode_partials_.reset();
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
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::Q8_0;
}

std::string CudaBackend::check_memory_plan(const MemoryPlan& plan) const {
  size_t free_bytes = 0, total_bytes = 0;
  cuda::check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo", "check_memory_plan");
  const double need = static_cast<double>(plan.total()) / kGiB;
  const double free = static_cast<double>(free_bytes) / kGiB;
  if (plan.total() > free_bytes) {
    fail(
        "the model needs {:.2f} GiB on the GPU (weights {:.2f}, KV cache {:.2f}, scratch {:.2f}) "
        "but only {:.2f} GiB of {:.2f} are free: use a shorter context (--ctx), a Q8_0 KV cache "
        "(--kv-type q8_0, half of F16's), a smaller quantisation of the model, or --backend cpu",
        need, static_cast<double>(plan.weight_bytes) / kGiB,
        static_cast<double>(plan.kv_cache_bytes) / kGiB,
        static_cast<double>(plan.scratch_bytes) / kGiB, free,
        static_cast<double>(total_bytes) / kGiB);
  }
  // A plan that fits sizes the pool's first reservation: the KV cache and scratch in one
  // cudaMalloc rather than one per tensor.
  pool_->reserve_hint(plan.kv_cache_bytes + plan.scratch_bytes);
  if (static_cast<double>(plan.total()) > 0.9 * static_cast<double>(free_bytes)) {
    return fmt::format("the model fills {:.2f} of the GPU's {:.2f} free GiB", need, free);
  }
  return {};
}

// --- memory -------------------------------------------------------------------------------

Tensor CudaBackend::alloc(const Shape& shape, DType dtype) {
  if (shape.numel() < 0) fail("alloc: invalid shape {}", shape.str());
  require_no_step("alloc");
  fused_ = {};  // the new memory may reuse a freed buffer's address
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.buffer = pool_->allocate(t.nbytes(), "alloc");
  return t;
}

Tensor CudaBackend::to_device(const HostTensorView& view) {
  if (view.data == nullptr) fail("to_device: null data for a tensor of shape {}", view.shape.str());
  require_no_step("to_device");
  if (view.shape.numel() < 0) fail("to_device: invalid shape {}", view.shape.str());
  Tensor t;
  t.shape = view.shape;
  t.dtype = view.dtype;
  if (view.nbytes < t.nbytes()) {
    fail("to_device: {} bytes given for a {} tensor of shape {} ({} bytes)", view.nbytes,
         dtype_name(view.dtype), view.shape.str(), t.nbytes());
  }
  // Weights live as long as the model: an allocation of their own, outside the pool.
  t.buffer = std::make_shared<cuda::DeviceBuffer>(t.nbytes());
  uploader_->copy(cuda::device_ptr(t, "to_device", "tensor"), view.data, t.nbytes(), "to_device");
  return t;
}

void CudaBackend::map_host_region(std::span<const std::byte> region, size_t largest_tensor_bytes) {
  (void)largest_tensor_bytes;  // staging is chunked: any tensor size goes through it
  uploader_->add_region(region);
}

void CudaBackend::to_host(const Tensor& tensor, std::span<std::byte> out) {
  require_no_step("to_host");
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
  fused_ = {};
  // From pageable memory the copy is staged before the call returns, so the caller may reuse
  // its bytes at once; it stays ordered with the ops on the stream. A captured step's copy is
  // replayed later, so it reads a page-locked copy of the bytes that lives until the next step.
  const std::byte* src = bytes.data();
  if (graph_.capturing()) src = staging_.stage(bytes.data(), bytes.size());
  cuda::check(cudaMemcpyAsync(dst, src, bytes.size(), cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync", "upload");
}

void CudaBackend::make_current() {
  cuda::check(cudaSetDevice(device_), "cudaSetDevice", "make_current");
}

void CudaBackend::synchronize() {
  require_no_step("synchronize");
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", "synchronize");
  uploader_->finish_progress();  // a load ends with a wait (Session, the first to_host)
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
  if (n <= cuda::kMatvecTokens || batch_invariant_) {
    // One grid row per token: each token's reduction is the same in any batch.
    for (int64_t t0 = 0; t0 < n; t0 += kMaxGridRows) {
      matvec(w, x + t0 * w.cols(), std::min(kMaxGridRows, n - t0), y + t0 * w.rows(), op);
    }
  } else {
    linear_gemm(w, x, n, y);
  }
}

// --- row-wise ops -------------------------------------------------------------------------

void CudaBackend::rmsnorm_impl(const Tensor& x, const Tensor& weight, Tensor& y, float eps) {
  const float* xp = cuda::f32_ptr(x, "rmsnorm", "x");
  const float* wp = cuda::f32_ptr(weight, "rmsnorm", "weight");
  float* yp = cuda::f32_ptr(y, "rmsnorm", "y");
  if (x.numel() == 0) return;
  if (x.rows() <= cuda::kMatvecTokens && x.cols() % 32 == 0) {
    // The input of the mat-vecs that usually follow, quantised on the way.
    const cuda::ActivationQ8 q = activation_scratch(x.rows(), x.cols());
    cuda::rmsnorm_quantize(xp, wp, yp, q, x.rows(), x.cols(), eps, stream_);
    fused_ = {yp, x.rows(), x.cols(), ops_issued()};
  } else {
    cuda::rmsnorm(xp, wp, yp, x.rows(), x.cols(), eps, stream_);
  }
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
  if (out.rows() <= cuda::kMatvecTokens && out.cols() % 32 == 0) {
    // The down projection's input, quantised on the way.
    const cuda::ActivationQ8 q = activation_scratch(out.rows(), out.cols());
    cuda::silu_mul_quantize(gp, upp, op, q, gate.numel(), stream_);
    fused_ = {op, out.rows(), out.cols(), ops_issued()};
  } else {
    cuda::silu_mul(gp, upp, op, gate.numel(), stream_);
  }
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
  // Outside a decode step the ids are checked on the host, as the CPU backend does: a few
  // bytes, one wait. A step must not wait (Backend::begin_step): the kernel then reads an id
  // outside the table as a zero row, and the caller has checked its tokens.
  if (!in_step()) {
    std::vector<int32_t> host_ids(static_cast<size_t>(n));
    to_host(ids, std::as_writable_bytes(std::span(host_ids)));
    for (int64_t i = 0; i < n; ++i) {
      const int32_t id = host_ids[static_cast<size_t>(i)];
      if (id < 0 || id >= table.rows()) {
        fail("embedding: token id {} at index {} is outside the table's {} rows", id, i,
             table.rows());
      }
    }
  }
  cuda::embedding(table.dtype, tp, table.rows(), table.cols(), idp, n, op, stream_);
  cuda::check_launch("embedding");
}

void CudaBackend::kv_store_impl(const Tensor& src, Tensor& cache, int pos0) {
  if (cache.dtype == DType::Q8_0) return q8_0_kv_store(src, cache, pos0);
  const float* sp = cuda::f32_ptr(src, "kv_store", "src");
  const int64_t cols = cache.cols();
  const int64_t n = cols == 0 ? 0 : src.numel() / cols;  // whole rows (op_checks.h)
  if (n == 0 || cols == 0) return;
  cuda::kv_store(sp, cuda::device_ptr(cache, "kv_store", "cache"), cache.dtype == DType::F16, n,
                 cols, pos0, stream_);
  cuda::check_launch("kv_store");
}

}  // namespace torchless
