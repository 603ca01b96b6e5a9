#include "torchless/formats/safetensors_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/loader_test_util.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"

namespace torchless {
namespace {

using namespace torchless::test;
using ::testing::HasSubstr;

std::vector<std::byte> u16_bytes(const std::vector<uint16_t>& v) {
  std::vector<std::byte> out(v.size() * 2);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// Expects parse() to throw an Error whose message contains `needle`.
void expect_error(const std::vector<std::byte>& bytes, const std::string& needle) {
  try {
    SafetensorsFile::parse(bytes, "hostile.safetensors");
    ADD_FAILURE() << "no error, expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
    EXPECT_THAT(e.what(), HasSubstr("hostile.safetensors"));
  }
}

TEST(Safetensors, TensorsAreViewsWithTheirValues) {
  const std::vector<float> a = random_floats(3 * 7, 11);
  const std::vector<float> b = random_floats(13, 12);
  std::vector<uint16_t> h, bf;
  for (float x : b) h.push_back(fp32_to_fp16(x)), bf.push_back(fp32_to_bf16(x));
  const std::vector<std::byte> bytes = make_safetensors({{"a", "F32", {3, 7}, float_bytes(a)},
                                                         {"h", "F16", {13}, u16_bytes(h)},
                                                         {"bf", "BF16", {1, 13}, u16_bytes(bf)}},
                                                        5, R"({"format":"pt"})");
  const auto file = SafetensorsFile::parse(bytes);
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->metadata().at("format"), "pt");

  const HostTensorView va = file->find("a")->view();
  EXPECT_EQ(va.dtype, DType::F32);
  EXPECT_EQ(va.shape, (Shape{3, 7}));
  EXPECT_EQ(va.data, bytes.data() + file->data_offset());  // a view, not a copy
  EXPECT_EQ(view_floats(va), a);

  const HostTensorView vh = file->find("h")->view();
  EXPECT_EQ(vh.dtype, DType::F16);
  EXPECT_EQ(vh.nbytes, 26u);
  EXPECT_EQ(std::memcmp(vh.data, h.data(), 26), 0);
  const HostTensorView vbf = file->find("bf")->view();
  EXPECT_EQ(vbf.dtype, DType::BF16);
  EXPECT_EQ(vbf.shape, (Shape{1, 13}));
  EXPECT_EQ(std::memcmp(vbf.data, bf.data(), 26), 0);
  EXPECT_EQ(file->find("missing"), nullptr);
}

TEST(Safetensors, OtherDtypesParseButCannotBeUsed) {
  std::vector<std::byte> ids(5 * 8, std::byte{1});
  const auto file = SafetensorsFile::parse(make_safetensors({{"ids", "I64", {5}, ids}}));
  const SafetensorsTensorInfo* info = file->find("ids");
  ASSERT_NE(info, nullptr);
  EXPECT_FALSE(info->dtype.has_value());
  try {
    info->view();
    ADD_FAILURE() << "I64 view accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'ids'"));
    EXPECT_THAT(e.what(), HasSubstr("I64"));
  }
}

TEST(Safetensors, HostileHeadersGiveClearErrors) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
  expect_error(std::vector<std::byte>(5), "too short");
  expect_error(raw_safetensors("{" + ok_entry + "}", 24, 1u << 30), "larger than the file");
  expect_error(raw_safetensors("{" + ok_entry + "}", 24, ~uint64_t{0}), "larger than the file");
  expect_error(raw_safetensors("{\"t\":{\"dtype\":", 24), "not valid JSON");
  expect_error(raw_safetensors("[1,2]", 24), "not a JSON object");
  expect_error(raw_safetensors(R"({"t":3})", 24), "not a JSON object");
  expect_error(raw_safetensors(R"({"t":{"dtype":"F32","shape":[2,3]}})", 24),
               "missing 'data_offsets'");
  expect_error(raw_safetensors(R"({"t":{"dtype":"Q9","shape":[2,3],"data_offsets":[0,24]}})", 24),
               "unknown dtype 'Q9'");
  expect_error(raw_safetensors(R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", 24),
               "reversed");
  expect_error(raw_safetensors(R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}})", 24),
               "past the end");
  expect_error(raw_safetensors(R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,-24]}})", 24),
               "data_offsets");
  expect_error(raw_safetensors(R"({"t":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}})", 24),
               "needs 32 bytes");
  expect_error(raw_safetensors(R"({"t":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", 24),
               "non-negative");
  expect_error(
      raw_safetensors(R"({"t":{"dtype":"F32","shape":[1,1,1,2,3],"data_offsets":[0,24]}})", 24),
      "rank 5");
  expect_error(
      raw_safetensors(
          R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}})", 24),
      "too many elements");
  expect_error(raw_safetensors("{" + ok_entry + "," + ok_entry + "}", 24), "'t' appears twice");
  expect_error(raw_safetensors(R"({"__metadata__":[1],)" + ok_entry + "}", 24), "__metadata__");
  expect_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                               24),
               "overlap");
}

TEST(Safetensors, EveryTruncationIsAnError) {
  const std::vector<std::byte> bytes =
      make_safetensors({{"x", "F32", {5, 3}, float_bytes(random_floats(15, 3))},
                        {"y", "F32", {7}, float_bytes(random_floats(7, 4))}});
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(SafetensorsFile::parse(cut), Error) << "truncated at " << n;
  }
  EXPECT_NO_THROW(SafetensorsFile::parse(bytes));
}

// Flipping any header byte must give an Error or a file whose views stay inside the buffer.
TEST(Safetensors, FlippedHeaderBytesNeverEscapeTheBuffer) {
  const std::vector<std::byte> bytes =
      make_safetensors({{"x", "F32", {5, 3}, float_bytes(random_floats(15, 5))},
                        {"y", "BF16", {9}, std::vector<std::byte>(18, std::byte{7})}});
  const size_t header_end = bytes.size() - 60 - 18;
  for (size_t i = 0; i < header_end; ++i) {
    for (uint8_t mask : {0x01, 0x10, 0x80}) {
      std::vector<std::byte> bad = bytes;
      bad[i] ^= std::byte{mask};
      try {
        const auto file = SafetensorsFile::parse(bad);
        for (const auto& t : file->tensors()) {
          ASSERT_GE(t.data, bad.data() + file->data_offset());
          ASSERT_LE(t.data + t.nbytes, bad.data() + bad.size());
        }
      } catch (const Error&) {
      }
    }
  }
}

TEST(Safetensors, EmptyTensorsAndEmptyHeaderAreAccepted) {
  const auto file = SafetensorsFile::parse(make_safetensors({{"empty", "F32", {0, 4}, {}}}));
  ASSERT_EQ(file->tensors().size(), 1u);
  EXPECT_EQ(file->tensors()[0].nbytes, 0u);
  EXPECT_TRUE(SafetensorsFile::parse(raw_safetensors("{}", 0))->tensors().empty());
}

TEST(Safetensors, OpenMapsTheGoldenFile) {
  const auto path = shared_path("golden/llama/model.safetensors");
  const auto file = SafetensorsFile::open(path);
  ASSERT_NE(file->mapping(), nullptr);
  const SafetensorsTensorInfo* embd = file->find("model.embed_tokens.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->shape, (Shape{512, 256}));
  EXPECT_GE(embd->data, file->mapping()->data());
  EXPECT_LE(embd->data + embd->nbytes, file->mapping()->data() + file->mapping()->size());
  EXPECT_THROW(SafetensorsFile::open(shared_dir() / "golden/llama/no-such.safetensors"), Error);
}

}  // namespace
}  // namespace torchless
