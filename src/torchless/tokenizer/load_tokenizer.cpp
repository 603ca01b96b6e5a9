// load_tokenizer(): finds the tokenizer that belongs to a model path, whatever its format.
#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"
#include "torchless/formats/gguf_file.h"
#include "torchless/formats/llama2c.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {
namespace {

namespace fs = std::filesystem;

std::array<char, 32> read_head(const fs::path& path) {
  std::array<char, 32> head{};
  std::ifstream file(path, std::ios::binary);
  if (!file) fail("{}: cannot open", path.string());
  file.read(head.data(), head.size());
  return head;
}

bool is_gguf(const fs::path& path) {
  return std::memcmp(read_head(path).data(), "GGUF", 4) == 0;
}

// vocab_size from a llama2.c checkpoint header (legacy: 7 int32; version 1: "ak42" magic,
// int32 version, then the same 7 int32). Negative means an unshared classifier.
int32_t llama2c_vocab_size(const fs::path& checkpoint) {
  const auto head = read_head(checkpoint);
  int32_t fields[8];
  std::memcpy(fields, head.data(), sizeof(fields));
  const bool version1 = std::memcmp(head.data(), "ak42", 4) == 0;
  const int32_t vocab = version1 ? fields[2 + 5] : fields[5];
  if (vocab == 0 || vocab == INT32_MIN)
    fail("{}: llama2.c header has vocab_size 0", checkpoint.string());
  return vocab < 0 ? -vocab : vocab;
}

// The tokenizer beside a llama2.c checkpoint, by llama2.c's naming convention: tok<N>.bin for
// a custom N-token vocabulary, tokenizer.bin for the default one. Any other choice is named
// on stderr; several candidates and no convention to choose between them is an error.
fs::path find_llama2c_tokenizer(const fs::path& checkpoint, int32_t n_vocab) {
  const fs::path dir = checkpoint.has_parent_path() ? checkpoint.parent_path() : fs::path(".");
  const fs::path by_size = dir / ("tok" + std::to_string(n_vocab) + ".bin");
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

bool is_hf_dir(const fs::path& dir) {
  return fs::is_directory(dir) && fs::is_regular_file(dir / "tokenizer.json");
}

std::unique_ptr<Tokenizer> load_explicit_tokenizer(const fs::path& model_path,
                                                   const fs::path& tokenizer_path) {
  if (fs::is_directory(tokenizer_path)) return load_tokenizer_from_hf(tokenizer_path);
  if (tokenizer_path.filename() == "tokenizer.json") {
    return load_tokenizer_from_hf(tokenizer_path.parent_path());
  }
  if (!fs::exists(tokenizer_path)) fail("{}: no such tokenizer file", tokenizer_path.string());
  if (is_gguf(tokenizer_path)) return load_tokenizer_from_gguf(*GgufFile::open(tokenizer_path));
  // A llama2.c tokenizer; its size comes from the checkpoint when there is one.
  int32_t n_vocab = -1;
  if (!model_path.empty() && fs::is_regular_file(model_path) && !is_gguf(model_path) &&
      model_path.extension() == ".bin") {
    n_vocab = llama2c_vocab_size(model_path);
  }
  return load_llama2c_tokenizer(tokenizer_path, n_vocab);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& model_path,
                                          const fs::path& tokenizer_path) {
  if (!tokenizer_path.empty()) return load_explicit_tokenizer(model_path, tokenizer_path);
  if (!fs::exists(model_path)) fail("{}: no such file or directory", model_path.string());
  if (fs::is_directory(model_path)) {
    if (!is_hf_dir(model_path)) fail("{}: directory has no tokenizer.json", model_path.string());
    return load_tokenizer_from_hf(model_path);
  }
  if (is_gguf(model_path)) return load_tokenizer_from_gguf(*GgufFile::open(model_path));
  if (model_path.filename() == "tokenizer.json") {
    return load_tokenizer_from_hf(model_path.parent_path());
  }
  const fs::path dir = model_path.has_parent_path() ? model_path.parent_path() : fs::path(".");
  if (model_path.extension() != ".bin" && is_hf_dir(dir)) return load_tokenizer_from_hf(dir);
  if (!looks_like_llama2c(MappedFile::open(model_path)->bytes())) {
    fail("{}: not a GGUF file, Hugging Face model directory or llama2.c checkpoint",
         model_path.string());
  }
  const int32_t n_vocab = llama2c_vocab_size(model_path);
  return load_llama2c_tokenizer(find_llama2c_tokenizer(model_path, n_vocab), n_vocab);
}

}  // namespace torchless
