// libFuzzer target for the Hugging Face tokenizer loader: the input is the content of a
// tokenizer.json (in a per-process temporary directory, since the loader takes a directory).
// Loading must succeed or throw torchless::Error; a loaded tokenizer then encodes and decodes a
// short mixed string.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "torchless/core/error.h"
#include "torchless/tokenizer/tokenizer.h"

namespace {

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("torchless-hf-fuzz-" + std::to_string(::getpid()));
  return dir;
}

// Removes the directory when an input is done, so that no run leaves files behind.
struct RemoveAfter {
  ~RemoveAfter() {
    std::error_code ignored;
    std::filesystem::remove_all(work_dir(), ignored);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const RemoveAfter cleanup;
  std::filesystem::create_directories(work_dir());
  {
    std::ofstream out(work_dir() / "tokenizer.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto tok = torchless::load_tokenizer_from_hf(work_dir());
    for (const bool special : {false, true}) {
      torchless::EncodeOptions opts;
      opts.parse_special = special;
      const auto ids = tok->encode(" Hello wörld\n\xF0\x9F\x98\x80 12 <s>\xFF", opts);
      (void)tok->decode(ids);
      torchless::StreamDecoder stream(*tok);
      for (const int32_t id : ids) (void)stream.feed(id);
      (void)stream.flush();
    }
    for (int32_t id = 0; id < tok->n_vocab() && id < 64; ++id) {
      (void)tok->token_to_piece(id, true);
      (void)tok->token_text(id);
    }
  } catch (const torchless::Error&) {
  }
  return 0;
}
