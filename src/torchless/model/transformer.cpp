#include "torchless/model/transformer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "torchless/backends/op_checks.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/model/rope_frequencies.h"
#include "torchless/model/tensor_parallel_group.h"

namespace torchless {
namespace {

std::string layer_name(int layer, std::string_view suffix) {
  return fmt::format("blk.{}.{}", layer, suffix);
}

// Wk, Wv and their biases, which a rank holds by KV head (kv_slice).
bool is_kv_projection(std::string_view name) {
  for (const std::string_view suffix :
       {".attn_k.weight", ".attn_v.weight", ".attn_k.bias", ".attn_v.bias"}) {
    if (name.ends_with(suffix)) return true;
  }
  return false;
}

// A [1, n] activation seen as the [n] vector that matmul_vec takes.
Tensor as_vector(const Tensor& t) {
  return t.reshape(Shape{t.numel()});
}

std::vector<float> host_vector_f32(const std::string& name, const HostTensorView& view) {
  const auto n = static_cast<size_t>(view.shape.numel());
  std::vector<float> out(n);
  switch (view.dtype) {
    case DType::F32:
      std::memcpy(out.data(), view.data, n * sizeof(float));
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, view.data + 2 * i, sizeof bits);
        out[i] = view.dtype == DType::F16 ? fp16_to_fp32(bits) : bf16_to_fp32(bits);
      }
      break;
    default:
      fail("tensor {} has dtype {}; norm weights and biases must be f32, f16 or bf16", name,
           dtype_name(view.dtype));
  }
  return out;
}

}  // namespace

Transformer::Activations Transformer::Activations::rows(int n) const {
  Activations view;
  view.capacity = n;
  view.ids = ids.reshape(Shape{capacity, 1}).slice_rows(0, n).reshape(Shape{n});
  view.x = x.slice_rows(0, n);
  view.xb = xb.slice_rows(0, n);
  view.q = q.slice_rows(0, n);
  view.k = k.slice_rows(0, n);
  view.v = v.slice_rows(0, n);
  view.att = att.slice_rows(0, n);
  view.proj = proj.slice_rows(0, n);
  view.gate = gate.slice_rows(0, n);
  view.up = up.slice_rows(0, n);
  return view;
}

Transformer::Transformer(LoadedModel model, Backend& backend, const TensorParallelOptions& tp)
    : model_(std::move(model)), backend_(backend) {
  check_shape();
  if (tp.size != 1) {
    group_ = std::make_unique<TensorParallelGroup>(model_, backend_, tp);
    return;
  }
  load();
}

Transformer::Transformer(LoadedModel model, Backend& backend, TensorParallelRank rank)
    : model_(std::move(model)), backend_(backend), tp_(rank) {
  check_shape();
  check_tensor_parallel(model_, tp_.size);
  kv_rows_ = kv_slice(model_.config, tp_.rank, tp_.size);
  model_.config = shard_config(model_.config, tp_.size);
  load();
}

Transformer::~Transformer() = default;

int Transformer::tensor_parallel() const {
  return group_ ? group_->size() : 1;
}

std::unique_ptr<KvCache> Transformer::new_kv_cache(int n_ctx, DType dtype) {
  if (group_) return group_->new_kv_cache(n_ctx, dtype);
  return std::make_unique<KvCache>(backend_, model_.config, n_ctx, dtype);
}

std::unique_ptr<PagedKvCache> Transformer::new_paged_kv_cache(int n_blocks, int block_size,
                                                              DType dtype) {
  if (group_) return group_->new_paged_kv_cache(n_blocks, block_size, dtype);
  return std::make_unique<PagedKvCache>(backend_, model_.config, n_blocks, block_size, dtype);
}

void Transformer::check_shape() const {
  const ModelConfig& c = model_.config;
  if (c.n_layers <= 0 || c.n_embd <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.n_ff <= 0 || c.n_vocab <= 0) {
    fail(
        "model {} has an invalid shape (layers {}, embd {}, heads {}/{}, head_dim {}, ff {}, "
        "vocab {})",
        model_.path.string(), c.n_layers, c.n_embd, c.n_heads, c.n_kv_heads, c.head_dim, c.n_ff,
        c.n_vocab);
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail("model {}: {} query heads are not a multiple of {} KV heads", model_.path.string(),
         c.n_heads, c.n_kv_heads);
  }
}

void Transformer::load() {
  const ModelConfig& c = model_.config;
  vocab_rows_ = c.n_vocab / tp_.size;
  map_weight_files();
  load_weights();
  decode_ = allocate_activations(1);
  last_logits_ = backend_.alloc(Shape{1, vocab_rows_}, DType::F32);
  logits_host_.resize(static_cast<size_t>(c.n_vocab));
}

Tensor Transformer::upload_matrix(const std::string& name, int64_t rows, int64_t cols, Slice slice,
                                  bool plain) {
  HostTensorView view = model_.weights.get(name);
  if (slice.parts > 1 && slice.split != Split::None) {
    view = shard_matrix(name, view, slice.split, slice.part, slice.parts, model_.weights);
  }
  if (view.shape.rank() != 2 || view.shape[0] != rows || view.shape[1] != cols) {
    fail("tensor {} has shape {}, expected [{}, {}]", name, view.shape.str(), rows, cols);
  }
  if (plain) return upload_view(name, view);
  op_checks::require_weight_dtype(backend_, view.dtype, "load", fmt::format("tensor {}", name));
  // A shard is a copy in memory, not the mapping: only views inside a mapped region count.
  bool mapped = false;
  for (std::span<const std::byte> region : model_.weights.mapped_regions()) {
    mapped = mapped || (view.data >= region.data() &&
                        view.data + view.nbytes <= region.data() + region.size());
  }
  return backend_.to_device_matrix(view, mapped);
}

Tensor Transformer::upload_view(const std::string& name, const HostTensorView& view) {
  op_checks::require_weight_dtype(backend_, view.dtype, "load", fmt::format("tensor {}", name));
  return backend_.to_device(view);
}

Tensor Transformer::upload_vector(const std::string& name, int64_t size, Slice slice) {
  HostTensorView view = model_.weights.get(name);
  if (slice.parts > 1 && slice.split == Split::Rows) {
    view = shard_vector(name, view, slice.part, slice.parts);
  }
  if (view.shape.numel() != size || view.shape.cols() != size) {
    fail("tensor {} has shape {}, expected [{}]", name, view.shape.str(), size);
  }
  if (view.dtype == DType::F32) return backend_.to_device(view);
  return backend_.to_device_1d(host_vector_f32(name, view));
}

void Transformer::map_weight_files() {
  size_t largest = 0;
  for (const auto& [name, view] : model_.weights.all()) largest = std::max(largest, view.nbytes);
  for (std::span<const std::byte> region : model_.weights.mapped_regions()) {
    backend_.map_host_region(region, largest);
  }
}

void Transformer::load_weights() {
  const ModelConfig& c = model_.config;
  const int64_t q_width = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_width = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  load_vocabulary();
  output_norm_ = upload_vector("output_norm.weight", c.n_embd);

  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& w = layers_[static_cast<size_t>(i)];
    w.attn_norm = upload_vector(layer_name(i, "attn_norm.weight"), c.n_embd);
    // Split (tensor_parallel.h): heads by rows, Wo by its input columns; K and V the rows of
    // the KV heads this rank's query heads use.
    w.wq = upload_matrix(layer_name(i, "attn_q.weight"), q_width, c.n_embd, own(Split::Rows));
    w.wk = upload_matrix(layer_name(i, "attn_k.weight"), kv_width, c.n_embd, kv_rows_);
    w.wv = upload_matrix(layer_name(i, "attn_v.weight"), kv_width, c.n_embd, kv_rows_);
    w.wo = upload_matrix(layer_name(i, "attn_output.weight"), c.n_embd, q_width, own(Split::Cols));
    if (c.qkv_bias) {
      w.bq = upload_vector(layer_name(i, "attn_q.bias"), q_width, own(Split::Rows));
      w.bk = upload_vector(layer_name(i, "attn_k.bias"), kv_width, kv_rows_);
      w.bv = upload_vector(layer_name(i, "attn_v.bias"), kv_width, kv_rows_);
    }
    if (c.qk_norm) {
      w.q_norm = upload_vector(layer_name(i, "attn_q_norm.weight"), c.head_dim);
      w.k_norm = upload_vector(layer_name(i, "attn_k_norm.weight"), c.head_dim);
    }
    w.ffn_norm = upload_vector(layer_name(i, "ffn_norm.weight"), c.n_embd);
    w.w_gate = upload_matrix(layer_name(i, "ffn_gate.weight"), c.n_ff, c.n_embd, own(Split::Rows));
    w.w_up = upload_matrix(layer_name(i, "ffn_up.weight"), c.n_ff, c.n_embd, own(Split::Rows));
    w.w_down = upload_matrix(layer_name(i, "ffn_down.weight"), c.n_embd, c.n_ff, own(Split::Cols));
  }

  std::optional<std::span<const float>> divisors;
  std::vector<float> divisor_values;
  if (const HostTensorView* freqs = model_.weights.find("rope_freqs.weight")) {
    divisor_values = host_vector_f32("rope_freqs.weight", *freqs);
    divisors = divisor_values;
  }
  inv_freq_host_ = rope_inverse_frequencies(c, divisors);
  inv_freq_ = backend_.to_device_1d(inv_freq_host_);
}

// The embedding table and the output head (the same tensor when tied); split, this rank's
// vocabulary rows, the table with a zero row after them (shard_embedding).
void Transformer::load_vocabulary() {
  const ModelConfig& c = model_.config;
  const std::string table = "token_embd.weight";
  if (tp_.size > 1) {
    const HostTensorView& full = model_.weights.get(table);
    if (full.shape.rank() != 2 || full.shape[0] != c.n_vocab || full.shape[1] != c.n_embd) {
      fail("tensor {} has shape {}, expected [{}, {}]", table, full.shape.str(), c.n_vocab,
           c.n_embd);
    }
    token_embd_ =
        upload_view(table, shard_embedding(table, full, tp_.rank, tp_.size, model_.weights));
  } else {
    // Plain: the embedding lookup reads rows of it (and the output head, when tied).
    token_embd_ = upload_matrix(table, c.n_vocab, c.n_embd, Slice{}, true);
  }
  // llama.cpp also falls back to the embedding when a file has no output head.
  const bool tied = c.tied_embeddings || !model_.weights.contains("output.weight");
  // Split, the table has a zero row after the rank's vocabulary, which the head leaves out.
  if (tied) {
    output_ = tp_.size > 1 ? token_embd_.slice_rows(0, vocab_rows_) : token_embd_;
  } else {
    output_ = upload_matrix("output.weight", vocab_rows_, c.n_embd, own(Split::Rows));
  }
}

std::vector<Transformer::ActivationBuffer> Transformer::activation_buffers(const ModelConfig& c) {
  const int64_t q_width = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_width = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  return {
      {&Activations::ids, DType::I32, 0},       {&Activations::x, DType::F32, c.n_embd},
      {&Activations::xb, DType::F32, c.n_embd}, {&Activations::q, DType::F32, q_width},
      {&Activations::k, DType::F32, kv_width},  {&Activations::v, DType::F32, kv_width},
      {&Activations::att, DType::F32, q_width}, {&Activations::proj, DType::F32, c.n_embd},
      {&Activations::gate, DType::F32, c.n_ff}, {&Activations::up, DType::F32, c.n_ff},
  };
}

uint64_t Transformer::activation_bytes(const ModelConfig& c, int capacity) {
  uint64_t bytes = 0;
  for (const ActivationBuffer& b : activation_buffers(c)) {
    bytes += dtype_row_bytes(b.dtype, std::max<int64_t>(b.width, 1));
  }
  return bytes * static_cast<uint64_t>(capacity);
}

Transformer::Activations Transformer::allocate_activations(int capacity) {
  const int64_t n = capacity;
  Activations a;
  a.capacity = capacity;
  for (const ActivationBuffer& b : activation_buffers(model_.config)) {
    a.*b.member = backend_.alloc(b.width == 0 ? Shape{n} : Shape{n, b.width}, b.dtype);
  }
  return a;
}

MemoryPlan Transformer::memory_plan(const LoadedModel& model, int n_ctx, DType kv_dtype,
                                    int tensor_parallel) {
  const ModelConfig& c = model.config;
  MemoryPlan plan;
  // Split, each rank keeps 1/n of the weights, except the K and V projections, of which ranks
  // sharing a KV head (n > n_kv_heads, kv_slice) each keep the head's rows.
  const int n = std::max(1, tensor_parallel);
  const auto parts = static_cast<uint64_t>(n);
  const auto kv_parts = static_cast<uint64_t>(std::min(n, c.n_kv_heads));
  for (const auto& [name, view] : model.weights.all()) {
    plan.weight_bytes += view.nbytes / (is_kv_projection(name) ? kv_parts : parts);
  }
  plan.kv_cache_bytes = KvCache::bytes_needed(shard_config(c, n), n_ctx, kv_dtype);
  // Prompts run in batches of at most kMaxBatchTokens (activations_for, forward); LogitsMode::All
  // keeps the logits of a whole batch, Last those of one token.
  const int batch = std::min(n_ctx, kMaxBatchTokens);
  const uint64_t logits_row = static_cast<uint64_t>(c.n_vocab) * sizeof(float);
  plan.scratch_bytes = activation_bytes(c, batch) + activation_bytes(c, 1) +
                       (static_cast<uint64_t>(batch) + 1) * logits_row;
  return plan;
}

Transformer::Activations& Transformer::activations_for(int n) {
  if (n == 1) return decode_;
  if (batch_.capacity < n) batch_ = allocate_activations(n);
  return batch_;
}

void Transformer::check_tokens(std::span<const int32_t> tokens, int pos0,
                               const KvCache& cache) const {
  if (tokens.empty()) fail("forward pass needs at least one token");
  if (pos0 < 0 || pos0 > cache.size()) {
    fail("position {} does not continue the {} tokens in the KV cache", pos0, cache.size());
  }
  const int64_t end = static_cast<int64_t>(pos0) + static_cast<int64_t>(tokens.size());
  if (end > cache.n_ctx()) {
    fail("{} tokens at position {} exceed the context length of {} (use --ctx to enlarge it)",
         tokens.size(), pos0, cache.n_ctx());
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= model_.config.n_vocab) {
      fail("token {} at index {} is outside the vocabulary of {}", tokens[i], i,
           model_.config.n_vocab);
    }
  }
}

std::span<const float> Transformer::forward(std::span<const int32_t> tokens, int pos0,
                                            KvCache& cache, LogitsMode mode) {
  check_tokens(tokens, pos0, cache);
  if (group_) return group_->forward(tokens, pos0, cache, mode);
  // A rank of a split model runs its collectives outside decode steps (not captured).
  if (tokens.size() == 1 && mode == LogitsMode::Last && tp_.comm == nullptr) {
    return decode(tokens, pos0, cache);
  }
  const size_t n_vocab = static_cast<size_t>(model_.config.n_vocab);
  logits_host_.resize(mode == LogitsMode::All ? tokens.size() * n_vocab : n_vocab);
  for (size_t first = 0; first < tokens.size(); first += kMaxBatchTokens) {
    const auto chunk =
        tokens.subspan(first, std::min<size_t>(kMaxBatchTokens, tokens.size() - first));
    const int n = static_cast<int>(chunk.size());
    Activations& storage = activations_for(n);
    Activations a = n == storage.capacity ? storage : storage.rows(n);
    run_layers(chunk, pos0 + static_cast<int>(first), cache, a);
    cache.mark_filled(pos0 + static_cast<int>(first), n);
    if (mode == LogitsMode::All) {
      output_all(a, std::span(logits_host_).subspan(first * n_vocab, chunk.size() * n_vocab));
    } else if (first + chunk.size() == tokens.size()) {
      output_last(a, logits_host_);
    }
  }
  return logits_host_;
}

void Transformer::run_layers(std::span<const int32_t> tokens, int pos0, KvCache& cache,
                             Activations& a) {
  upload_ids(tokens, a.ids);
  backend_.embedding(token_embd_, a.ids, a.x);
  reduce(a.x);
  for (int layer = 0; layer < model_.config.n_layers; ++layer) {
    const LayerWeights& w = layers_[static_cast<size_t>(layer)];
    attention(w, a, cache, layer, pos0);
    feed_forward(w, a);
  }
}

// One token, as one backend step (Backend::begin_step): every op from the id upload to the
// logits is recorded and, on CUDA, replayed as one graph launch; the logits are read after it.
std::span<const float> Transformer::decode(std::span<const int32_t> token, int pos0,
                                           KvCache& cache) {
  StepScope step(backend_);
  run_layers(token, pos0, cache, decode_);
  last_logits(decode_);
  step.finish();
  cache.mark_filled(pos0, 1);
  logits_host_.resize(static_cast<size_t>(model_.config.n_vocab));
  backend_.to_host(last_logits_, std::as_writable_bytes(std::span(logits_host_)));
  return logits_host_;
}

// x += Wo · Attention(RoPE(Wq·h), RoPE(Wk·h), Wv·h) with h = RMSNorm(x): keys and values of the
// new tokens are appended to the cache first, so attention reads all positions from there.
void Transformer::attention(const LayerWeights& w, Activations& a, KvCache& cache, int layer,
                            int pos0) {
  const ModelConfig& c = model_.config;
  const int n = static_cast<int>(a.x.rows());
  project_qkv(w, a);
  backend_.rope(a.q, inv_freq_, RopeParams{c.n_heads, c.head_dim, pos0, c.rope_neox});
  backend_.rope(a.k, inv_freq_, RopeParams{c.n_kv_heads, c.head_dim, pos0, c.rope_neox});
  backend_.kv_store(a.k, cache.keys(layer), pos0);
  backend_.kv_store(a.v, cache.values(layer), pos0);

  AttentionParams params;
  params.n_tokens = n;
  params.pos0 = pos0;
  params.n_heads = c.n_heads;
  params.n_kv_heads = c.n_kv_heads;
  params.head_dim = c.head_dim;
  params.window = c.sliding_window;
  params.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  backend_.attention(a.q, cache.keys(layer), cache.values(layer), a.att, params);

  linear(w.wo, a.att, a.proj);
  reduce(a.proj);
  backend_.add(a.x, a.proj, a.x);
}

// q, k, v = Wq·h, Wk·h, Wv·h (+ biases, q/k norms) with h = RMSNorm(x), before RoPE.
void Transformer::project_qkv(const LayerWeights& w, Activations& a) {
  const ModelConfig& c = model_.config;
  const int64_t n = a.x.rows();
  rmsnorm(a.x, w.attn_norm, a.xb);
  const std::array<LinearTarget, 3> qkv = {
      {{&w.wq, &a.q, &w.bq}, {&w.wk, &a.k, &w.bk}, {&w.wv, &a.v, &w.bv}}};
  linear_group(a.xb, qkv);
  if (c.qk_norm) {
    Tensor q_heads = a.q.reshape(Shape{n * c.n_heads, c.head_dim});
    Tensor k_heads = a.k.reshape(Shape{n * c.n_kv_heads, c.head_dim});
    rmsnorm(q_heads, w.q_norm, q_heads);
    rmsnorm(k_heads, w.k_norm, k_heads);
  }
}

// x += W_down · (SiLU(W_gate·h) ⊙ W_up·h) with h = RMSNorm(x): the SwiGLU MLP.
void Transformer::feed_forward(const LayerWeights& w, Activations& a) {
  rmsnorm(a.x, w.ffn_norm, a.xb);
  const Tensor none;
  const std::array<LinearTarget, 2> gate_up = {
      {{&w.w_gate, &a.gate, &none}, {&w.w_up, &a.up, &none}}};
  linear_group(a.xb, gate_up);
  backend_.fused_silu_mul(a.gate, a.up, a.gate);
  linear(w.w_down, a.gate, a.proj);
  reduce(a.proj);
  backend_.add(a.x, a.proj, a.x);
}

// logits = W_out · RMSNorm(x) of the last token only: generation needs no other row.
void Transformer::output_last(Activations& a, std::span<float> out) {
  last_logits(a);
  // One row: the ranks' slices in rank order are the row.
  backend_.to_host(gather_logits(last_logits_), std::as_writable_bytes(out));
}

void Transformer::last_logits(Activations& a) {
  Tensor x_last = a.x.slice_rows(a.x.rows() - 1, 1);
  Tensor xb_last = a.xb.slice_rows(0, 1);
  rmsnorm(x_last, output_norm_, xb_last);
  linear(output_, xb_last, last_logits_);
}

void Transformer::output_all(Activations& a, std::span<float> out) {
  const int64_t n = a.x.rows();
  if (all_logits_.empty() || all_logits_.rows() < n) {
    all_logits_ = backend_.alloc(Shape{std::max<int64_t>(n, a.capacity), vocab_rows_}, DType::F32);
  }
  Tensor logits = all_logits_.slice_rows(0, n);
  rmsnorm(a.x, output_norm_, a.xb);
  linear(output_, a.xb, logits);
  logits_to_host(logits, out);
}

void Transformer::logits_to_host(const Tensor& logits, std::span<float> out) {
  if (tp_.size == 1) {
    backend_.to_host(logits, std::as_writable_bytes(out));
    return;
  }
  // Gathered rank by rank, [size][n][vocab_rows]; the caller wants [n][size * vocab_rows].
  const int64_t n = logits.rows();
  const Tensor whole = gather_logits(logits);
  gathered_host_.resize(static_cast<size_t>(whole.numel()));
  backend_.to_host(whole, std::as_writable_bytes(std::span(gathered_host_)));
  const auto rows = static_cast<size_t>(vocab_rows_);
  for (size_t r = 0; r < static_cast<size_t>(tp_.size); ++r) {
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      std::copy_n(gathered_host_.begin() + static_cast<ptrdiff_t>((r * n + i) * rows), rows,
                  out.begin() + static_cast<ptrdiff_t>(i * rows * tp_.size + r * rows));
    }
  }
}

void Transformer::upload_ids(std::span<const int32_t> tokens, Tensor& ids) {
  if (tp_.size == 1) {
    backend_.upload(std::as_bytes(tokens), ids);
    return;
  }
  const int64_t first = vocab_rows_ * tp_.rank;
  local_ids_.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool here = tokens[i] >= first && tokens[i] < first + vocab_rows_;
    local_ids_[i] = static_cast<int32_t>(here ? tokens[i] - first : vocab_rows_);
  }
  backend_.upload(std::as_bytes(std::span(local_ids_)), ids);
}

void Transformer::reduce(Tensor& partial) {
  if (tp_.comm != nullptr) tp_.comm->all_reduce_sum(partial);
}

Tensor Transformer::gather_logits(const Tensor& local) {
  if (tp_.comm == nullptr) return local;
  const int64_t rows = local.rows() * tp_.size;
  if (gathered_.empty() || gathered_.rows() < rows) {
    gathered_ = backend_.alloc(Shape{rows, vocab_rows_}, DType::F32);
  }
  Tensor whole = gathered_.slice_rows(0, rows);
  tp_.comm->all_gather(local, whole);
  return whole;
}

void Transformer::rmsnorm(const Tensor& x, const Tensor& weight, Tensor& out) {
  backend_.rmsnorm(x, weight, out, model_.config.norm_eps);
}

// y = x Wᵀ (+ bias): one token goes through the mat-vec kernel, a batch through matmul.
void Transformer::linear(const Tensor& w, const Tensor& x, Tensor& y, const Tensor& bias) {
  if (x.rows() == 1) {
    Tensor y_vec = as_vector(y);
    backend_.matmul_vec(w, as_vector(x), y_vec);
  } else {
    backend_.matmul(w, x, y);
  }
  if (!bias.empty()) backend_.add(y, bias, y);
}

void Transformer::linear_group(const Tensor& x, std::span<const LinearTarget> targets) {
  if (targets.size() > kMaxLinearGroup) {
    fail("linear_group: {} targets, at most {}", targets.size(), kMaxLinearGroup);
  }
  const bool one = x.rows() == 1;
  std::array<Tensor, kMaxLinearGroup> ys;
  std::array<Backend::MatmulTarget, kMaxLinearGroup> group;
  for (size_t i = 0; i < targets.size(); ++i) {
    ys[i] = one ? as_vector(*targets[i].y) : *targets[i].y;
    group[i] = {targets[i].w, &ys[i]};
  }
  backend_.matmul_group(one ? as_vector(x) : x, std::span(group).first(targets.size()));
  for (const LinearTarget& t : targets) {
    if (!t.bias->empty()) backend_.add(*t.y, *t.bias, *t.y);
  }
}

}  // namespace torchless
