#pragma once
// The backend API: the one interface the model is written against. The CPU backend runs each
// op at once; GPU backends record ops in order and submit them at synchronize()/to_host(),
// so a forward pass is one submission. Activations are F32; weights may be any dtype the
// backend's supports_weight_dtype() accepts. Every op validates its operands once, here above
// the backends (op_checks.h), and throws Error; backends implement the protected <op>_impl.
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
  // Kernels whose reduction order per output never depends on the batch (docs/batching.md), so
  // a sequence's logits are the same alone or batched. The CPU always is; Metal then runs
  // batched matmuls through its mat-vec kernel instead of the faster simdgroup-matrix GEMM.
  bool batch_invariant = false;
  // Decode steps (Backend::begin_step) recorded and launched as one graph where the backend can
  // (CUDA). Off by default: CUDA re-captures every step (the position is a kernel argument), and
  // on an H100 that cost more than the launches it saves (1B Q4_0 tg128: 504 t/s with graphs,
  // 543 without; docs/cuda.md). TORCHLESS_CUDA_GRAPHS=1 or =0 overrides this for CUDA.
  bool step_graphs = false;
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

// Attention of a batch of tokens from different sequences over a paged KV cache (the
// continuous-batching engine, docs/batching.md). A pool holds the keys (or values) of every
// sequence of one layer: [n_blocks * block_size, n_kv_heads * head_dim], F32, F16 or Q8_0
// (supports_paged_kv_dtype), cut into blocks of block_size rows. tokens: I32 [n_tokens, 2],
// row i = (sequence s, position p); block_tables: I32 [n_sequences, max_blocks]; position j of
// sequence s lives in pool row block_tables[s, j / block_size] * block_size + j % block_size.
// Token i attends causally to its own sequence's positions [max(0, p - window + 1), p]
// (window > 0, else [0, p]), all of them already stored; GQA as in AttentionParams. Each token's
// result depends only on its own q and its sequence's keys and values, never on the other
// tokens of the batch.
struct PagedAttentionParams {
  int n_tokens = 1;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int window = 0;
  float scale = 1.0f;
  int block_size = 16;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual DeviceInfo device() const = 0;
  virtual bool supports_weight_dtype(DType dtype) const = 0;
  // KV cache types kv_store and the attention ops read here (every backend: F32 and F16).
  virtual bool supports_kv_dtype(DType dtype) const {
    return dtype == DType::F32 || dtype == DType::F16;
  }
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
  // to_device() for a weight matrix that only matmul, matmul_vec and to_host will read (never
  // embedding, slice_rows or reshape): a backend may store it in its own layout (the CPU
  // repacks Q4_K, cpu_repack.h). `mapped` says the view lies in a mapped model file, whose
  // pages a backend that copied the bytes may then release; never true for caller memory.
  virtual Tensor to_device_matrix(const HostTensorView& view, bool mapped) {
    (void)mapped;
    return to_device(view);
  }
  // Whether to_device_matrix copies a [rows, cols] matrix of `dtype` into its own layout
  // (so reading its mapped pages beforehand is wasted: engine/weight_prefetch.h).
  virtual bool repacks_matrix(DType dtype, int64_t cols) const {
    (void)dtype;
    (void)cols;
    return false;
  }
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

  // --- the ops ---
  // Each op checks its operands (shapes, dtypes, aliasing, weight dtypes the backend supports:
  // op_checks.h) and throws Error with the same message on every backend, then calls the
  // backend's <op>_impl, which may assume valid operands. Not virtual, so no backend can skip
  // the checks.

  // --- linear algebra; w: [rows, cols] of any supported dtype ---
  // y[rows] = W x[cols].
  void matmul_vec(const Tensor& w, const Tensor& x, Tensor& y);
  // y[n, rows] = x[n, cols] W^T: the batched form used for prompt processing.
  void matmul(const Tensor& w, const Tensor& x, Tensor& y);
  // One weight matrix and its output for matmul_group.
  struct MatmulTarget {
    const Tensor* w = nullptr;
    Tensor* y = nullptr;
  };
  // y_i = W_i x for several weights of x's width that read the same x (q/k/v, gate/up): each
  // pair as matmul_vec (x [cols]) or, when x has rows, as matmul (x [n, cols]), with the same
  // results, as one op: a backend may run them in one launch. The outputs must not overlap.
  void matmul_group(const Tensor& x, std::span<const MatmulTarget> targets);

  // --- elementwise and row-wise ops on F32 tensors ---
  // Outputs that may alias an input must be that input exactly (same bytes), never a part.
  // y = x / rms(x) * weight per row of cols() elements; y may alias x; weight: [cols].
  void rmsnorm(const Tensor& x, const Tensor& weight, Tensor& y, float eps);
  void softmax(Tensor& x);  // in place, per row, numerically stable
  void silu(Tensor& x);     // in place
  // out = silu(gate) * up (SwiGLU); out may alias gate or up.
  void fused_silu_mul(const Tensor& gate, const Tensor& up, Tensor& out);
  // out = a + b; b either has a's shape or is one row [cols] broadcast over a's rows (bias);
  // out may alias a or b.
  void add(const Tensor& a, const Tensor& b, Tensor& out);
  // In place on x: whole tokens of n_heads * head_dim; inv_freq: [head_dim / 2] F32.
  void rope(Tensor& x, const Tensor& inv_freq, const RopeParams& params);
  // out[i] = row ids[i] of table (any supported dtype, dequantised to F32); ids: I32 [n].
  // Ids the host can read without waiting are range-checked; others read as zero rows.
  void embedding(const Tensor& table, const Tensor& ids, Tensor& out);

  // --- attention ---
  // Writes rows [pos0, pos0 + n) of cache (F32 or F16) from src: n whole cache rows of F32.
  void kv_store(const Tensor& src, Tensor& cache, int pos0);
  // The spec's primitives for one query token at position pos0 (n_tokens must be 1):
  // scores: [n_heads, pos0 + 1] = scale * q . k over the visible keys (-inf outside a window).
  void attention_scores(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                        const AttentionParams& params);
  // out: [n_heads * head_dim] = sum over positions of scores[h, p] * v[p] (after softmax).
  void weighted_sum(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                    const AttentionParams& params);
  // Fused causal attention (decode and prefill), see AttentionParams; K and V caches share a
  // dtype, and out overlaps none of the inputs.
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, Tensor& out,
                 const AttentionParams& params);

  // --- paged attention (see PagedAttentionParams) ---
  // Whether paged_kv_store and paged_attention run here (the continuous-batching scheduler
  // needs them), and over pools of which type (F32 and F16 wherever they run; Q8_0, blocks of
  // 32 along each row with head_dim % 32 == 0, where the backend quantises and reads them).
  virtual bool supports_paged_attention() const { return false; }
  virtual bool supports_paged_kv_dtype(DType dtype) const {
    return supports_paged_attention() && (dtype == DType::F32 || dtype == DType::F16);
  }
  // Writes row i of src: [n, pool.cols()] F32 into pool row slots[i] (slots: I32 [n], distinct,
  // each < pool.rows()), as F32, rounded to F16 or quantised to Q8_0 blocks.
  void paged_kv_store(const Tensor& src, Tensor& pool, const Tensor& slots);
  // out: [n_tokens, n_heads * head_dim] from q of the same shape.
  void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                       const Tensor& tokens, const Tensor& block_tables, Tensor& out,
                       const PagedAttentionParams& params);

  // --- decode steps ---
  // Bracket the ops of one decode step (a single-token forward pass up to its logits) so that a
  // backend may record them and replay them as one submission: CUDA captures them into a graph
  // launched by end_step() (docs/cuda.md); other backends run each op as it comes. Between the
  // two the caller issues only ops and upload(); the ops' results are ready for to_host() after
  // end_step(). Ops of a step read the ids the caller uploaded, never waiting on the host, so
  // embedding checks no ids there (the caller checks them). cancel_step() abandons a step an
  // error interrupted (StepScope does it). begin_step() inside a step, or end_step() outside
  // one, throws Error.
  void begin_step();
  void end_step();
  void cancel_step() noexcept;
  bool in_step() const { return in_step_; }

  // --- the spec's conveniences over host vectors (upload, run, download) ---
  std::vector<float> matmul_vec_host(const Tensor& w, std::span<const float> x);
  void softmax_host(std::span<float> x);
  void rmsnorm_host(std::span<float> x, std::span<const float> weight, float eps);
  Tensor to_device_1d(std::span<const float> values);
  Tensor to_device_2d(std::span<const float> values, int64_t rows, int64_t cols);
  std::vector<float> to_host_f32(const Tensor& tensor);

 protected:
  // The backends' ops, called only with operands that passed op_checks.h: they assert what
  // they rely on and fail only on limits of their device (e.g. a kernel's index range).
  virtual void matmul_vec_impl(const Tensor& w, const Tensor& x, Tensor& y) = 0;
  virtual void matmul_impl(const Tensor& w, const Tensor& x, Tensor& y) = 0;
  // The default runs each target through matmul_vec_impl (x one-dimensional) or matmul_impl.
  virtual void matmul_group_impl(const Tensor& x, std::span<const MatmulTarget> targets);
  virtual void rmsnorm_impl(const Tensor& x, const Tensor& weight, Tensor& y, float eps) = 0;
  virtual void softmax_impl(Tensor& x) = 0;
  virtual void silu_impl(Tensor& x) = 0;
  virtual void fused_silu_mul_impl(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  virtual void add_impl(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  virtual void rope_impl(Tensor& x, const Tensor& inv_freq, const RopeParams& params) = 0;
  virtual void embedding_impl(const Tensor& table, const Tensor& ids, Tensor& out) = 0;
  virtual void kv_store_impl(const Tensor& src, Tensor& cache, int pos0) = 0;
  virtual void attention_scores_impl(const Tensor& q, const Tensor& k_cache, Tensor& scores,
                                     const AttentionParams& params) = 0;
  virtual void weighted_sum_impl(const Tensor& scores, const Tensor& v_cache, Tensor& out,
                                 const AttentionParams& params) = 0;
  virtual void attention_impl(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              Tensor& out, const AttentionParams& params) = 0;
  // Backends without paged attention (supports_paged_attention() false) keep these defaults,
  // which throw Error naming the backend; schedulers then run sequences one at a time.
  virtual void paged_kv_store_impl(const Tensor& src, Tensor& pool, const Tensor& slots);
  virtual void paged_attention_impl(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                    const Tensor& tokens, const Tensor& block_tables, Tensor& out,
                                    const PagedAttentionParams& params);
  // Whether the host may read t's bytes now, without waiting for device work: lets the checks
  // read values (token ids) where that is free. GPU backends say no while queued work writes t.
  virtual bool host_readable(const Tensor& t) const { return t.data() != nullptr; }
  // The step hooks (begin_step/end_step); the defaults run ops as they come.
  virtual void begin_step_impl() {}
  virtual void end_step_impl() {}
  virtual void cancel_step_impl() noexcept {}
  // The number of ops issued so far, counted before each op's _impl runs: a backend may reuse
  // what one op left (e.g. its output already quantised for the mat-vecs that read it) when no
  // other op has been issued since.
  uint64_t ops_issued() const { return ops_issued_; }

 private:
  uint64_t ops_issued_ = 0;
  bool in_step_ = false;
};

// A decode step that is cancelled unless finish() ends it (an op threw in between).
class StepScope {
 public:
  explicit StepScope(Backend& backend) : backend_(backend) { backend_.begin_step(); }
  ~StepScope() {
    if (open_) backend_.cancel_step();
  }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;
  void finish() {
    open_ = false;
    backend_.end_step();
  }

 private:
  Backend& backend_;
  bool open_ = true;
};

// Picks and constructs a backend. Throws Error saying why when an explicitly requested backend
// is not built or has no device; Auto picks Metal on Apple GPUs, then CUDA, then the CPU.
std::unique_ptr<Backend> init_backend(BackendPreference pref, const BackendOptions& options = {});
// Also accepts "metal-emulated" (the Metal backend over the CPU emulation of Metal; testing only).
std::unique_ptr<Backend> init_backend(std::string_view name, const BackendOptions& options = {});
std::vector<BackendInfo> discover_backends();
BackendPreference parse_backend_preference(std::string_view name);  // "auto", "cpu", ...

}  // namespace torchless
