#pragma once
// The Llama-family Transformer, written once against the Backend API and driven by
// ModelConfig switches (GQA, tied embeddings, q/k/v bias, q/k norm, sliding window, RoPE
// layout and scaling). It reads like the math: embedding -> n_layers x (attention,
// feed_forward) -> final norm -> output head. A batch of tokens (prompt prefill) goes through
// Backend::matmul, a single token (decode) through Backend::matmul_vec.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/formats/model_config.h"
#include "torchless/formats/model_loader.h"
#include "torchless/model/kv_cache.h"
#include "torchless/model/paged_kv_cache.h"
#include "torchless/model/tensor_parallel.h"

namespace torchless {

// Which logits forward() computes: only the last token's (generation) or every token's
// (the logits command, perplexity). Last skips the vocabulary projection of the other rows.
enum class LogitsMode { Last, All };

// Prompts are processed in batches of at most this many tokens, bounding the activation memory
// (the feed-forward buffers are [batch, n_ff]) whatever the prompt length.
inline constexpr int kMaxBatchTokens = 512;

// A forward pass over tokens of many sequences (continuous batching, docs/batching.md): token i
// is tokens[i] of sequence sequences[i] at position positions[i]; block_tables[s] lists the
// PagedKvCache blocks of sequence s in position order, covering every position of its tokens.
// Positions before a token's own, in its sequence, must already be in the cache or come
// earlier in this batch. Tokens of one sequence at consecutive positions should be adjacent
// (each run is one RoPE call). logit_rows: the batch rows whose logits come back, in order.
struct TokenBatch {
  std::span<const int32_t> tokens;
  std::span<const int32_t> sequences;
  std::span<const int32_t> positions;
  std::span<const std::vector<int32_t>> block_tables;
  std::span<const int32_t> logit_rows;
};

class TensorParallelGroup;

class Transformer {
 public:
  // Takes the loaded model (its mapped files back the weights) and makes every weight usable by
  // `backend` (zero-copy on the CPU). The backend must outlive the Transformer. With
  // tp.size > 1 the model is split over a tensor-parallel group whose rank 0 runs on `backend`
  // (tensor_parallel.h, docs/multi-gpu.md); forward() then runs every rank.
  Transformer(LoadedModel model, Backend& backend, const TensorParallelOptions& tp = {});
  // One rank of a group (TensorParallelGroup makes these): its slice of every matrix; config()
  // then has the rank's heads and feed-forward width.
  Transformer(LoadedModel model, Backend& backend, TensorParallelRank rank);
  ~Transformer();

  // What a Transformer over `model` keeps on the backend, for the load-time memory check
  // before the weights are uploaded: the weights, a KV cache of n_ctx positions of kv_dtype,
  // and scratch (the activations of the largest prompt batch and of decode, and the logits).
  // Split over tensor_parallel ranks, what each keeps (weights and cache divided evenly).
  static MemoryPlan memory_plan(const LoadedModel& model, int n_ctx, DType kv_dtype,
                                int tensor_parallel = 1);

  const ModelConfig& config() const { return model_.config; }
  const LoadedModel& model() const { return model_; }
  Backend& backend() const { return backend_; }
  const std::vector<float>& rope_inv_freq() const { return inv_freq_host_; }
  // The ranks the model is split over (1: not split).
  int tensor_parallel() const;
  // A KV cache for forward(): on the backend, or, split, one slice per rank.
  std::unique_ptr<KvCache> new_kv_cache(int n_ctx, DType dtype);
  // A paged KV cache for forward_batch(): on the backend, or, split, pools of each rank's KV
  // heads under one that keeps the blocks.
  std::unique_ptr<PagedKvCache> new_paged_kv_cache(int n_blocks, int block_size, DType dtype);

  // Runs `tokens` at positions [pos0, pos0 + n) with the keys and values of positions
  // [0, pos0) from `cache`, writes theirs into it, and returns the logits on the host:
  // [n_vocab] for LogitsMode::Last, [n, n_vocab] row-major for All. The span stays valid
  // until the next call. Throws Error when the tokens do not fit the cache or an id is not in
  // the vocabulary.
  std::span<const float> forward(std::span<const int32_t> tokens, int pos0, KvCache& cache,
                                 LogitsMode mode = LogitsMode::Last);

  // Runs a TokenBatch over the paged cache, writing each token's keys and values into its
  // sequence's blocks, and returns [logit_rows.size(), n_vocab] row-major on the host (valid
  // until the next call). A token's logits are bit for bit the same whatever else is in the
  // batch where the backend's kernels keep one reduction order per output (docs/batching.md).
  // Split over ranks, `cache` must come from new_paged_kv_cache(); every rank runs the batch.
  std::span<const float> forward_batch(const TokenBatch& batch, PagedKvCache& cache);

 private:
  struct LayerWeights {
    Tensor attn_norm, wq, wk, wv, wo;
    Tensor bq, bk, bv;      // Qwen2 (empty otherwise)
    Tensor q_norm, k_norm;  // Qwen3 (empty otherwise)
    Tensor ffn_norm, w_gate, w_up, w_down;
  };
  // Activation buffers for up to `capacity` tokens; views of n rows are taken per call, so the
  // decode step (n = 1, its own preallocated set) allocates nothing.
  struct Activations {
    int capacity = 0;
    Tensor ids;       // I32 [n]
    Tensor x;         // residual stream [n, n_embd]
    Tensor xb;        // normalised input of a block [n, n_embd]
    Tensor q;         // [n, n_heads * head_dim]
    Tensor k, v;      // [n, n_kv_heads * head_dim]
    Tensor att;       // attention output [n, n_heads * head_dim]
    Tensor proj;      // block output before the residual add [n, n_embd]
    Tensor gate, up;  // [n, n_ff]
    Activations rows(int n) const;
  };
  // One activation buffer: its member, dtype and elements per token (0: a vector [n]).
  // allocate_activations and memory_plan both read this list, so they cannot disagree.
  struct ActivationBuffer {
    Tensor Activations::*member;
    DType dtype;
    int64_t width;
  };
  static std::vector<ActivationBuffer> activation_buffers(const ModelConfig& c);
  static uint64_t activation_bytes(const ModelConfig& c, int capacity);

  void check_shape() const;
  void load();
  // Lets the backend wrap each mapped model file once before the weights are uploaded.
  void map_weight_files();
  void load_weights();
  void load_vocabulary();
  // rows x cols (size): the shape here, the `slice` of the file's tensor when split. Used only by
  // matmuls unless `plain` (the embedding table): the backend may then keep it in its own layout.
  Tensor upload_matrix(const std::string& name, int64_t rows, int64_t cols, Slice slice = {},
                       bool plain = false);
  Tensor upload_vector(const std::string& name, int64_t size, Slice slice = {});
  // This rank's slice along `split` (its heads, its feed-forward rows, its vocabulary).
  Slice own(Split split) const { return {split, tp_.rank, tp_.size}; }
  Tensor upload_view(const std::string& name, const HostTensorView& view);
  // Tensor parallelism: the token ids of this rank's vocabulary slice (others: its zero row),
  // the all-reduce that joins the ranks' partial sums, and the ranks' logits.
  void upload_ids(std::span<const int32_t> tokens, Tensor& ids);
  void reduce(Tensor& partial);
  Tensor gather_logits(const Tensor& local);
  Activations allocate_activations(int capacity);
  Activations& activations_for(int n);

  // Index tensors of a paged forward pass, grown to the largest batch seen.
  struct PagedIndex {
    Tensor tokens;    // I32 [capacity, 2]: (sequence, position)
    Tensor slots;     // I32 [capacity]: pool row of each token
    Tensor tables;    // I32, flat; viewed as [n_sequences, max_blocks]
    Tensor rows;      // I32 [capacity]: logit rows
    Tensor gathered;  // F32 [capacity, n_embd]: the rows whose logits are asked for
    Tensor logits;    // F32 [capacity, n_vocab]
    int capacity = 0;
    int64_t table_capacity = 0;
  };
  struct PagedViews {
    Tensor tokens, slots, tables, rows, gathered, logits;
  };

  void project_qkv(const LayerWeights& w, Activations& a);
  void attention(const LayerWeights& w, Activations& a, KvCache& cache, int layer, int pos0);
  void paged_attention(const LayerWeights& w, Activations& a, PagedKvCache& cache, int layer,
                       const TokenBatch& batch, const PagedViews& views);
  PagedViews upload_paged_index(const TokenBatch& batch, const PagedKvCache& cache);
  void check_batch(const TokenBatch& batch, const PagedKvCache& cache) const;
  void feed_forward(const LayerWeights& w, Activations& a);
  // The layers over tokens at pos0.. (the caller marks the cache filled once they ran).
  void run_layers(std::span<const int32_t> tokens, int pos0, KvCache& cache, Activations& a);
  std::span<const float> decode(std::span<const int32_t> token, int pos0, KvCache& cache);
  void output_last(Activations& a, std::span<float> out);
  void last_logits(Activations& a);  // into last_logits_, on the device
  void output_all(Activations& a, std::span<float> out);
  // Logits [n, vocab_rows_] of this rank into out [n, n_vocab] on the host (split: gathered).
  void logits_to_host(const Tensor& logits, std::span<float> out);
  void rmsnorm(const Tensor& x, const Tensor& weight, Tensor& out);
  void linear(const Tensor& w, const Tensor& x, Tensor& y, const Tensor& bias = {});
  // One weight matrix of linear_group, its output and bias (empty: none).
  struct LinearTarget {
    const Tensor* w = nullptr;
    Tensor* y = nullptr;
    const Tensor* bias = nullptr;
  };
  static constexpr size_t kMaxLinearGroup = 3;
  // linear() of up to kMaxLinearGroup weights that read the same x (q/k/v, gate/up), as one
  // backend op (Backend::matmul_group).
  void linear_group(const Tensor& x, std::span<const LinearTarget> targets);
  void check_tokens(std::span<const int32_t> tokens, int pos0, const KvCache& cache) const;

  LoadedModel model_;
  Backend& backend_;
  TensorParallelRank tp_;                       // {0, 1, null}: the whole model here
  Slice kv_rows_;                               // this rank's rows of Wk and Wv (kv_slice)
  int64_t vocab_rows_ = 0;                      // rows of the output head here: n_vocab / tp_.size
  std::unique_ptr<TensorParallelGroup> group_;  // the ranks, when this one holds a split model
  Tensor gathered_;                             // [size * rows, vocab_rows_]: every rank's logits
  std::vector<float> gathered_host_;
  std::vector<int32_t> local_ids_;
  Tensor token_embd_, output_norm_, output_;
  std::vector<LayerWeights> layers_;
  std::vector<float> inv_freq_host_;
  Tensor inv_freq_;
  Activations decode_;  // n = 1
  Activations batch_;   // grown to the largest batch seen
  Tensor last_logits_;  // [1, n_vocab]
  Tensor all_logits_;   // [batch, n_vocab], allocated on the first LogitsMode::All call
  std::vector<float> logits_host_;
  PagedIndex paged_;
  std::vector<int32_t> index_host_;  // staging of the index tensors
};

}  // namespace torchless
