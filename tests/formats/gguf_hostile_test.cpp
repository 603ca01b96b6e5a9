// Hostile GGUF input: every corruption must end in a torchless::Error that names the problem,
// never a crash or a read outside the given bytes (run under the asan preset to check the
// latter; each input is copied into its own exact-size allocation so overreads are visible).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "formats/gguf_test_file.h"
#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

using testing::ByteBuilder;
using ::testing::HasSubstr;
using testing::make_test_gguf;
using testing::TestGguf;

// Parses a private copy of `bytes`; returns the Error message, or "" when parsing succeeds.
std::string parse_error(const std::vector<std::byte>& bytes) {
  const std::vector<std::byte> copy(bytes);
  try {
    GgufFile::parse(copy);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <typename T>
std::vector<std::byte> with(std::vector<std::byte> bytes, size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
  return bytes;
}

TEST(GgufHostile, TheTestFileItselfIsValid) {
  const TestGguf f = make_test_gguf();
  const std::vector<std::byte> copy(f.bytes);
  const auto file = GgufFile::parse(copy);
  EXPECT_EQ(file->alignment(), TestGguf::kAlignment);
  EXPECT_EQ(file->data_offset(), f.data_offset);
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->tensors()[2].data + file->tensors()[2].nbytes, copy.data() + copy.size());
}

TEST(GgufHostile, TruncationAtEveryByteThrows) {
  const TestGguf f = make_test_gguf();
  for (size_t len = 0; len < f.bytes.size(); ++len) {
    const std::vector<std::byte> prefix(f.bytes.begin(),
                                        f.bytes.begin() + static_cast<ptrdiff_t>(len));
    EXPECT_NE(parse_error(prefix), "") << "prefix of " << len << " bytes parsed";
  }
}

TEST(GgufHostile, BadMagicIsNamed) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, 0, 0x46554746)), HasSubstr("bad magic"));
}

TEST(GgufHostile, UnsupportedVersionsAreNamed) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.version, 1)),
              HasSubstr("unsupported version 1"));
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.version, 4)),
              HasSubstr("unsupported version 4"));
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.version, 0x03000000)), HasSubstr("big-endian"));
}

TEST(GgufHostile, HugeCountsAndLengthsAreRejectedBeforeAllocating) {
  const TestGguf f = make_test_gguf();
  const size_t length_fields[] = {f.tensor_count,       f.kv_count,     f.first_key_len,
                                  f.arch_value_len,     f.tokens_count, f.second_token_len,
                                  f.nested_inner_count, f.t0_name_len,  f.t2_name_len};
  for (size_t at : length_fields) {
    for (uint64_t v : {~uint64_t{0}, uint64_t{1} << 62, uint64_t{1} << 40,
                       static_cast<uint64_t>(f.bytes.size())}) {
      const std::string error = parse_error(with<uint64_t>(f.bytes, at, v));
      EXPECT_NE(error, "") << "field at " << at << " = " << v;
      EXPECT_THAT(error, HasSubstr("byte offset")) << error;
    }
  }
}

TEST(GgufHostile, SmallWrongCountsAreRejected) {
  const TestGguf f = make_test_gguf();
  // One more key than the file holds, a string longer than it is: the parser runs into other
  // fields and fails. (One more tensor may parse: padding and data can read as a tensor info.)
  EXPECT_NE(parse_error(with<uint64_t>(f.bytes, f.kv_count, 7)), "");
  EXPECT_NE(parse_error(with<uint64_t>(f.bytes, f.second_token_len, 3)), "");
}

TEST(GgufHostile, TensorDataOutsideTheDataSectionIsRejected) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint64_t>(f.bytes, f.t2_offset, 384)), HasSubstr("outside"));
  EXPECT_THAT(parse_error(with<uint64_t>(f.bytes, f.t2_offset, ~uint64_t{0} - 63)),
              HasSubstr("outside"));
  EXPECT_THAT(parse_error(with<uint64_t>(f.bytes, f.t1_ne1, 1000)), HasSubstr("outside"));
}

TEST(GgufHostile, MisalignedTensorOffsetIsRejected) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint64_t>(f.bytes, f.t1_offset, 96)),
              HasSubstr("not a multiple of the alignment"));
}

TEST(GgufHostile, OverflowingDimensionsAreRejected) {
  const TestGguf f = make_test_gguf();
  auto bytes = with<uint64_t>(f.bytes, f.t1_ne0, uint64_t{1} << 32);
  EXPECT_THAT(parse_error(with<uint64_t>(bytes, f.t1_ne1, uint64_t{1} << 32)),
              HasSubstr("overflows"));
  EXPECT_THAT(parse_error(with<uint64_t>(f.bytes, f.t1_ne1, uint64_t{1} << 63)),
              HasSubstr("too large"));
  // Element count fits but the byte size does not: f32 [2^31, 2^31] is 2^64 bytes.
  bytes = with<uint64_t>(f.bytes, f.t0_n_dims + 4, uint64_t{1} << 31);
  EXPECT_THAT(parse_error(with<uint64_t>(bytes, f.t0_n_dims + 12, uint64_t{1} << 31)),
              HasSubstr("byte size of tensor 'a'"));
}

TEST(GgufHostile, RowsThatAreNotWholeBlocksAreRejected) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint64_t>(f.bytes, f.t1_ne0, 48)), HasSubstr("not a multiple of"));
}

TEST(GgufHostile, TooManyDimensionsAreRejected) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.t0_n_dims, 5)), HasSubstr("dimensions"));
}

TEST(GgufHostile, UnknownTypesAreNamedWithTheirId) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.t1_type, 4)), HasSubstr("unknown type id 4"));
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.t1_type, 1000)),
              HasSubstr("unknown type id 1000"));
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.value_type_of_f64, 13)),
              HasSubstr("unknown value type 13"));
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.nested_inner_type, 77)),
              HasSubstr("unknown value type 77"));
}

TEST(GgufHostile, BadAlignmentIsRejected) {
  const TestGguf f = make_test_gguf();
  for (uint32_t a : {0u, 3u, 48u, 0x80000000u}) {
    EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.alignment_value, a)),
                HasSubstr("general.alignment"));
  }
  // The same four bytes declared as f32 instead of u32.
  EXPECT_THAT(parse_error(with<uint32_t>(f.bytes, f.alignment_value - 4, 6)),
              HasSubstr("general.alignment has type f32"));
}

TEST(GgufHostile, InvalidBoolIsRejected) {
  const TestGguf f = make_test_gguf();
  EXPECT_THAT(parse_error(with<uint8_t>(f.bytes, f.bool_value, 2)), HasSubstr("bool"));
}

// Renames by overwriting the one-character name bytes that follow a u64 length.
TEST(GgufHostile, DuplicateTensorNamesAreRejected) {
  const TestGguf f = make_test_gguf();
  auto bytes = f.bytes;
  bytes[f.t2_name_len + 8] = static_cast<std::byte>('a');
  EXPECT_THAT(parse_error(bytes), HasSubstr("duplicate tensor name 'a'"));
}

TEST(GgufHostile, DuplicateKeysAreRejected) {
  ByteBuilder b;
  b.put<uint32_t>(0x46554747);
  b.put<uint32_t>(2);
  b.put<uint64_t>(0);
  b.put<uint64_t>(2);
  for (int i = 0; i < 2; ++i) {
    b.str("general.name");
    b.put<uint32_t>(8);
    b.str("x");
  }
  EXPECT_THAT(parse_error(b.bytes), HasSubstr("duplicate metadata key 'general.name'"));
}

TEST(GgufHostile, DeeplyNestedArraysAreRejected) {
  ByteBuilder b;
  b.put<uint32_t>(0x46554747);
  b.put<uint32_t>(3);
  b.put<uint64_t>(0);
  b.put<uint64_t>(1);
  b.str("deep");
  b.put<uint32_t>(9);
  for (int depth = 0; depth < 100; ++depth) {
    b.put<uint32_t>(9);
    b.put<uint64_t>(1);
  }
  b.put<uint32_t>(0);
  b.put<uint64_t>(0);
  EXPECT_THAT(parse_error(b.bytes), HasSubstr("nested deeper"));
}

// Random byte overwrites: whatever the damage, the outcome is a clean parse or an Error.
TEST(GgufHostile, RandomCorruptionNeverEscapesAsAnythingButError) {
  const TestGguf f = make_test_gguf();
  constexpr uint32_t kSeed = 4242;
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<size_t> pos(0, f.data_offset - 1);
  std::uniform_int_distribution<int> byte(0, 255), count(1, 4);
  int failures = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto bytes = f.bytes;
    for (int k = count(rng); k > 0; --k) bytes[pos(rng)] = static_cast<std::byte>(byte(rng));
    try {
      const std::vector<std::byte> copy(bytes);
      GgufFile::parse(copy);
    } catch (const Error&) {
      ++failures;
    }
  }
  EXPECT_GT(failures, 100) << "seed " << kSeed;
}

}  // namespace
}  // namespace torchless
