// Hugging Face directories built in temporary folders: sharded indexes, other dtypes,
// misaligned data, and models whose tensors disagree with their config.
#include "torchless/formats/safetensors_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/loader_test_util.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/formats/safetensors_file.h"

namespace torchless {
namespace {

using namespace torchless::test;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

fs::path golden(const std::string& relative) {
  return shared_path("golden/" + relative);
}

// The golden model's tensors as writer input, in file order.
std::vector<StTensor> golden_tensors(const std::string& folder) {
  const auto file = SafetensorsFile::open(golden(folder + "/model.safetensors"));
  std::vector<StTensor> out;
  for (const auto& t : file->tensors()) {
    std::vector<int64_t> shape;
    for (int d = 0; d < t.shape.rank(); ++d) shape.push_back(t.shape[d]);
    out.push_back({t.name, t.dtype_name, shape, std::vector<std::byte>(t.data, t.data + t.nbytes)});
  }
  return out;
}

// A model directory with `config` and one model.safetensors holding `tensors`.
void write_model(const fs::path& dir, const json& config, const std::vector<StTensor>& tensors,
                 size_t header_pad = 0) {
  fs::create_directories(dir);
  write_text(dir / "config.json", config.dump(2));
  write_bytes(dir / "model.safetensors", make_safetensors(tensors, header_pad));
}

json golden_config(const std::string& folder) {
  return json::parse(read_text(golden(folder + "/config.json")));
}

std::string load_error(const fs::path& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded " << path;
  return "";
}

void expect_same_weights(const LoadedModel& a, const LoadedModel& b) {
  ASSERT_EQ(a.weights.all().size(), b.weights.all().size());
  for (const auto& [name, view] : a.weights.all()) {
    const HostTensorView& other = b.weights.get(name);
    EXPECT_EQ(view.shape, other.shape) << name;
    EXPECT_EQ(view.dtype, other.dtype) << name;
    ASSERT_EQ(view.nbytes, other.nbytes) << name;
    EXPECT_EQ(std::memcmp(view.data, other.data, view.nbytes), 0) << name;
  }
}

TEST(SafetensorsModel, HfNamesMapToCanonicalNames) {
  EXPECT_EQ(canonical_hf_tensor_name("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(canonical_hf_tensor_name("lm_head.weight"), "output.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.17.self_attn.q_proj.weight"),
            "blk.17.attn_q.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.0.self_attn.k_proj.bias"), "blk.0.attn_k.bias");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.3.self_attn.o_proj.weight"),
            "blk.3.attn_output.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.3.self_attn.k_norm.weight"),
            "blk.3.attn_k_norm.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.2.mlp.down_proj.weight"),
            "blk.2.ffn_down.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.2.input_layernorm.weight"),
            "blk.2.attn_norm.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.2.post_attention_layernorm.weight"),
            "blk.2.ffn_norm.weight");
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.0.self_attn.rotary_emb.inv_freq"), std::nullopt);
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.x.mlp.up_proj.weight"), std::nullopt);
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.01.mlp.up_proj.weight"), std::nullopt);
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.99999999999999.mlp.up_proj.weight"),
            std::nullopt);
  EXPECT_EQ(canonical_hf_tensor_name("model.layers.1"), std::nullopt);
}

TEST(SafetensorsModel, ShardedModelEqualsTheSingleFile) {
  const LoadedModel single = load_model(golden("llama"));
  const std::vector<StTensor> tensors = golden_tensors("llama");
  TempDir dir;
  write_text(dir.path() / "config.json", read_text(golden("llama/config.json")));
  // Three shards with interleaved tensors, named as transformers names them.
  std::vector<std::vector<StTensor>> shards(3);
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t s = (i * 7) % 3;
    shards[s].push_back(tensors[i]);
    index["weight_map"][tensors[i].name] =
        "model-0000" + std::to_string(s + 1) + "-of-00003.safetensors";
  }
  for (size_t s = 0; s < 3; ++s) {
    write_bytes(dir.path() / ("model-0000" + std::to_string(s + 1) + "-of-00003.safetensors"),
                make_safetensors(shards[s], s));
  }
  write_text(dir.path() / "model.safetensors.index.json", index.dump());
  const LoadedModel sharded = load_model(dir.path());
  expect_same_weights(single, sharded);
  EXPECT_EQ(sharded.config.name, dir.path().filename().string());

  // A tensor present in a shard but assigned elsewhere by the index is ignored; one listed but
  // absent is an error; a shard path outside the directory is refused.
  json bad = index;
  bad["weight_map"]["model.norm.weight"] = "model-00002-of-00003.safetensors";
  if (index["weight_map"]["model.norm.weight"] == bad["weight_map"]["model.norm.weight"]) {
    bad["weight_map"]["model.norm.weight"] = "model-00001-of-00003.safetensors";
  }
  write_text(dir.path() / "model.safetensors.index.json", bad.dump());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("'model.norm.weight' is listed"));

  bad = index;
  bad["weight_map"]["model.norm.weight"] = "../model.safetensors";
  write_text(dir.path() / "model.safetensors.index.json", bad.dump());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("not a plain file name"));

  bad = index;
  bad["weight_map"]["model.norm.weight"] = "model-00009-of-00003.safetensors";
  write_text(dir.path() / "model.safetensors.index.json", bad.dump());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("does not exist"));

  bad = index;
  bad["weight_map"].erase("model.norm.weight");
  write_text(dir.path() / "model.safetensors.index.json", bad.dump());
  EXPECT_THAT(load_error(dir.path()), HasSubstr("no tensor 'output_norm.weight'"));

  write_text(dir.path() / "model.safetensors.index.json", "{\"weight_map\": [");
  EXPECT_THAT(load_error(dir.path()), HasSubstr("not valid JSON"));
  write_text(dir.path() / "model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
  EXPECT_THAT(load_error(dir.path()), HasSubstr("not a string"));
}

TEST(SafetensorsModel, Bf16AndF16WeightsKeepTheirType) {
  for (const std::string dtype : {"BF16", "F16"}) {
    SCOPED_TRACE(dtype);
    std::vector<StTensor> tensors = golden_tensors("qwen2");
    for (StTensor& t : tensors) {
      std::vector<float> f(t.data.size() / 4);
      std::memcpy(f.data(), t.data.data(), t.data.size());
      std::vector<uint16_t> h;
      for (float x : f) h.push_back(dtype == "BF16" ? fp32_to_bf16(x) : fp32_to_fp16(x));
      t.dtype = dtype;
      t.data.resize(h.size() * 2);
      std::memcpy(t.data.data(), h.data(), t.data.size());
    }
    TempDir dir;
    write_model(dir.path(), golden_config("qwen2"), tensors, 4);
    const LoadedModel m = load_model(dir.path());
    const HostTensorView& q = m.weights.get("blk.1.attn_q.bias");
    EXPECT_EQ(q.dtype, dtype == "BF16" ? DType::BF16 : DType::F16);
    EXPECT_EQ(q.nbytes, 256u * 2);
    for (const StTensor& t : tensors) {
      if (t.name == "model.layers.1.self_attn.q_proj.bias") {
        EXPECT_EQ(std::memcmp(q.data, t.data.data(), q.nbytes), 0);
      }
    }
  }
}

TEST(SafetensorsModel, MisalignedDataIsCopiedNotMisread) {
  const std::vector<StTensor> tensors = golden_tensors("llama");
  size_t pad = 0;
  for (; pad < 4; ++pad) {
    const std::vector<std::byte> bytes = make_safetensors(tensors, pad);
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    if ((8 + header) % 4 == 2) break;
  }
  TempDir dir;
  write_model(dir.path(), golden_config("llama"), tensors, pad);
  const LoadedModel m = load_model(dir.path());
  const LoadedModel ref = load_model(golden("llama"));
  expect_same_weights(m, ref);
  for (const auto& [name, view] : m.weights.all()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view.data) % 4, 0u) << name;
  }
}

TEST(SafetensorsModel, TiedModelsIgnoreAStoredLmHead) {
  std::vector<StTensor> tensors = golden_tensors("qwen3");
  StTensor head = tensors[0];
  for (const StTensor& t : tensors) {
    if (t.name == "model.embed_tokens.weight") head = t;
  }
  head.name = "lm_head.weight";
  tensors.push_back(head);
  TempDir dir;
  write_model(dir.path(), golden_config("qwen3"), tensors);
  const LoadedModel m = load_model(dir.path());
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_FALSE(m.weights.contains("output.weight"));
}

TEST(SafetensorsModel, TensorsThatDisagreeWithTheConfigAreNamed) {
  TempDir dir;
  const std::vector<StTensor> tensors = golden_tensors("llama");

  json config = golden_config("llama");
  config["num_key_value_heads"] = 4;
  write_model(dir.path() / "kv", config, tensors);
  const std::string kv_error = load_error(dir.path() / "kv");
  EXPECT_THAT(kv_error, StartsWith((dir.path() / "kv").string()));
  EXPECT_THAT(kv_error,
              HasSubstr("tensor 'blk.0.attn_k.weight' has shape [128, 256], expected [256, 256]"));

  std::vector<StTensor> missing = tensors;
  std::erase_if(missing,
                [](const StTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  write_model(dir.path() / "missing", golden_config("llama"), missing);
  EXPECT_THAT(load_error(dir.path() / "missing"),
              HasSubstr("no tensor 'blk.1.ffn_up.weight' (expected shape [512, 256])"));

  config = golden_config("qwen2");
  config["tie_word_embeddings"] = false;
  write_model(dir.path() / "untied", config, golden_tensors("qwen2"));
  EXPECT_THAT(load_error(dir.path() / "untied"), HasSubstr("no tensor 'output.weight'"));

  std::vector<StTensor> with_o_bias = tensors;
  with_o_bias.push_back(
      {"model.layers.0.self_attn.o_proj.bias", "F32", {256}, float_bytes(random_floats(256, 3))});
  write_model(dir.path() / "obias", golden_config("llama"), with_o_bias);
  EXPECT_THAT(load_error(dir.path() / "obias"), HasSubstr("'blk.0.attn_output.bias' is not used"));

  std::vector<StTensor> extra_layer = tensors;
  extra_layer.push_back(
      {"model.layers.2.input_layernorm.weight", "F32", {256}, float_bytes(random_floats(256, 4))});
  write_model(dir.path() / "extra", golden_config("llama"), extra_layer);
  EXPECT_THAT(load_error(dir.path() / "extra"), HasSubstr("'blk.2.attn_norm.weight' is not used"));

  // Unused Hugging Face buffers are simply left out.
  std::vector<StTensor> with_buffer = tensors;
  with_buffer.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq",
                         "F32",
                         {32},
                         float_bytes(random_floats(32, 5))});
  write_model(dir.path() / "buffer", golden_config("llama"), with_buffer);
  EXPECT_EQ(load_model(dir.path() / "buffer").weights.all().size(), 3u + 9u * 2);

  std::vector<StTensor> int_weight = tensors;
  for (StTensor& t : int_weight) {
    if (t.name == "model.norm.weight") t.dtype = "I32";
  }
  write_model(dir.path() / "int", golden_config("llama"), int_weight);
  EXPECT_THAT(load_error(dir.path() / "int"), HasSubstr("I32"));

  fs::create_directories(dir.path() / "noweights");
  write_text(dir.path() / "noweights" / "config.json", golden_config("llama").dump());
  EXPECT_THAT(load_error(dir.path() / "noweights"), HasSubstr("no model.safetensors"));
}

}  // namespace
}  // namespace torchless
