// The Transformer's forward pass over a batch of tokens from many sequences and a paged KV
// cache (TokenBatch): the layers are those of forward(), except that RoPE runs per run of
// consecutive positions of one sequence, keys and values go to each token's own block
// (paged_kv_store) and attention reads each token's own sequence (paged_attention). Only the
// rows asked for reach the output head: they are gathered with the embedding op (a row copy).
// A rank of a split model runs the same batch over its heads and pools, with the all-reduces
// and the logits gather of forward() (TensorParallelGroup::forward_batch runs every rank).
#include <algorithm>
#include <cmath>

#include "torchless/core/error.h"
#include "torchless/model/tensor_parallel_group.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

// The first `count` elements of a 1-D tensor, as a tensor of `shape`.
Tensor prefix_view(const Tensor& t, int64_t count, const Shape& shape) {
  return t.reshape(Shape{t.numel(), 1}).slice_rows(0, count).reshape(shape);
}

}  // namespace

void Transformer::check_batch(const TokenBatch& b, const PagedKvCache& cache) const {
  const size_t n = b.tokens.size();
  if (n == 0) fail("forward_batch needs at least one token");
  if (b.sequences.size() != n || b.positions.size() != n) {
    fail("forward_batch: {} tokens with {} sequence ids and {} positions", n, b.sequences.size(),
         b.positions.size());
  }
  const int bs = cache.block_size();
  for (size_t i = 0; i < n; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= model_.config.n_vocab) {
      fail("token {} at index {} is outside the vocabulary of {}", b.tokens[i], i,
           model_.config.n_vocab);
    }
    const int32_t s = b.sequences[i];
    if (s < 0 || static_cast<size_t>(s) >= b.block_tables.size()) {
      fail("forward_batch: token {} names sequence {} of {}", i, s, b.block_tables.size());
    }
    const int32_t pos = b.positions[i];
    if (pos < 0 || static_cast<size_t>(pos / bs) >= b.block_tables[static_cast<size_t>(s)].size()) {
      fail("forward_batch: position {} of sequence {} has no KV block", pos, s);
    }
  }
  for (const int32_t row : b.logit_rows) {
    if (row < 0 || static_cast<size_t>(row) >= n) {
      fail("forward_batch: logit row {} outside the batch of {}", row, n);
    }
  }
}

Transformer::PagedViews Transformer::upload_paged_index(const TokenBatch& b,
                                                        const PagedKvCache& cache) {
  const int n = static_cast<int>(b.tokens.size());
  const int k = static_cast<int>(b.logit_rows.size());
  size_t max_blocks = 1;
  for (const auto& table : b.block_tables) max_blocks = std::max(max_blocks, table.size());
  const auto n_seqs = static_cast<int64_t>(b.block_tables.size());
  const int64_t table_size = n_seqs * static_cast<int64_t>(max_blocks);
  if (paged_.capacity < n) {
    paged_.capacity = std::max(n, paged_.capacity * 2);
    const int64_t cap = paged_.capacity;
    paged_.tokens = backend_.alloc(Shape{cap, 2}, DType::I32);
    paged_.slots = backend_.alloc(Shape{cap}, DType::I32);
    paged_.rows = backend_.alloc(Shape{cap}, DType::I32);
    paged_.gathered = backend_.alloc(Shape{cap, model_.config.n_embd}, DType::F32);
    paged_.logits = backend_.alloc(Shape{cap, vocab_rows_}, DType::F32);
  }
  if (paged_.table_capacity < table_size) {
    paged_.table_capacity = std::max(table_size, paged_.table_capacity * 2);
    paged_.tables = backend_.alloc(Shape{paged_.table_capacity}, DType::I32);
  }
  PagedViews v;
  v.tokens = paged_.tokens.slice_rows(0, n);
  v.slots = prefix_view(paged_.slots, n, Shape{n});
  v.tables =
      prefix_view(paged_.tables, table_size, Shape{n_seqs, static_cast<int64_t>(max_blocks)});
  const int bs = cache.block_size();
  index_host_.resize(2 * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto row = 2 * static_cast<size_t>(i);
    index_host_[row] = b.sequences[static_cast<size_t>(i)];
    index_host_[row + 1] = b.positions[static_cast<size_t>(i)];
  }
  backend_.upload(std::as_bytes(std::span(index_host_)), v.tokens);
  for (int i = 0; i < n; ++i) {
    const int32_t pos = b.positions[static_cast<size_t>(i)];
    const auto& table = b.block_tables[static_cast<size_t>(b.sequences[static_cast<size_t>(i)])];
    index_host_[static_cast<size_t>(i)] = table[static_cast<size_t>(pos / bs)] * bs + pos % bs;
  }
  backend_.upload(std::as_bytes(std::span(index_host_).first(static_cast<size_t>(n))), v.slots);
  index_host_.assign(static_cast<size_t>(table_size), 0);
  for (size_t s = 0; s < b.block_tables.size(); ++s) {
    std::copy(b.block_tables[s].begin(), b.block_tables[s].end(),
              index_host_.begin() + static_cast<ptrdiff_t>(s * max_blocks));
  }
  backend_.upload(std::as_bytes(std::span(index_host_)), v.tables);
  if (k > 0) {
    v.rows = prefix_view(paged_.rows, k, Shape{k});
    backend_.upload(std::as_bytes(b.logit_rows), v.rows);
    v.gathered = paged_.gathered.slice_rows(0, k);
    v.logits = paged_.logits.slice_rows(0, k);
  }
  return v;
}

std::span<const float> Transformer::forward_batch(const TokenBatch& b, PagedKvCache& cache) {
  check_batch(b, cache);
  if (group_) return group_->forward_batch(b, cache);
  const int n = static_cast<int>(b.tokens.size());
  const PagedViews views = upload_paged_index(b, cache);
  Activations& storage = activations_for(n);
  Activations a = n == storage.capacity ? storage : storage.rows(n);
  upload_ids(b.tokens, a.ids);
  backend_.embedding(token_embd_, a.ids, a.x);
  reduce(a.x);
  for (int layer = 0; layer < model_.config.n_layers; ++layer) {
    const LayerWeights& w = layers_[static_cast<size_t>(layer)];
    paged_attention(w, a, cache, layer, b, views);
    feed_forward(w, a);
  }
  const size_t k = b.logit_rows.size();
  logits_host_.resize(k * static_cast<size_t>(model_.config.n_vocab));
  if (k == 0) {
    backend_.synchronize();
    return logits_host_;
  }
  Tensor gathered = views.gathered;
  Tensor logits = views.logits;
  backend_.embedding(a.x, views.rows, gathered);
  rmsnorm(gathered, output_norm_, gathered);
  linear(output_, gathered, logits);
  logits_to_host(logits, logits_host_);
  return logits_host_;
}

void Transformer::paged_attention(const LayerWeights& w, Activations& a, PagedKvCache& cache,
                                  int layer, const TokenBatch& b, const PagedViews& views) {
  const ModelConfig& c = model_.config;
  const int n = static_cast<int>(a.x.rows());
  project_qkv(w, a);
  // RoPE per run of consecutive positions of one sequence: its parameters take one pos0.
  for (int first = 0; first < n;) {
    int end = first + 1;
    while (end < n &&
           b.sequences[static_cast<size_t>(end)] == b.sequences[static_cast<size_t>(first)] &&
           b.positions[static_cast<size_t>(end)] == b.positions[static_cast<size_t>(end - 1)] + 1) {
      ++end;
    }
    const int pos0 = b.positions[static_cast<size_t>(first)];
    Tensor q_run = a.q.slice_rows(first, end - first);
    Tensor k_run = a.k.slice_rows(first, end - first);
    backend_.rope(q_run, inv_freq_, RopeParams{c.n_heads, c.head_dim, pos0, c.rope_neox});
    backend_.rope(k_run, inv_freq_, RopeParams{c.n_kv_heads, c.head_dim, pos0, c.rope_neox});
    first = end;
  }
  backend_.paged_kv_store(a.k, cache.keys(layer), views.slots);
  backend_.paged_kv_store(a.v, cache.values(layer), views.slots);

  PagedAttentionParams params;
  params.n_tokens = n;
  params.n_heads = c.n_heads;
  params.n_kv_heads = c.n_kv_heads;
  params.head_dim = c.head_dim;
  params.window = c.sliding_window;
  params.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  params.block_size = cache.block_size();
  backend_.paged_attention(a.q, cache.keys(layer), cache.values(layer), views.tokens, views.tables,
                           a.att, params);
  linear(w.wo, a.att, a.proj);
  reduce(a.proj);
  backend_.add(a.x, a.proj, a.x);
}

}  // namespace torchless
