// The GGUF reader on every real file in ../shared, checked against facts documented in the
// shared READMEs and against the llama2.c checkpoint that holds the same weights.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/gguf_writer.h"

namespace torchless {
namespace {

std::string shared(const std::string& rel) {
  const std::string path = std::string(TORCHLESS_SOURCE_DIR) + "/../shared/" + rel;
  if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing shared file " << path;
  return path;
}

TEST(GgufReader, Stories260KMetadata) {
  const auto file = GgufFile::open(shared("models/stories260K.gguf"));
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  EXPECT_EQ(file->data_offset() % 32, 0u);
  EXPECT_EQ(file->get_string("general.architecture", ""), "llama");
  EXPECT_EQ(file->get_int("llama.embedding_length", 0), 64);
  EXPECT_EQ(file->get_int("llama.block_count", 0), 5);
  EXPECT_EQ(file->get_int("llama.attention.head_count", 0), 8);
  EXPECT_EQ(file->get_int("llama.attention.head_count_kv", 0), 4);
  EXPECT_EQ(file->get_int("llama.feed_forward_length", 0), 172);
  EXPECT_EQ(file->get_int("llama.context_length", 0), 128);
  EXPECT_EQ(file->get_int("llama.rope.dimension_count", 0), 8);
  EXPECT_EQ(file->find("llama.rope.freq_base"), nullptr);
  EXPECT_DOUBLE_EQ(file->get_float("llama.rope.freq_base", 10000.0), 10000.0);
  const GgufValue& eps = file->get("llama.attention.layer_norm_rms_epsilon");
  EXPECT_EQ(eps.type, GgufType::Float32);
  EXPECT_EQ(static_cast<float>(eps.as_f64()), 1e-5f);
  EXPECT_EQ(file->get_string("tokenizer.ggml.model", ""), "llama");
  const std::vector<std::string> tokens = file->get("tokenizer.ggml.tokens").as_string_list();
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(file->get("tokenizer.ggml.scores").as_f32_list().size(), 512u);
  EXPECT_EQ(file->get("tokenizer.ggml.token_type").as_i64_list()[0], 2);
  EXPECT_EQ(file->get_int("tokenizer.ggml.bos_token_id", -1), 1);
  EXPECT_EQ(file->get_int("tokenizer.ggml.eos_token_id", -1), 2);
}

TEST(GgufReader, Stories260KTensorsAreViewsOfTheMapping) {
  const auto file = GgufFile::open(shared("models/stories260K.gguf"));
  ASSERT_EQ(file->tensors().size(), 48u);
  const GgufTensorInfo* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dtype, DType::F32);
  EXPECT_EQ(embd->shape, (Shape{512, 64}));
  EXPECT_EQ(embd->nbytes, 512u * 64 * 4);
  const std::byte* begin = file->mapping()->data();
  EXPECT_EQ(embd->data, begin + file->data_offset() + embd->offset);
  const GgufTensorInfo* ffn_down = file->find_tensor("blk.4.ffn_down.weight");
  ASSERT_NE(ffn_down, nullptr);
  EXPECT_EQ(ffn_down->shape, (Shape{64, 172}));
  EXPECT_EQ(file->find_tensor("blk.5.ffn_down.weight"), nullptr);
  for (const GgufTensorInfo& t : file->tensors()) {
    EXPECT_GE(t.data, begin + file->data_offset());
    EXPECT_LE(t.data + t.nbytes, begin + file->file_size());
    EXPECT_EQ(t.view().nbytes, t.nbytes);
  }
}

// stories260K.bin holds the same weights bit for bit (models/README.md): a 28-byte header, the
// token embedding table, then rms_att_weight for the 5 layers.
TEST(GgufReader, Stories260KDataMatchesTheLlama2cCheckpoint) {
  const auto file = GgufFile::open(shared("models/stories260K.gguf"));
  const auto bin = MappedFile::open(shared("models/stories260K.bin"));
  const GgufTensorInfo* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  ASSERT_GE(bin->size(), 28 + embd->nbytes + 5 * 64 * 4);
  EXPECT_EQ(std::memcmp(embd->data, bin->data() + 28, embd->nbytes), 0);
  for (int layer = 0; layer < 5; ++layer) {
    const GgufTensorInfo* norm =
        file->find_tensor("blk." + std::to_string(layer) + ".attn_norm.weight");
    ASSERT_NE(norm, nullptr);
    ASSERT_EQ(norm->nbytes, 64u * 4);
    EXPECT_EQ(std::memcmp(norm->data, bin->data() + 28 + embd->nbytes + layer * 256, 256), 0)
        << layer;
  }
}

struct VocabFact {
  const char* file;
  const char* model;
  const char* pre;
  size_t tokens;
  size_t merges;  // 0: no merges key
  int64_t bos;
};

class GgufVocabFile : public ::testing::TestWithParam<VocabFact> {};

TEST_P(GgufVocabFile, HasTheDocumentedTokenizer) {
  const VocabFact v = GetParam();
  const auto file = GgufFile::open(shared(std::string("vocab/") + v.file));
  EXPECT_EQ(file->version(), 3u);
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(file->get_string("tokenizer.ggml.model", ""), v.model);
  EXPECT_EQ(file->get_string("tokenizer.ggml.pre", ""), v.pre);
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").as_array().items.size(), v.tokens);
  EXPECT_EQ(file->get("tokenizer.ggml.token_type").as_array().items.size(), v.tokens);
  if (v.merges) {
    EXPECT_EQ(file->get("tokenizer.ggml.merges").as_string_list().size(), v.merges);
  } else {
    EXPECT_EQ(file->find("tokenizer.ggml.merges"), nullptr);
  }
  EXPECT_EQ(file->get_int("tokenizer.ggml.bos_token_id", -1), v.bos);
}

INSTANTIATE_TEST_SUITE_P(
    Shared, GgufVocabFile,
    ::testing::Values(VocabFact{"ggml-vocab-llama-spm.gguf", "llama", "default", 32000, 0, 1},
                      VocabFact{"ggml-vocab-gpt-2.gguf", "gpt2", "gpt-2", 50257, 50000, 50256},
                      VocabFact{"ggml-vocab-starcoder.gguf", "gpt2", "starcoder", 49152, 48872, 0},
                      VocabFact{"ggml-vocab-deepseek-coder.gguf", "gpt2", "deepseek-coder", 32256,
                                31757, 32013}),
    [](const auto& info) { return "file" + std::to_string(info.index); });

TEST(GgufReader, LlamaSpmVocabFlags) {
  const auto file = GgufFile::open(shared("vocab/ggml-vocab-llama-spm.gguf"));
  EXPECT_TRUE(file->get("tokenizer.ggml.add_bos_token").as_bool());
  EXPECT_FALSE(file->get("tokenizer.ggml.add_eos_token").as_bool());
  EXPECT_EQ(file->get("tokenizer.ggml.scores").as_f32_list().size(), 32000u);
}

struct GoldenFact {
  const char* file;
  const char* arch;
  size_t tensors;
  int64_t heads;
  size_t vocab;
};

class GgufGoldenFile : public ::testing::TestWithParam<GoldenFact> {};

TEST_P(GgufGoldenFile, HasTheDocumentedHyperparameters) {
  const GoldenFact g = GetParam();
  const auto file = GgufFile::open(shared(std::string("golden/") + g.file));
  const std::string arch = g.arch;
  EXPECT_EQ(file->get_string("general.architecture", ""), arch);
  EXPECT_EQ(file->tensors().size(), g.tensors);
  EXPECT_EQ(file->get_int(arch + ".embedding_length", 0), 256);
  EXPECT_EQ(file->get_int(arch + ".feed_forward_length", 0), 512);
  EXPECT_EQ(file->get_int(arch + ".block_count", 0), 2);
  EXPECT_EQ(file->get_int(arch + ".attention.head_count", 0), g.heads);
  EXPECT_EQ(file->get_int(arch + ".attention.head_count_kv", 0), 2);
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").as_array().items.size(), g.vocab);
  const GgufTensorInfo* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->shape, (Shape{static_cast<int64_t>(g.vocab), 256}));
  for (const GgufTensorInfo& t : file->tensors()) {
    EXPECT_EQ(t.offset % file->alignment(), 0u) << t.name;
    EXPECT_EQ(t.nbytes,
              dtype_row_bytes(t.dtype, t.shape.cols()) * static_cast<size_t>(t.shape.rows()));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shared, GgufGoldenFile,
    ::testing::Values(GoldenFact{"llama/model-f32.gguf", "llama", 21, 4, 512},
                      GoldenFact{"llama/model-q8_0.gguf", "llama", 21, 4, 512},
                      GoldenFact{"llama/model-q4_0.gguf", "llama", 21, 4, 512},
                      GoldenFact{"llama3-ropescaling/model-f32.gguf", "llama", 22, 4, 512},
                      GoldenFact{"qwen2/model-f32.gguf", "qwen2", 26, 4, 1024},
                      GoldenFact{"qwen2/model-q4_0.gguf", "qwen2", 26, 4, 1024},
                      GoldenFact{"qwen2/model-q4_k.gguf", "qwen2", 26, 4, 1024},
                      GoldenFact{"qwen3/model-f32.gguf", "qwen3", 24, 8, 1024}),
    [](const auto& info) { return "file" + std::to_string(info.index); });

TEST(GgufReader, QuantizedGoldenFilesHaveTheExpectedTypes) {
  const auto q4k = GgufFile::open(shared("golden/qwen2/model-q4_k.gguf"));
  EXPECT_EQ(q4k->find_tensor("blk.0.attn_q.weight")->dtype, DType::Q4_K);
  EXPECT_EQ(q4k->find_tensor("token_embd.weight")->dtype, DType::Q6_K);
  EXPECT_EQ(q4k->find_tensor("blk.0.attn_q.bias")->dtype, DType::F32);
  const auto q8 = GgufFile::open(shared("golden/llama/model-q8_0.gguf"));
  EXPECT_EQ(q8->find_tensor("output.weight")->dtype, DType::Q8_0);
  EXPECT_EQ(q8->get_int("general.file_type", -1), 7);
}

TEST(GgufReader, Llama3RopeFreqsTensor) {
  const auto file = GgufFile::open(shared("golden/llama3-ropescaling/model-f32.gguf"));
  const GgufTensorInfo* freqs = file->find_tensor("rope_freqs.weight");
  ASSERT_NE(freqs, nullptr);
  ASSERT_EQ(freqs->shape, (Shape{32}));
  const auto* f = reinterpret_cast<const float*>(freqs->data);
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_NEAR(f[3], 1.425495f, 1e-5);
  EXPECT_FLOAT_EQ(f[31], 8.0f);
}

// GGUF v2 has v3's layout (64-bit counts and lengths); only the version field differs. The
// same file read as v2 must give the same metadata and tensors.
TEST(GgufReader, ReadsVersion2) {
  GgufWriter w;
  w.add("general.architecture", gguf_string("llama"));
  w.add("llama.block_count", gguf_u32(2));
  w.add("tokenizer.ggml.tokens", gguf_string_array({"a", "b", "c"}));
  const std::vector<float> values = {1.0f, -2.0f, 3.5f, 0.25f, 8.0f, -1.0f};
  w.add_tensor_from_f32("t", DType::F32, Shape{2, 3}, values);
  std::vector<std::byte> bytes = w.to_bytes();
  const uint32_t v2 = 2;
  std::memcpy(bytes.data() + 4, &v2, sizeof v2);  // after the magic "GGUF"
  const auto file = GgufFile::parse(bytes);
  EXPECT_EQ(file->version(), 2u);
  EXPECT_EQ(file->get_string("general.architecture", ""), "llama");
  EXPECT_EQ(file->find("tokenizer.ggml.tokens")->as_string_list().size(), 3u);
  ASSERT_EQ(file->tensors().size(), 1u);
  float first = 0.0f;
  std::memcpy(&first, file->tensors()[0].data + 4, sizeof first);
  EXPECT_EQ(first, -2.0f);
}

TEST(GgufReader, AccessorsRefuseWrongTypesAndNameMissingKeys) {
  const auto file = GgufFile::open(shared("models/stories260K.gguf"));
  EXPECT_THROW(file->get("general.architecture").as_i64(), Error);
  EXPECT_THROW(file->get("llama.block_count").as_string(), Error);
  EXPECT_THROW(file->get_int("general.architecture", 0), Error);
  EXPECT_EQ(file->get_int("no.such.key", 42), 42);
  EXPECT_EQ(file->get_string("no.such.key", "x"), "x");
  try {
    file->get("no.such.key");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no.such.key"), std::string::npos);
  }
}

TEST(GgufReader, OpenNamesTheFileInErrors) {
  try {
    GgufFile::open(shared("models/stories260K.bin"));
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stories260K.bin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GgufFile::open("/nonexistent/file.gguf"), Error);
}

}  // namespace
}  // namespace torchless
