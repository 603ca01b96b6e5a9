#include "torchless/formats/llama2c.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "formats/loader_test_util.h"
#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

using namespace torchless::test;
using ::testing::HasSubstr;

// stories260K's hyperparameters as models/README.md states them.
constexpr int kDim = 64, kHidden = 172, kLayers = 5, kHeads = 8, kKvHeads = 4, kVocab = 512,
              kSeqLen = 512;

void append(std::vector<std::byte>& out, const void* p, size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  out.insert(out.end(), b, b + n);
}
void append_i32(std::vector<std::byte>& out, int32_t v) {
  append(out, &v, 4);
}
void append_tensor(std::vector<std::byte>& out, const GgufFile& gguf, const std::string& name) {
  const GgufTensorInfo* t = gguf.find_tensor(name);
  ASSERT_NE(t, nullptr) << name;
  append(out, t->data, t->nbytes);
}
void append_layers(std::vector<std::byte>& out, const GgufFile& gguf, const std::string& suffix) {
  for (int l = 0; l < kLayers; ++l)
    append_tensor(out, gguf, "blk." + std::to_string(l) + "." + suffix);
}

// Assembles a llama2.c checkpoint from the GGUF's tensors, following run.c / export.py rather
// than the loader: `version` 0 = legacy, 1 = "ak42". An unshared classifier gets `wcls`.
std::vector<std::byte> make_checkpoint(const GgufFile& gguf, int version,
                                       const std::vector<float>* wcls) {
  std::vector<std::byte> out;
  const int32_t vocab = wcls && version == 0 ? -kVocab : kVocab;
  if (version == 1) {
    append_i32(out, 0x616b3432);
    append_i32(out, 1);
  }
  for (int32_t v : {kDim, kHidden, kLayers, kHeads, kKvHeads, vocab, kSeqLen}) append_i32(out, v);
  const auto matrices = [&] {
    for (const char* s :
         {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"}) {
      append_layers(out, gguf, s);
    }
  };
  const auto ffn = [&] {
    for (const char* s : {"ffn_gate.weight", "ffn_down.weight", "ffn_up.weight"})
      append_layers(out, gguf, s);
  };
  if (version == 1) {
    out.push_back(std::byte{wcls ? uint8_t{0} : uint8_t{1}});
    out.resize(256, std::byte{0});
    append_layers(out, gguf, "attn_norm.weight");
    append_layers(out, gguf, "ffn_norm.weight");
    append_tensor(out, gguf, "output_norm.weight");
    append_tensor(out, gguf, "token_embd.weight");
    matrices();
    ffn();
  } else {
    append_tensor(out, gguf, "token_embd.weight");
    append_layers(out, gguf, "attn_norm.weight");
    matrices();
    append_layers(out, gguf, "ffn_norm.weight");
    ffn();
    append_tensor(out, gguf, "output_norm.weight");
    const std::vector<float> freq_tail = random_floats(kSeqLen * (kDim / kHeads), 99);
    append(out, freq_tail.data(), freq_tail.size() * 4);
  }
  if (wcls) append(out, wcls->data(), wcls->size() * 4);
  return out;
}

void expect_tensors_match_gguf(const LoadedModel& m, const GgufFile& gguf) {
  for (const GgufTensorInfo& t : gguf.tensors()) {
    if (t.name == "output.weight") continue;  // checked by each test: shared or wcls
    const HostTensorView* v = m.weights.find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->shape, t.shape) << t.name;
    EXPECT_EQ(v->dtype, DType::F32);
    ASSERT_EQ(v->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(v->data, t.data, t.nbytes), 0) << t.name << " differs";
  }
}

TEST(Llama2c, Stories260KHasTheDocumentedConfig) {
  const LoadedModel m = load_llama2c_model(shared_path("models/stories260K.bin"));
  EXPECT_EQ(m.format, ModelFormat::Llama2c);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "stories260K");
  EXPECT_EQ(c.n_embd, kDim);
  EXPECT_EQ(c.n_ff, kHidden);
  EXPECT_EQ(c.n_layers, kLayers);
  EXPECT_EQ(c.n_heads, kHeads);
  EXPECT_EQ(c.n_kv_heads, kKvHeads);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_vocab, kVocab);
  EXPECT_EQ(c.n_ctx_train, kSeqLen);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FALSE(c.rope_neox);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(m.weights.contains("output.weight"));
  EXPECT_EQ(m.weights.all().size(), 2u + 9u * kLayers);
  EXPECT_EQ(m.weights.get("blk.4.ffn_down.weight").shape, (Shape{kDim, kHidden}));
  EXPECT_EQ(m.weights.get("blk.0.attn_k.weight").shape, (Shape{32, kDim}));
}

TEST(Llama2c, WeightsAreViewsIntoTheFile) {
  const auto path = shared_path("models/stories260K.bin");
  const LoadedModel m = load_llama2c_model(path);
  const std::vector<std::byte> file = read_bytes(path);
  const HostTensorView& embd = m.weights.get("token_embd.weight");
  EXPECT_EQ(std::memcmp(embd.data, file.data() + 28, embd.nbytes), 0);
  // The mapping is page-aligned, so the embedding sits 28 bytes after a page boundary.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(embd.data) % 4096, 28u);
}

// llama.cpp's converter copies the llama2.c weights unchanged, q/k rows included: both files
// use adjacent-pair RoPE, so there is no permutation between them (rope_neox false for both).
TEST(Llama2c, Stories260KEqualsTheGgufBitForBit) {
  const LoadedModel m = load_llama2c_model(shared_path("models/stories260K.bin"));
  const auto gguf = GgufFile::open(shared_path("models/stories260K.gguf"));
  expect_tensors_match_gguf(m, *gguf);
  // The GGUF stores the shared classifier as a separate identical copy.
  const GgufTensorInfo* out = gguf->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(std::memcmp(out->data, m.weights.get("token_embd.weight").data, out->nbytes), 0);
}

TEST(Llama2c, Version1AndUnsharedClassifierLoad) {
  const auto gguf = GgufFile::open(shared_path("models/stories260K.gguf"));
  TempDir dir;
  const std::vector<float> wcls = random_floats(kVocab * kDim, 7);
  for (int version : {0, 1}) {
    for (bool shared : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << "version " << version << (shared ? " shared" : " unshared"));
      const auto path =
          dir.path() / ("v" + std::to_string(version) + (shared ? "s" : "u") + ".bin");
      write_bytes(path, make_checkpoint(*gguf, version, shared ? nullptr : &wcls));
      const LoadedModel m = load_llama2c_model(path);
      EXPECT_EQ(m.config.tied_embeddings, shared);
      EXPECT_EQ(m.config.n_vocab, kVocab);
      expect_tensors_match_gguf(m, *gguf);
      if (!shared) {
        EXPECT_EQ(view_floats(m.weights.get("output.weight")), wcls);
      }
    }
  }
}

void expect_load_error(const fs::path& path, const std::string& needle) {
  try {
    load_llama2c_model(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

TEST(Llama2c, DamagedFilesAreRefused) {
  const std::vector<std::byte> good = read_bytes(shared_path("models/stories260K.bin"));
  TempDir dir;
  const auto path = dir.path() / "bad.bin";
  // The file minus the freq_cis tail is still complete (shared classifier), so cuts inside
  // the weights must fail and the exact cut after rms_final must load.
  const size_t tail_bytes = size_t{kSeqLen} * 8 / 2 * 2 * 4;
  for (size_t size : {size_t{0}, size_t{27}, size_t{28}, size_t{1000}, good.size() / 2,
                      good.size() - tail_bytes - 4, good.size() - 1}) {
    write_bytes(path, std::vector<std::byte>(good.begin(),
                                             good.begin() + static_cast<std::ptrdiff_t>(size)));
    expect_load_error(path, size < 28 ? "too short" : "bytes");
  }
  write_bytes(path, std::vector<std::byte>(good.begin(),
                                           good.end() - static_cast<std::ptrdiff_t>(tail_bytes)));
  EXPECT_NO_THROW(load_llama2c_model(path));

  std::vector<std::byte> longer = good;
  longer.resize(good.size() + 4);
  write_bytes(path, longer);
  expect_load_error(path, "needs");

  const auto with_header_field = [&](int field, int32_t value) {
    std::vector<std::byte> bad = good;
    std::memcpy(bad.data() + 4 * field, &value, 4);
    write_bytes(path, bad);
  };
  with_header_field(0, 0);
  expect_load_error(path, "implausible");
  with_header_field(1, -5);
  expect_load_error(path, "implausible");
  with_header_field(2, 1 << 30);
  expect_load_error(path, "implausible");
  with_header_field(4, 3);  // 8 heads cannot share 3 KV heads
  expect_load_error(path, "attention shape");
  with_header_field(3, 7);  // 64 is not a multiple of 7 heads
  expect_load_error(path, "attention shape");

  std::vector<std::byte> v2(300, std::byte{0});
  const int32_t magic = 0x616b3432, version = 2;
  std::memcpy(v2.data(), &magic, 4);
  std::memcpy(v2.data() + 4, &version, 4);
  write_bytes(path, v2);
  expect_load_error(path, "version 2");
}

TEST(Llama2c, DetectionNeedsAConsistentHeader) {
  const std::vector<std::byte> good = read_bytes(shared_path("models/stories260K.bin"));
  EXPECT_TRUE(looks_like_llama2c(good));
  EXPECT_FALSE(looks_like_llama2c(std::span(good).first(good.size() - 4)));
  const std::vector<std::byte> noise = float_bytes(random_floats(1000, 5));
  EXPECT_FALSE(looks_like_llama2c(noise));
  EXPECT_FALSE(looks_like_llama2c(std::span(good).first(10)));
}

// Found by llama2c_fuzz: negating INT32_MIN (the unshared-classifier flag) was undefined.
TEST(Llama2c, MostNegativeVocabSizeIsRefused) {
  std::vector<std::byte> bad = read_bytes(shared_path("models/stories260K.bin"));
  const int32_t vocab = std::numeric_limits<int32_t>::min();
  std::memcpy(bad.data() + 4 * 5, &vocab, 4);
  TempDir dir;
  const auto path = dir.path() / "bad.bin";
  write_bytes(path, bad);
  expect_load_error(path, "implausible");
  EXPECT_FALSE(looks_like_llama2c(bad));
}

}  // namespace
}  // namespace torchless
