// load_tokenizer(): the tokenizer that belongs to a loaded model. The model loader has already
// told its format, vocabulary size and (GGUF) metadata, so nothing here detects formats again.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/model_loader.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {
namespace {

namespace fs = std::filesystem;

// The tokenizer beside a llama2.c checkpoint, by llama2.c's naming convention: tok<N>.bin for
// a custom N-token vocabulary, tokenizer.bin for the default one. Any other choice is named
// on stderr; several candidates and no convention to choose between them is an error.
fs::path find_llama2c_tokenizer(const fs::path& checkpoint, int32_t n_vocab) {
  const fs::path dir = checkpoint.has_parent_path() ? checkpoint.parent_path() : fs::path(".");
  fs::path by_size = dir / ("tok" + std::to_string(n_vocab) + ".bin");
  if (fs::is_regular_file(by_size)) return by_size;
  constexpr int32_t kLlama2Vocab = 32000;  // llama2.c's tokenizer.bin is Llama 2's vocabulary
  if (n_vocab == kLlama2Vocab && fs::is_regular_file(dir / "tokenizer.bin")) {
    return dir / "tokenizer.bin";
  }
  std::vector<fs::path> candidates;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && entry.path() != checkpoint &&
        (name == "tokenizer.bin" || (name.starts_with("tok") && name.ends_with(".bin")))) {
      candidates.push_back(entry.path());
    }
  }
  std::sort(candidates.begin(), candidates.end());
  if (candidates.empty()) {
    fail(
        "{}: llama2.c checkpoint has no tokenizer beside it (tok{}.bin or tokenizer.bin); "
        "pass one with --tokenizer",
        checkpoint.string(), n_vocab);
  }
  if (candidates.size() == 1) {
    std::fprintf(stderr, "note: using the tokenizer %s (the only one beside the checkpoint)\n",
                 candidates.front().string().c_str());
    return candidates.front();
  }
  std::string names;
  for (const fs::path& c : candidates) names += (names.empty() ? "" : ", ") + c.filename().string();
  fail(
      "{}: several tokenizers beside the checkpoint ({}) and none named tok{}.bin: pick one with "
      "--tokenizer",
      checkpoint.string(), names, n_vocab);
}

// The directory of a Hugging Face model: the path itself, or the folder of the config.json or
// .safetensors file it names.
fs::path hf_directory(const fs::path& model_path) {
  if (fs::is_directory(model_path)) return model_path;
  return model_path.has_parent_path() ? model_path.parent_path() : fs::path(".");
}

std::unique_ptr<Tokenizer> load_explicit_tokenizer(const LoadedModel& model,
                                                   const fs::path& tokenizer_path) {
  if (fs::is_directory(tokenizer_path)) return load_tokenizer_from_hf(tokenizer_path);
  if (tokenizer_path.filename() == "tokenizer.json") {
    return load_tokenizer_from_hf(tokenizer_path.parent_path());
  }
  if (!fs::exists(tokenizer_path)) fail("{}: no such tokenizer file", tokenizer_path.string());
  if (detect_model_format(tokenizer_path) == ModelFormat::Gguf) {
    return load_tokenizer_from_gguf(*GgufFile::open(tokenizer_path));
  }
  // A llama2.c tokenizer.bin: its size comes from the checkpoint when the model is one.
  const int32_t n_vocab = model.format == ModelFormat::Llama2c ? model.config.n_vocab : -1;
  return load_llama2c_tokenizer(tokenizer_path, n_vocab);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const LoadedModel& model,
                                          const fs::path& tokenizer_path) {
  if (!tokenizer_path.empty()) return load_explicit_tokenizer(model, tokenizer_path);
  switch (model.format) {
    case ModelFormat::Gguf:
      if (!model.gguf) fail("{}: GGUF model without its metadata", model.path.string());
      return load_tokenizer_from_gguf(*model.gguf);
    case ModelFormat::Safetensors: {
      const fs::path dir = hf_directory(model.path);
      if (!fs::is_regular_file(dir / "tokenizer.json")) {
        fail("{}: directory has no tokenizer.json", dir.string());
      }
      return load_tokenizer_from_hf(dir);
    }
    case ModelFormat::Llama2c:
      return load_llama2c_tokenizer(find_llama2c_tokenizer(model.path, model.config.n_vocab),
                                    model.config.n_vocab);
  }
  fail("{}: unknown model format", model.path.string());
}

}  // namespace torchless
