#include "torchless/formats/model_loader.h"

#include <array>
#include <cstring>
#include <fstream>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/gguf_model.h"
#include "torchless/formats/llama2c.h"
#include "torchless/formats/model_validation.h"
#include "torchless/formats/safetensors_model.h"

namespace torchless {
namespace {

namespace fs = std::filesystem;

bool starts_with_gguf_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 4> magic{};
  in.read(magic.data(), magic.size());
  return in.gcount() == 4 && std::memcmp(magic.data(), "GGUF", 4) == 0;
}

bool is_hf_file(const fs::path& path) {
  const std::string name = path.filename().string();
  return path.extension() == ".safetensors" || name == "config.json" ||
         name == "model.safetensors.index.json";
}

LoadedModel load_by_format(const fs::path& path) {
  switch (detect_model_format(path)) {
    case ModelFormat::Gguf:
      return load_gguf_model(path);
    case ModelFormat::Safetensors:
      return load_safetensors_model(path);
    case ModelFormat::Llama2c:
      return load_llama2c_model(path);
  }
  fail("unknown model format");
}

}  // namespace

ModelFormat detect_model_format(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail("'{}' does not exist", path.string());
  if (fs::is_directory(status)) {
    if (fs::is_regular_file(path / "config.json")) return ModelFormat::Safetensors;
    fail("'{}' is a directory without config.json (expected a Hugging Face model directory)",
         path.string());
  }
  if (starts_with_gguf_magic(path)) return ModelFormat::Gguf;
  if (is_hf_file(path)) return ModelFormat::Safetensors;
  // A .bin is taken as llama2.c so that a damaged one gets the checkpoint's own error message.
  if (path.extension() == ".bin" || looks_like_llama2c(MappedFile::open(path)->bytes()))
    return ModelFormat::Llama2c;
  fail(
      "'{}' is not a GGUF file, a Hugging Face model (directory, config.json or .safetensors) or a "
      "llama2.c "
      "checkpoint",
      path.string());
}

LoadedModel load_model(const fs::path& path) {
  try {
    LoadedModel model = load_by_format(path);
    validate_model(model.config, model.weights);
    return model;
  } catch (const Error& e) {
    // Messages from the parsers may already start with the path; say it once.
    const std::string message = e.what();
    if (message.find(path.string()) != std::string::npos) throw;
    fail("{}: {}", path.string(), message);
  }
}

}  // namespace torchless
