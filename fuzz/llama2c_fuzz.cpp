// libFuzzer target for the llama2.c readers: the checkpoint header check and loader (first
// input byte even) or the tokenizer.bin loader (odd), through a per-process temporary file
// since both take paths. Each must load or throw torchless::Error. A loaded tokenizer encodes and
// decodes a short string; a loaded checkpoint has both ends of each weight read (ASan checks them).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

#include "torchless/core/error.h"
#include "torchless/formats/llama2c.h"
#include "torchless/tokenizer/tokenizer.h"

namespace {

const std::filesystem::path& work_file() {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("torchless-llama2c-fuzz-" + std::to_string(::getpid()));
  return path;
}

void fuzz_checkpoint(std::span<const std::byte> bytes) {
  (void)torchless::looks_like_llama2c(bytes);
  const torchless::LoadedModel model = torchless::load_llama2c_model(work_file());
  volatile unsigned sum = 0;
  for (const auto& [name, t] : model.weights.all()) {
    if (t.nbytes == 0) continue;
    sum = sum + static_cast<unsigned>(t.data[0]) + static_cast<unsigned>(t.data[t.nbytes - 1]);
  }
}

void fuzz_tokenizer(int32_t n_vocab) {
  const auto tok = torchless::load_llama2c_tokenizer(work_file(), n_vocab);
  const auto ids = tok->encode("Once upon a time, \xC3\xA9\xFF\n");
  (void)tok->decode(ids);
  torchless::StreamDecoder stream(*tok);
  for (const int32_t id : ids) (void)stream.feed(id);
  (void)stream.flush();
}

// Removes the file when an input is done, so that no run leaves files behind.
struct RemoveAfter {
  ~RemoveAfter() {
    std::error_code ignored;
    std::filesystem::remove(work_file(), ignored);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const RemoveAfter cleanup;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  {
    std::ofstream out(work_file(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  try {
    if (data[0] % 2 == 0) {
      fuzz_checkpoint(bytes);
    } else {
      // n_vocab from the first byte: -1 (read to the end of the file) or 1..127.
      fuzz_tokenizer(data[0] == 1 ? -1 : data[0] / 2);
    }
  } catch (const torchless::Error&) {
  }
  return 0;
}
