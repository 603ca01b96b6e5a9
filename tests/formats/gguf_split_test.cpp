// Split GGUF models (llama.cpp's gguf-split layout) load as one model: the parts are written
// from stories260K with the repository's own GgufWriter.
#include "torchless/formats/gguf_split.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "common/gguf_split_writer.h"
#include "formats/loader_test_util.h"
#include "torchless/core/error.h"
#include "torchless/formats/model_loader.h"

namespace torchless {
namespace {

using namespace torchless::test;
using ::testing::HasSubstr;

fs::path stories() {
  return shared_path("models/stories260K.gguf");
}

std::string load_error(const fs::path& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded " << path;
  return "";
}

TEST(GgufSplit, NamesParseAndFormat) {
  const auto name = parse_gguf_split_name("dir/model-Q4_K_M-00002-of-00003.gguf");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->prefix, "dir/model-Q4_K_M");
  EXPECT_EQ(name->number, 2);
  EXPECT_EQ(name->count, 3);
  EXPECT_EQ(gguf_split_name("m", 1, 12), "m-00001-of-00012.gguf");
  EXPECT_FALSE(parse_gguf_split_name("model-00004-of-00003.gguf").has_value());
  EXPECT_FALSE(parse_gguf_split_name("model-0001-of-0003.gguf").has_value());
  EXPECT_FALSE(parse_gguf_split_name("model.gguf").has_value());
}

TEST(GgufSplit, ThreePartsLoadAsTheWholeModel) {
  TempDir dir;
  const auto parts = write_split_gguf(stories(), (dir.path() / "stories").string(), 3);
  const LoadedModel whole = load_model(stories());
  const LoadedModel split = load_model(parts[0]);
  EXPECT_EQ(split.config.name, whole.config.name.empty() ? "stories" : whole.config.name);
  EXPECT_EQ(split.config.n_layers, whole.config.n_layers);
  EXPECT_EQ(split.weights.mapped_regions().size(), 3u);
  ASSERT_EQ(split.weights.all().size(), whole.weights.all().size());
  for (const auto& [name, view] : whole.weights.all()) {
    const HostTensorView& other = split.weights.get(name);
    ASSERT_EQ(view.nbytes, other.nbytes) << name;
    EXPECT_EQ(view.shape, other.shape) << name;
    EXPECT_EQ(std::memcmp(view.data, other.data, view.nbytes), 0) << name;
  }
}

TEST(GgufSplit, LaterPartOrMissingPartIsNamed) {
  TempDir dir;
  const auto parts = write_split_gguf(stories(), (dir.path() / "stories").string(), 3);
  EXPECT_THAT(load_error(parts[1]), HasSubstr("give the first part"));
  fs::remove(parts[2]);
  EXPECT_THAT(load_error(parts[0]), HasSubstr("stories-00003-of-00003.gguf"));
}

TEST(GgufSplit, SplitFileWithoutItsNamingIsRefused) {
  TempDir dir;
  const auto parts = write_split_gguf(stories(), (dir.path() / "stories").string(), 2);
  fs::rename(parts[0], dir.path() / "renamed.gguf");
  EXPECT_THAT(load_error(dir.path() / "renamed.gguf"), HasSubstr("not named like one"));
}

}  // namespace
}  // namespace torchless
