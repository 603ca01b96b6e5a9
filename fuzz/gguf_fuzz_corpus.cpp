// Writes a handful of small valid GGUF files into the directory given as argv[1]: the seed
// corpus of gguf_reader_fuzz (every metadata value type, nested arrays, several tensor types
// and alignments), so that fuzzing starts from deep inside the format.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"
#include "torchless/formats/gguf_writer.h"

namespace {

using namespace torchless;

std::vector<float> ramp(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 97) / 13.0f - 3.5f;
  return v;
}

void write_metadata_file(const std::filesystem::path& dir) {
  GgufWriter w;
  w.add("general.architecture", gguf_string("llama"));
  w.add("u8", gguf_u8(7));
  w.add("i8", gguf_i8(-7));
  w.add("u16", gguf_u16(700));
  w.add("i16", gguf_i16(-700));
  w.add("u32", gguf_u32(70000));
  w.add("i32", gguf_i32(-70000));
  w.add("u64", gguf_u64(7000000000));
  w.add("i64", gguf_i64(-7000000000));
  w.add("f32", gguf_f32(0.5f));
  w.add("f64", gguf_f64(0.25));
  w.add("bool", gguf_bool(true));
  w.add("tokens", gguf_string_array({"<s>", "</s>", "a", "bc"}));
  w.add("nested", gguf_array(GgufType::Array, {gguf_i32_array({1, 2}), gguf_i32_array({3})}));
  w.write_file(dir / "metadata.gguf");
}

void write_tensor_file(const std::filesystem::path& dir, const std::string& name, size_t alignment,
                       std::initializer_list<DType> types) {
  GgufWriter w;
  w.set_alignment(alignment);
  w.add("general.architecture", gguf_string("llama"));
  int i = 0;
  for (DType type : types) {
    const int64_t cols = dtype_block_size(type) == 1 ? 8 : dtype_block_size(type);
    const std::vector<float> v = ramp(2 * cols);
    w.add_tensor_from_f32("t" + std::to_string(i++), type, Shape{2, cols}, v);
  }
  w.write_file(dir / name);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    write_metadata_file(dir);
    write_tensor_file(dir, "legacy.gguf", 32, {DType::F32, DType::F16, DType::Q4_0, DType::Q8_0});
    write_tensor_file(dir, "legacy2.gguf", 1, {DType::BF16, DType::Q4_1, DType::Q5_0, DType::Q5_1});
    write_tensor_file(dir, "kquants.gguf", 64, {DType::Q4_K, DType::Q6_K});
    write_tensor_file(dir, "kquants2.gguf", 16, {DType::Q2_K, DType::Q3_K, DType::Q5_K});
    write_tensor_file(dir, "iquants.gguf", 32, {DType::IQ4_NL, DType::IQ4_XS});
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
