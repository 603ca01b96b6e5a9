#include "hub/hub_test_repos.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/formats/safetensors_file.h"

namespace torchless::test {
namespace {

// A safetensors file: 8-byte little-endian header length, the JSON header, the tensors.
std::string safetensors_bytes(const std::vector<const SafetensorsTensorInfo*>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const SafetensorsTensorInfo* t : tensors) {
    std::vector<int64_t> shape;
    for (int d = 0; d < t->shape.rank(); ++d) shape.push_back(t->shape[d]);
    header[t->name] = {{"dtype", t->dtype_name},
                       {"shape", shape},
                       {"data_offsets", {data.size(), data.size() + t->nbytes}}};
    data.append(reinterpret_cast<const char*>(t->data), t->nbytes);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text + data;
}

}  // namespace

std::vector<FakeFile> HubTest::safetensors_files() const {
  const auto file = SafetensorsFile::open(shared_file("golden/llama/model.safetensors"));
  std::vector<std::vector<const SafetensorsTensorInfo*>> shards(3);
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < file->tensors().size(); ++i) {
    const auto& t = file->tensors()[i];
    shards[i % 3].push_back(&t);
    index["weight_map"][t.name] = fmt::format("model-{:05d}-of-00003.safetensors", i % 3 + 1);
  }
  std::vector<FakeFile> files{
      {"config.json", file_bytes(shared_file("golden/llama/config.json")), false},
      {"model.safetensors.index.json", index.dump(2), false},
      {"tokenizer_config.json", R"({"model_max_length": 2048})", false},
      {"original/consolidated.pth", std::string(1000, 'x'), true}};
  for (size_t s = 0; s < 3; ++s) {
    files.push_back({fmt::format("model-{:05d}-of-00003.safetensors", s + 1),
                     safetensors_bytes(shards[s]), true});
  }
  return files;
}

}  // namespace torchless::test
