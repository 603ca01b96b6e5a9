#pragma once
// Split GGUF models, as llama.cpp's gguf-split writes them: NAME-00001-of-0000N.gguf ... each a
// complete GGUF file whose metadata holds split.no (0-based), split.count and
// split.tensors.count (the model's tensor total); the first part carries the model's metadata
// (hyperparameters, tokenizer), every part a share of the tensors.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace torchless {

class GgufFile;

inline constexpr const char* kGgufSplitNo = "split.no";
inline constexpr const char* kGgufSplitCount = "split.count";
inline constexpr const char* kGgufSplitTensorsCount = "split.tensors.count";

struct GgufSplitName {
  std::string prefix;  // the path before "-00001-of-00003.gguf"
  int number = 0;      // 1-based, as in the name
  int count = 0;
};

// Parses "PREFIX-00002-of-00003.gguf" (five digits each, as llama.cpp names them).
std::optional<GgufSplitName> parse_gguf_split_name(const std::string& path);
std::string gguf_split_name(const std::string& prefix, int number, int count);

// Opens a GGUF file; when it is the first part of a split model, opens the other parts (found by
// name beside it) and appends their tensors to it (GgufFile::append_split_part). Throws Error
// for a later part given first, a missing part, or parts that do not belong together.
std::shared_ptr<GgufFile> open_gguf_model_file(const std::filesystem::path& path);

}  // namespace torchless
