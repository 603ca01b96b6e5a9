// Per-token cost of a Llama-shaped decode step on the Metal backend: command buffers,
// dispatches, barriers and weight bytes read, counted by the emulated device. The layer is
// written here with the same op sequence as the Transformer's decode step, so the counts
// document the design: one command buffer per token, each weight byte read once.
// The 1B shape (2048 hidden, 8192 FFN, 16 layers, 32/8 heads, 32000 vocab, Q4_0) runs only with
// TORCHLESS_METAL_1B_COUNTS=1 (slow in the emulator); CI runs the same structure at small size.
#include <cstdlib>

#include "metal_test_support.h"

namespace torchless::metal_test {
namespace {

struct Shape1B {
  int64_t dim, ffn, layers, heads, kv_heads, vocab;
  DType dtype;
};

struct LayerWeights {
  Tensor attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};

Tensor random_weight(MetalBackend& backend, int64_t rows, int64_t cols, DType dtype,
                     uint32_t seed) {
  const auto values = random_floats(static_cast<size_t>(rows * cols), seed, 0.05f);
  return upload_bytes(backend, encode(values, rows, cols, dtype), Shape{rows, cols}, dtype);
}

struct DecodeResult {
  metal::MetalBackendStats stats;
  metal::EmulatedMetalCounters counters;
  uint64_t weight_bytes = 0;  // every weight tensor once, embedding as one row
};

DecodeResult decode_one_token(const Shape1B& s, int pos) {
  auto backend = make_backend(32);
  const int64_t head_dim = s.dim / s.heads;
  const int64_t kv_dim = s.kv_heads * head_dim;
  // One set of layer weights shared by every layer: the counts are per dispatch, and this
  // keeps the 1B run's memory small.
  LayerWeights l;
  l.attn_norm = upload_f32(*backend, random_floats(s.dim, 1), Shape{s.dim});
  l.ffn_norm = upload_f32(*backend, random_floats(s.dim, 2), Shape{s.dim});
  l.wq = random_weight(*backend, s.dim, s.dim, s.dtype, 3);
  l.wk = random_weight(*backend, kv_dim, s.dim, s.dtype, 4);
  l.wv = random_weight(*backend, kv_dim, s.dim, s.dtype, 5);
  l.wo = random_weight(*backend, s.dim, s.dim, s.dtype, 6);
  l.w_gate = random_weight(*backend, s.ffn, s.dim, s.dtype, 7);
  l.w_up = random_weight(*backend, s.ffn, s.dim, s.dtype, 8);
  l.w_down = random_weight(*backend, s.dim, s.ffn, s.dtype, 9);
  const Tensor embed = random_weight(*backend, s.vocab, s.dim, s.dtype, 10);
  const Tensor out_norm = upload_f32(*backend, random_floats(s.dim, 11), Shape{s.dim});
  const Tensor lm_head = random_weight(*backend, s.vocab, s.dim, s.dtype, 12);
  std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i)
    inv_freq[i] = std::pow(10000.0f, -2.0f * i / head_dim);
  const Tensor freqs = upload_f32(*backend, inv_freq, Shape{head_dim / 2});
  std::vector<Tensor> k_cache, v_cache;
  for (int64_t i = 0; i < s.layers; ++i) {
    k_cache.push_back(backend->alloc(Shape{pos + 1, kv_dim}, DType::F16));
    v_cache.push_back(backend->alloc(Shape{pos + 1, kv_dim}, DType::F16));
  }
  Tensor ids = backend->alloc(Shape{1}, DType::I32);
  Tensor x = backend->alloc(Shape{1, s.dim}, DType::F32);
  Tensor h = backend->alloc(Shape{1, s.dim}, DType::F32);
  Tensor q = backend->alloc(Shape{1, s.dim}, DType::F32);
  Tensor k = backend->alloc(Shape{1, kv_dim}, DType::F32);
  Tensor v = backend->alloc(Shape{1, kv_dim}, DType::F32);
  Tensor att = backend->alloc(Shape{1, s.dim}, DType::F32);
  Tensor gate = backend->alloc(Shape{1, s.ffn}, DType::F32);
  Tensor up = backend->alloc(Shape{1, s.ffn}, DType::F32);
  Tensor logits = backend->alloc(Shape{1, s.vocab}, DType::F32);
  backend->synchronize();
  const int32_t token = 7;
  backend->upload(std::as_bytes(std::span(&token, 1)), ids);

  const metal::MetalBackendStats before = backend->stats();
  const metal::EmulatedMetalCounters counters_before = emulated(*backend).counters();
  const AttentionParams ap{
      1, pos, int(s.heads), int(s.kv_heads), int(head_dim), 0, 1.0f / std::sqrt(float(head_dim))};
  const RopeParams rp{int(s.heads), int(head_dim), pos, false};
  const RopeParams rpk{int(s.kv_heads), int(head_dim), pos, false};
  backend->embedding(embed, ids, x);
  for (int64_t i = 0; i < s.layers; ++i) {
    backend->rmsnorm(x, l.attn_norm, h, 1e-5f);
    backend->matmul_vec(l.wq, h, q);
    backend->matmul_vec(l.wk, h, k);
    backend->matmul_vec(l.wv, h, v);
    backend->rope(q, freqs, rp);
    backend->rope(k, freqs, rpk);
    backend->kv_store(k, k_cache[size_t(i)], pos);
    backend->kv_store(v, v_cache[size_t(i)], pos);
    backend->attention(q, k_cache[size_t(i)], v_cache[size_t(i)], att, ap);
    backend->matmul_vec(l.wo, att, h);
    backend->add(x, h, x);
    backend->rmsnorm(x, l.ffn_norm, h, 1e-5f);
    backend->matmul_vec(l.w_gate, h, gate);
    backend->matmul_vec(l.w_up, h, up);
    backend->fused_silu_mul(gate, up, gate);
    backend->matmul_vec(l.w_down, gate, h);
    backend->add(x, h, x);
  }
  backend->rmsnorm(x, out_norm, h, 1e-5f);
  backend->matmul_vec(lm_head, h, logits);
  const auto result = backend->to_host_f32(logits);
  for (float value : result) EXPECT_TRUE(std::isfinite(value));

  DecodeResult r;
  const metal::MetalBackendStats after = backend->stats();
  r.stats = {after.command_buffers - before.command_buffers, after.dispatches - before.dispatches,
             after.barriers - before.barriers, after.weight_bytes_read - before.weight_bytes_read,
             after.threads - before.threads};
  const metal::EmulatedMetalCounters& c = emulated(*backend).counters();
  r.counters.command_buffers = c.command_buffers - counters_before.command_buffers;
  r.counters.dispatches = c.dispatches - counters_before.dispatches;
  r.counters.barriers = c.barriers - counters_before.barriers;
  const uint64_t layer_bytes = l.wq.nbytes() + l.wk.nbytes() + l.wv.nbytes() + l.wo.nbytes() +
                               l.w_gate.nbytes() + l.w_up.nbytes() + l.w_down.nbytes();
  r.weight_bytes = layer_bytes * uint64_t(s.layers) + embed.row_bytes() + lm_head.nbytes();
  return r;
}

void check_counts(const Shape1B& s, int pos, bool split_attention) {
  const DecodeResult r = decode_one_token(s, pos);
  const uint64_t per_layer = 17 + (split_attention ? 1 : 0);
  EXPECT_EQ(r.stats.command_buffers, 1u);
  EXPECT_EQ(r.counters.command_buffers, 1u);
  EXPECT_EQ(r.stats.dispatches, 1 + per_layer * uint64_t(s.layers) + 2);
  EXPECT_EQ(r.counters.dispatches, r.stats.dispatches);
  EXPECT_EQ(r.counters.barriers, r.stats.barriers);
  // Each weight byte once (norm weights are F32 vectors, not counted as matmul weights).
  EXPECT_EQ(r.stats.weight_bytes_read, r.weight_bytes);
  // Within the recorder's default split limits, with room to spare.
  EXPECT_LT(r.stats.dispatches * 2, metal::RecorderLimits::kDefaultMaxDispatches);
  EXPECT_LT(r.stats.threads * 2, metal::RecorderLimits::kDefaultMaxThreads);
  std::printf(
      "decode token at pos %d: %llu command buffer(s), %llu dispatches, %llu barriers, "
      "%llu threads, %.1f MiB of weights read\n",
      pos, static_cast<unsigned long long>(r.stats.command_buffers),
      static_cast<unsigned long long>(r.stats.dispatches),
      static_cast<unsigned long long>(r.stats.barriers),
      static_cast<unsigned long long>(r.stats.threads),
      static_cast<double>(r.stats.weight_bytes_read) / (1 << 20));
}

TEST(MetalDecodeCountsTest, LlamaShapedDecodeIsOneCommandBuffer) {
  // The 1B structure (16 layers, 32 query / 8 KV heads) at a small width.
  const Shape1B small{256, 704, 16, 32, 8, 301, DType::Q4_0};
  check_counts(small, 5, false);
  check_counts(small, 200, true);  // long enough for split flash decoding + merge
}

TEST(MetalDecodeCountsTest, OneBillionShapeCounts) {
  if (!std::getenv("TORCHLESS_METAL_1B_COUNTS")) {
    GTEST_SKIP() << "set TORCHLESS_METAL_1B_COUNTS=1 to run the 1B shape (slow in the emulator)";
  }
  check_counts({2048, 8192, 16, 32, 8, 32000, DType::Q4_0}, 200, true);
}

}  // namespace
}  // namespace torchless::metal_test
