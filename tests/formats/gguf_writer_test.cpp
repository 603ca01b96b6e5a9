// GgufWriter: write -> read round trips of every value type and tensor layout, the layout rules
// llama.cpp enforces, and byte-identical rewrites of files llama.cpp itself produced.
#include "torchless/formats/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

std::shared_ptr<GgufFile> reparse(const std::vector<std::byte>& bytes) {
  return GgufFile::parse(bytes);
}

TEST(GgufWriter, EveryScalarTypeRoundTrips) {
  GgufWriter w;
  w.add("u8", gguf_u8(250));
  w.add("i8", gguf_i8(-128));
  w.add("u16", gguf_u16(65535));
  w.add("i16", gguf_i16(-12345));
  w.add("u32", gguf_u32(4000000000u));
  w.add("i32", gguf_i32(std::numeric_limits<int32_t>::min()));
  w.add("u64", gguf_u64(~uint64_t{0}));
  w.add("i64", gguf_i64(std::numeric_limits<int64_t>::min()));
  w.add("f32", gguf_f32(1e-5f));
  w.add("f64", gguf_f64(-3.141592653589793));
  w.add("bool", gguf_bool(true));
  w.add("str", gguf_string("h\xC3\xA9llo\n\0x"));
  w.add("empty", gguf_string(""));
  const std::vector<std::byte> bytes = w.to_bytes();
  const auto file = reparse(bytes);
  EXPECT_EQ(file->version(), 3u);
  ASSERT_EQ(file->metadata().size(), 13u);
  EXPECT_EQ(file->metadata()[0].first, "u8");  // order is kept
  EXPECT_EQ(file->get("u8").type, GgufType::UInt8);
  EXPECT_EQ(file->get("u8").as_u64(), 250u);
  EXPECT_EQ(file->get("i8").as_i64(), -128);
  EXPECT_EQ(file->get("u16").as_u64(), 65535u);
  EXPECT_EQ(file->get("i16").as_i64(), -12345);
  EXPECT_EQ(file->get("u32").as_u64(), 4000000000u);
  EXPECT_EQ(file->get("i32").as_i64(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(file->get("u64").as_u64(), ~uint64_t{0});
  EXPECT_THROW(file->get("u64").as_i64(), Error);
  EXPECT_EQ(file->get("i64").as_i64(), std::numeric_limits<int64_t>::min());
  EXPECT_THROW(file->get("i64").as_u64(), Error);
  EXPECT_EQ(file->get("f32").type, GgufType::Float32);
  EXPECT_EQ(static_cast<float>(file->get("f32").as_f64()), 1e-5f);
  EXPECT_EQ(file->get("f64").as_f64(), -3.141592653589793);
  EXPECT_TRUE(file->get("bool").as_bool());
  EXPECT_EQ(file->get("str").as_string(), "h\xC3\xA9llo\n");  // the literal stops at \0
  EXPECT_EQ(file->get("empty").as_string(), "");
}

TEST(GgufWriter, ArraysIncludingNestedOnesRoundTrip) {
  GgufWriter w;
  w.add("strings", gguf_string_array({"a", "", "\xE2\x96\x81the", std::string(300, 'z')}));
  w.add("floats", gguf_f32_array({0.5f, -2.0f, 1e30f}));
  w.add("ints", gguf_i32_array({1, -1, 7}));
  w.add("empty", gguf_array(GgufType::UInt64, {}));
  w.add("bools", gguf_array(GgufType::Bool, {gguf_bool(false), gguf_bool(true)}));
  w.add("nested",
        gguf_array(GgufType::Array, {gguf_i32_array({1, 2}), gguf_i32_array({}),
                                     gguf_array(GgufType::Array, {gguf_string_array({"deep"})})}));
  const std::vector<std::byte> bytes = w.to_bytes();
  const auto file = reparse(bytes);
  const std::vector<std::string> strings = file->get("strings").as_string_list();
  ASSERT_EQ(strings.size(), 4u);
  EXPECT_EQ(strings[2], "\xE2\x96\x81the");
  EXPECT_EQ(strings[3], std::string(300, 'z'));
  EXPECT_EQ(file->get("floats").as_f32_list(), (std::vector<float>{0.5f, -2.0f, 1e30f}));
  EXPECT_EQ(file->get("ints").as_i64_list(), (std::vector<int64_t>{1, -1, 7}));
  EXPECT_EQ(file->get("empty").as_array().element_type, GgufType::UInt64);
  EXPECT_TRUE(file->get("empty").as_array().items.empty());
  EXPECT_TRUE(file->get("bools").as_array().items[1].as_bool());
  const GgufArray& nested = file->get("nested").as_array();
  ASSERT_EQ(nested.items.size(), 3u);
  EXPECT_EQ(nested.items[0].as_i64_list(), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(nested.items[1].as_array().items.empty());
  EXPECT_EQ(nested.items[2].as_array().items[0].as_string_list()[0], "deep");
}

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng() & 0xFF);
  return b;
}

TEST(GgufWriter, TensorsRoundTripAtAlignedOffsets) {
  for (size_t alignment : {size_t{1}, size_t{32}, size_t{64}, size_t{4096}}) {
    GgufWriter w;
    w.set_alignment(alignment);
    w.add("general.architecture", gguf_string("llama"));
    struct Spec {
      const char* name;
      DType dtype;
      Shape shape;
    };
    const Spec specs[] = {{"a", DType::F32, Shape{3, 5}},
                          {"b", DType::Q4_0, Shape{7, 64}},
                          {"c", DType::F16, Shape{33}},
                          {"d", DType::Q6_K, Shape{2, 1, 256}},
                          {"e", DType::BF16, Shape{2, 3, 1, 5}}};
    std::vector<std::vector<std::byte>> data;
    for (size_t i = 0; i < std::size(specs); ++i) {
      const Spec& s = specs[i];
      data.push_back(random_bytes(
          dtype_row_bytes(s.dtype, s.shape.cols()) * static_cast<size_t>(s.shape.rows()),
          static_cast<uint32_t>(i + 1)));
      w.add_tensor(s.name, s.dtype, s.shape, data.back());
    }
    const std::vector<std::byte> bytes = w.to_bytes();
    const auto file = reparse(bytes);
    EXPECT_EQ(file->alignment(), alignment);
    EXPECT_EQ(file->data_offset() % alignment, 0u);
    ASSERT_EQ(file->tensors().size(), std::size(specs));
    uint64_t expected_offset = 0;
    for (size_t i = 0; i < std::size(specs); ++i) {
      const GgufTensorInfo& t = file->tensors()[i];
      EXPECT_EQ(t.name, specs[i].name);
      EXPECT_EQ(t.dtype, specs[i].dtype);
      EXPECT_EQ(t.shape, specs[i].shape);
      // llama.cpp requires each tensor right after the previous one, padded to the alignment.
      EXPECT_EQ(t.offset, expected_offset) << t.name;
      expected_offset += (t.nbytes + alignment - 1) / alignment * alignment;
      ASSERT_EQ(t.nbytes, data[i].size());
      EXPECT_EQ(std::memcmp(t.data, data[i].data(), t.nbytes), 0) << t.name;
    }
    EXPECT_EQ(bytes.size(), file->data_offset() + expected_offset);
  }
}

TEST(GgufWriter, QuantisesFromFloats) {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal;
  std::vector<float> values(3 * 256);
  for (float& v : values) v = normal(rng);
  GgufWriter w;
  w.add_tensor_from_f32("w", DType::Q8_0, Shape{3, 256}, values);
  const std::vector<std::byte> bytes = w.to_bytes();
  const auto file = reparse(bytes);
  const GgufTensorInfo& t = file->tensors().at(0);
  std::vector<float> back(values.size());
  dequantize_row(DType::Q8_0, t.data, back.data(), 3 * 256);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_NEAR(back[i], values[i], 0.03) << i;
}

TEST(GgufWriter, WritesFilesThatOpenMapped) {
  const auto path = std::filesystem::temp_directory_path() / "torchless_gguf_writer_test.gguf";
  GgufWriter w;
  w.add("general.name", gguf_string("tiny"));
  const std::vector<float> v = {1.0f, 2.0f, 3.0f};
  w.add_tensor("v", DType::F32, Shape{3}, std::as_bytes(std::span<const float>(v)));
  w.write_file(path);
  const auto file = GgufFile::open(path);
  EXPECT_EQ(file->get_string("general.name", ""), "tiny");
  EXPECT_EQ(reinterpret_cast<const float*>(file->find_tensor("v")->data)[2], 3.0f);
  std::filesystem::remove(path);
  EXPECT_THROW(w.write_file("/nonexistent-dir/x.gguf"), Error);
}

TEST(GgufWriter, RefusesInvalidInput) {
  GgufWriter w;
  w.add("k", gguf_u8(1));
  EXPECT_THROW(w.add("k", gguf_u8(2)), Error);
  EXPECT_THROW(w.set_alignment(0), Error);
  EXPECT_THROW(w.set_alignment(24), Error);
  EXPECT_THROW(w.add("general.alignment", gguf_u32(3)), Error);
  GgufValue too_big = gguf_u8(0);
  too_big.value = uint64_t{300};
  EXPECT_THROW(w.add("big", too_big), Error);
  EXPECT_THROW(w.add("mixed", gguf_array(GgufType::Int32, {gguf_i32(1), gguf_string("x")})), Error);
  const std::vector<std::byte> data(10);
  w.add_tensor("t", DType::I8, Shape{10}, data);
  EXPECT_THROW(w.add_tensor("t", DType::I8, Shape{10}, data), Error);
  EXPECT_THROW(w.add_tensor("u", DType::F32, Shape{10}, data), Error);
  EXPECT_THROW(w.add_tensor("q", DType::Q8_0, Shape{10}, data), Error);  // not whole blocks
}

// Rewriting a llama.cpp-made file from what the reader saw must reproduce it byte for byte:
// same metadata encoding, tensor order, offsets and padding.
std::vector<std::byte> rewrite(const GgufFile& file) {
  GgufWriter w;
  w.set_alignment(file.alignment());
  for (const auto& [key, value] : file.metadata()) {
    if (key != "general.alignment") w.add(key, value);
  }
  for (const GgufTensorInfo& t : file.tensors()) {
    w.add_tensor(t.name, t.dtype, t.shape, std::span<const std::byte>(t.data, t.nbytes));
  }
  return w.to_bytes();
}

TEST(GgufWriter, RewritesLlamaCppFilesByteForByte) {
  for (const char* rel :
       {"models/stories260K.gguf", "golden/qwen2/model-q4_k.gguf", "golden/llama/model-q8_0.gguf",
        "golden/llama3-ropescaling/model-f32.gguf"}) {
    const std::string path = std::string(TORCHLESS_SOURCE_DIR) + "/../shared/" + rel;
    ASSERT_TRUE(std::filesystem::exists(path)) << "missing shared file " << path;
    const auto file = GgufFile::open(path);
    const std::vector<std::byte> bytes = rewrite(*file);
    const auto original = file->mapping()->bytes();
    ASSERT_EQ(bytes.size(), original.size()) << rel;
    EXPECT_EQ(std::memcmp(bytes.data(), original.data(), bytes.size()), 0) << rel;
  }
}

}  // namespace
}  // namespace torchless
