#pragma once
// A small valid GGUF built byte by byte (independently of GgufWriter), remembering where each
// field lies so that hostile tests can corrupt exactly one of them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace torchless::testing {

class ByteBuilder {
 public:
  template <typename T>
  size_t put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
    return at;
  }
  // Returns the offset of the u64 length.
  size_t str(std::string_view s) {
    const size_t at = put<uint64_t>(s.size());
    for (char c : s) bytes.push_back(static_cast<std::byte>(c));
    return at;
  }
  void pad(size_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(std::byte{0});
  }
  template <typename T>
  void set(size_t at, T v) {
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  std::vector<std::byte> bytes;
};

struct TestGguf {
  std::vector<std::byte> bytes;
  // Offsets of fields (u64 unless noted).
  size_t version = 4;  // u32
  size_t tensor_count = 8, kv_count = 16;
  size_t first_key_len = 0, arch_value_len = 0, alignment_value = 0;  // alignment: u32
  size_t tokens_count = 0, second_token_len = 0, nested_inner_type = 0 /*u32*/,
         nested_inner_count = 0, bool_value = 0 /*u8*/, value_type_of_f64 = 0 /*u32*/;
  size_t t0_name_len = 0, t0_n_dims = 0 /*u32*/, t1_ne0 = 0, t1_ne1 = 0, t1_type = 0 /*u32*/,
         t1_offset = 0, t2_name_len = 0, t2_offset = 0;
  size_t data_offset = 0;
  static constexpr uint32_t kAlignment = 64;
};

// Header, 6 metadata entries (string, u32 alignment 64, array of strings, array of arrays of
// i32, bool, f64) and three tensors: "a" f32 [3, 8], "b" q8_0 [2, 64], "c" f16 [32]. The last
// tensor ends exactly at the end of the file, so every shorter prefix is invalid.
inline TestGguf make_test_gguf() {
  TestGguf f;
  ByteBuilder b;
  b.put<uint32_t>(0x46554747);
  b.put<uint32_t>(3);
  b.put<uint64_t>(3);
  b.put<uint64_t>(6);
  f.first_key_len = b.str("general.architecture");
  b.put<uint32_t>(8);
  f.arch_value_len = b.str("llama");
  b.str("general.alignment");
  b.put<uint32_t>(4);
  f.alignment_value = b.put<uint32_t>(TestGguf::kAlignment);
  b.str("tokenizer.ggml.tokens");
  b.put<uint32_t>(9);
  b.put<uint32_t>(8);
  f.tokens_count = b.put<uint64_t>(3);
  b.str("a");
  f.second_token_len = b.str("bc");
  b.str("");
  b.str("test.nested");
  b.put<uint32_t>(9);
  b.put<uint32_t>(9);
  b.put<uint64_t>(2);
  f.nested_inner_type = b.put<uint32_t>(5);
  f.nested_inner_count = b.put<uint64_t>(2);
  b.put<int32_t>(1);
  b.put<int32_t>(-2);
  b.put<uint32_t>(5);
  b.put<uint64_t>(1);
  b.put<int32_t>(3);
  b.str("test.flag");
  b.put<uint32_t>(7);
  f.bool_value = b.put<uint8_t>(1);
  b.str("test.f64");
  f.value_type_of_f64 = b.put<uint32_t>(12);
  b.put<double>(-0.25);

  f.t0_name_len = b.str("a");
  f.t0_n_dims = b.put<uint32_t>(2);
  b.put<uint64_t>(8);
  b.put<uint64_t>(3);
  b.put<uint32_t>(0);
  b.put<uint64_t>(0);  // 96 bytes -> next at 128
  b.str("b");
  b.put<uint32_t>(2);
  f.t1_ne0 = b.put<uint64_t>(64);
  f.t1_ne1 = b.put<uint64_t>(2);
  f.t1_type = b.put<uint32_t>(8);
  f.t1_offset = b.put<uint64_t>(128);  // 136 bytes -> next at 320
  f.t2_name_len = b.str("c");
  b.put<uint32_t>(1);
  b.put<uint64_t>(32);
  b.put<uint32_t>(1);
  f.t2_offset = b.put<uint64_t>(320);  // 64 bytes -> ends at 384
  b.pad(TestGguf::kAlignment);
  f.data_offset = b.bytes.size();
  for (size_t i = 0; i < 384; ++i) b.bytes.push_back(static_cast<std::byte>((i * 37 + 11) & 0xFF));
  f.bytes = std::move(b.bytes);
  return f;
}

}  // namespace torchless::testing
