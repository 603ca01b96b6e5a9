#pragma once
// Which files of a repository make the model a user asked for:
//   - GGUF repositories (often one file per quantisation): ":QUANT" picks the file whose name
//     carries that quantisation (case-insensitive); without it, Q4_K_M, else the smallest
//     Q4/Q8 file, else the only model. A split model (NAME-00001-of-0000N.gguf) is all its parts.
//   - safetensors repositories: config.json, the tokenizer files, and model.safetensors or
//     model.safetensors.index.json (whose shards are added once the index is read:
//     safetensors_shards()).
// The same choice is made over the hub's file list and over a cached snapshot's.
#include <cstdint>
#include <string>
#include <vector>

namespace torchless::hub {

struct RepoFileEntry {
  std::string path;
  uint64_t size = 0;
};

struct FileSelection {
  std::vector<std::string> files;  // to download, in order
  std::string model_path;          // what the loader opens ("" for the snapshot directory)
  bool safetensors_index = false;  // files include model.safetensors.index.json
  std::string description;         // the choice, for the user ("Q4_K_M: x.gguf (1.2 GB)")
};

// Throws Error naming what is available when nothing matches (or when several GGUF models
// remain and none is a default).
FileSelection select_model_files(const std::vector<RepoFileEntry>& files, const std::string& quant,
                                 const std::string& repo);

// The shard files a model.safetensors.index.json names (its weight_map values), sorted and
// unique. Throws Error for a malformed index or a shard path that leaves the repository.
std::vector<std::string> safetensors_shards(const std::string& index_json);

// True when `path` names the quantisation `quant` (case-insensitive, as a whole word of the
// file name: Q4_K matches x-Q4_K.gguf, not x-Q4_K_M.gguf).
bool names_quant(const std::string& path, const std::string& quant);

std::string format_bytes(uint64_t bytes);  // "1.23 GB", "512 KB", "17 B"

}  // namespace torchless::hub
