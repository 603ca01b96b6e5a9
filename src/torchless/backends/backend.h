#pragma once
// The backend API: the one interface the model is written against. The CPU backend runs each
// op at once; GPU backends record ops in order and submit them at synchronize()/to_host(),
// so a forward pass is one submission. Activations are F32; weights may be any dtype the
// backend's supports_weight_dtype() accepts. Every op validates shapes and throws Error.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "torchless/core/tensor.h"

namespace torchless {

enum class BackendPreference { Auto, Cpu, Metal, Cuda };

struct DeviceInfo {
  std::string name;               // "AMD EPYC 7B13 (2 threads)", "Apple M2 Pro", ...
  uint64_t memory_bytes = 0;      // total memory usable by the backend (0 = unknown)
  bool unified_memory = true;     // host and device share memory (CPU, Apple Silicon)
  uint64_t memory_bandwidth = 0;  // peak bytes/s of device memory (0 = unknown), for bench
};

struct BackendInfo {
  std::string name;  // "cpu", "metal", "cuda"
  bool available = false;
  std::string detail;  // the device when available, the reason when not
};

// What a loaded model will keep on the backend's device, for the load-time memory check.
struct MemoryPlan {
  uint64_t weight_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t scratch_bytes = 0;  // activations, logits, staging
  uint64_t total() const { return weight_bytes + kv_cache_bytes + scratch_bytes; }
};

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = number of physical cores
};

// RoPE over [n_tokens, n_heads, head_dim]. inv_freq holds head_dim/2 F32 inverse frequencies,
// already including llama3/linear scaling, so backends need no knowledge of scaling schemes.
struct RopeParams {
  int n_heads = 0;
  int head_dim = 0;
  int pos0 = 0;       // position of the first token
  bool neox = false;  // false: rotate pairs (2i, 2i+1); true: rotate (i, i + head_dim/2)
};

// Causal attention of n_tokens queries at positions pos0.. over one layer's KV cache.
// q: [n_tokens, n_heads * head_dim]; caches: [n_ctx, n_kv_heads * head_dim] (F32 or F16),
// holding valid rows [0, pos0 + n_tokens); out: [n_tokens, n_heads * head_dim].
// Query head h reads KV head h / (n_heads / n_kv_heads). A query at position p sees keys in
// [max(0, p - window + 1), p] when window > 0, else [0, p].
struct AttentionParams {
  int n_tokens = 1;
  int pos0 = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int window = 0;
  float scale = 1.0f;  // usually 1/sqrt(head_dim)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual DeviceInfo device() const = 0;
  virtual bool supports_weight_dtype(DType dtype) const = 0;
  // Called before a model is loaded. Throws Error saying what to do when the plan cannot fit
  // the device; returns a warning when it fits only tightly, else "". The CPU maps weights
  // from the file and lets the OS page, so it accepts every plan.
  virtual std::string check_memory_plan(const MemoryPlan& plan) const {
    (void)plan;
    return {};
  }

  // --- memory ---
  virtual Tensor alloc(const Shape& shape, DType dtype) = 0;
  // Makes host bytes usable by the backend. Zero-copy where possible: the caller keeps the
  // host memory alive (e.g. a mapped model file) for the tensor's lifetime.
  virtual Tensor to_device(const HostTensorView& view) = 0;
  // A hint before to_device() calls: tensors to come may lie inside this host region (a mapped
  // model file), so a GPU backend can wrap the region once instead of tensor by tensor.
  // largest_tensor_bytes bounds any single tensor in it. The CPU ignores it.
  virtual void map_host_region(std::span<const std::byte> region, size_t largest_tensor_bytes) {
    (void)region;
    (void)largest_tensor_bytes;
  }
  // Copies a tensor's bytes to host memory (waits for pending work first).
  virtual void to_host(const Tensor& tensor, std::span<std::byte> out) = 0;
  // Copies host bytes into an existing tensor (e.g. token ids each step).
  virtual void upload(std::span<const std::byte> bytes, Tensor& tensor) = 0;
  virtual void synchronize() = 0;

  // --- linear algebra; w: [rows, cols] of any supported dtype ---
  // y[rows] = W x[cols].
  virtual void matmul_vec(const Tensor& w, const Tensor& x, Tensor& y) = 0;
  // y[n, rows] = x[n, cols] W^T: the batched form used for prompt processing.
  virtual void matmul(const Tensor& w, const Tensor& x, Tensor& y) = 0;

  // --- elementwise and row-wise ops on F32 tensors ---
  // y = x / rms(x) * weight per row of cols() elements; y may alias x; weight: [cols].
  virtual void rmsnorm(const Tensor& x, const Tensor& weight, Tensor& y, float eps) = 0;
  virtual void softmax(Tensor& x) = 0;  // in place, per row, numerically stable
  virtual void silu(Tensor& x) = 0;     // in place
  // out = silu(gate) * up (SwiGLU); out may alias gate.
  virtual void fused_silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  // out = a + b; b either has a's shape or is one row [cols] broadcast over a's rows (bias).
  virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // In place on x: [n_tokens, n_heads * head_dim]; inv_freq: [head_dim / 2] F32.
  virtual void rope(Tensor& x, const Tensor& inv_freq, const RopeParams& params) = 0;
  // out[i] = row ids[i] of table (any supported dtype, dequantised to F32); ids: I32 [n].
  virtual void embedding(const Tensor& table, const Tensor& ids, Tensor& out) = 0;

  // --- attention ---
  // Writes rows [pos0, pos0 + n) of cache (F32 or F16) from src: [n, cache.cols()] F32.
  virtual void kv_store(const Tensor& src, Tensor& cache, int pos0) = 0;
  // The spec's primitives for one query token at position pos0 (n_tokens must be 1):
  // scores: [n_heads, pos0 + 1] = scale * q . k over the visible keys (-inf outside a window).
  virtual void attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                const AttentionParams& params) = 0;
  // out: [n_heads * head_dim] = sum over positions of scores[h, p] * v[p] (after softmax).
  virtual void weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                            const AttentionParams& params) = 0;
  // Fused causal attention (decode and prefill), see AttentionParams.
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                         const AttentionParams& params) = 0;

  // --- the spec's conveniences over host vectors (upload, run, download) ---
  std::vector<float> matmul_vec(const Tensor& w, std::span<const float> x);
  void softmax(std::span<float> x);
  void rmsnorm(std::span<float> x, std::span<const float> weight, float eps);
  Tensor to_device_1d(std::span<const float> values);
  Tensor to_device_2d(std::span<const float> values, int64_t rows, int64_t cols);
  std::vector<float> to_host_f32(const Tensor& tensor);
};

// Picks and constructs a backend. Throws Error saying why when an explicitly requested backend
// is not built or has no device; Auto picks Metal on Apple GPUs, then CUDA, then the CPU.
std::unique_ptr<Backend> init_backend(BackendPreference pref, const BackendOptions& options = {});
// Also accepts "metal-emulated" (the Metal backend over the CPU emulation of Metal; testing only).
std::unique_ptr<Backend> init_backend(std::string_view name, const BackendOptions& options = {});
std::vector<BackendInfo> discover_backends();
BackendPreference parse_backend_preference(std::string_view name);  // "auto", "cpu", ...

}  // namespace torchless
