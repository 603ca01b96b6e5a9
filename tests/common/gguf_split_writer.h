#pragma once
// Writes a GGUF model again with the repository's own GgufWriter: as it is (plus optional
// metadata), or split into parts the way llama.cpp's gguf-split does (PREFIX-0000i-of-0000N.gguf,
// the first with all metadata, every part with split.no / split.count / split.tensors.count and
// a consecutive share of the tensors).
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "torchless/formats/gguf_file.h"
#include "torchless/formats/gguf_split.h"
#include "torchless/formats/gguf_writer.h"

namespace torchless::test {

namespace gguf_split_detail {

inline void add_metadata(const GgufFile& src, GgufWriter& writer) {
  writer.set_alignment(src.alignment());
  for (const auto& [key, value] : src.metadata()) {
    if (key != "general.alignment") writer.add(key, value);
  }
}

inline void add_tensors(const GgufFile& src, GgufWriter& writer, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    const GgufTensorInfo& t = src.tensors()[i];
    writer.add_tensor(t.name, t.dtype, t.shape, {t.data, t.nbytes});
  }
}

}  // namespace gguf_split_detail

// A copy of `src` with extra metadata (so that it differs in bytes but loads the same).
inline void rewrite_gguf(const std::filesystem::path& src, const std::filesystem::path& dst,
                         const std::vector<std::pair<std::string, GgufValue>>& extra = {}) {
  const auto file = GgufFile::open(src);
  GgufWriter writer;
  gguf_split_detail::add_metadata(*file, writer);
  for (const auto& [key, value] : extra) writer.add(key, value);
  gguf_split_detail::add_tensors(*file, writer, 0, file->tensors().size());
  writer.write_file(dst);
}

// Returns the part paths, first part first.
inline std::vector<std::filesystem::path> write_split_gguf(const std::filesystem::path& src,
                                                           const std::string& prefix, int parts) {
  const auto file = GgufFile::open(src);
  const size_t n = file->tensors().size();
  std::vector<std::filesystem::path> paths;
  for (int p = 0; p < parts; ++p) {
    GgufWriter writer;
    if (p == 0) {
      gguf_split_detail::add_metadata(*file, writer);
    } else {
      writer.set_alignment(file->alignment());
    }
    writer.add(kGgufSplitNo, gguf_u16(static_cast<uint16_t>(p)));
    writer.add(kGgufSplitCount, gguf_u16(static_cast<uint16_t>(parts)));
    writer.add(kGgufSplitTensorsCount, gguf_i32(static_cast<int32_t>(n)));
    const size_t begin = n * static_cast<size_t>(p) / static_cast<size_t>(parts);
    const size_t end = n * static_cast<size_t>(p + 1) / static_cast<size_t>(parts);
    gguf_split_detail::add_tensors(*file, writer, begin, end);
    paths.emplace_back(gguf_split_name(prefix, p + 1, parts));
    writer.write_file(paths.back());
  }
  return paths;
}

}  // namespace torchless::test
