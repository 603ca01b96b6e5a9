// Which files of a repository make the model asked for: GGUF defaults, quantisation names,
// split parts, safetensors shards; and the names of repositories and cache folders.
#include "torchless/hub/file_selection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "torchless/core/error.h"
#include "torchless/hub/repo_cache.h"
#include "torchless/hub/repo_spec.h"

namespace torchless::hub {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string selection_error(const std::vector<RepoFileEntry>& files, const std::string& quant) {
  try {
    select_model_files(files, quant, "org/repo");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "selected a model";
  return "";
}

const std::vector<RepoFileEntry> kQuants = {
    {"README.md", 10},           {"model-Q2_K.gguf", 500},  {"model-Q4_K_S.gguf", 900},
    {"model-Q4_K_M.gguf", 1000}, {"model-Q8_0.gguf", 1800}, {"mmproj-model-f16.gguf", 300},
    {"model-F16.gguf", 3000}};

TEST(FileSelection, DefaultIsQ4KM) {
  const FileSelection s = select_model_files(kQuants, "", "org/repo");
  EXPECT_THAT(s.files, ElementsAre("model-Q4_K_M.gguf"));
  EXPECT_EQ(s.model_path, "model-Q4_K_M.gguf");
  EXPECT_THAT(s.description, HasSubstr("Q4_K_M"));
}

TEST(FileSelection, WithoutQ4KMTheSmallestQ4OrQ8) {
  std::vector<RepoFileEntry> files = {
      {"m-Q8_0.gguf", 1800}, {"m-IQ4_XS.gguf", 800}, {"m-Q2_K.gguf", 100}, {"m-F16.gguf", 50}};
  EXPECT_THAT(select_model_files(files, "", "org/repo").files, ElementsAre("m-IQ4_XS.gguf"));
  files = {{"m-Q8_0.gguf", 1800}, {"m-F16.gguf", 3000}};
  EXPECT_THAT(select_model_files(files, "", "org/repo").files, ElementsAre("m-Q8_0.gguf"));
  files = {{"only-f16.gguf", 3000}, {"README.md", 1}};
  EXPECT_THAT(select_model_files(files, "", "org/repo").files, ElementsAre("only-f16.gguf"));
  files = {{"a-F16.gguf", 3000}, {"a-BF16.gguf", 3000}};
  EXPECT_THAT(selection_error(files, ""), AllOf(HasSubstr("org/repo:QUANT"), HasSubstr("a-BF16")));
}

TEST(FileSelection, QuantNamesAWholeWordInAnyCase) {
  EXPECT_THAT(select_model_files(kQuants, "q4_k_s", "org/repo").files,
              ElementsAre("model-Q4_K_S.gguf"));
  EXPECT_THAT(select_model_files(kQuants, "f16", "org/repo").files, ElementsAre("model-F16.gguf"));
  EXPECT_TRUE(names_quant("dir/x-Q4_K.gguf", "q4_k"));
  EXPECT_FALSE(names_quant("x-Q4_K_M.gguf", "Q4_K"));
  EXPECT_FALSE(names_quant("x-IQ4_XS.gguf", "Q4_XS"));
  EXPECT_FALSE(names_quant("x-BF16.gguf", "F16"));
  EXPECT_THAT(selection_error(kQuants, "Q5_K_M"),
              AllOf(HasSubstr("Q5_K_M"), HasSubstr("model-Q8_0.gguf (1.80 KB)")));
}

TEST(FileSelection, SplitPartsAreOneModel) {
  const std::vector<RepoFileEntry> files = {
      {"Q4_K_M/m-Q4_K_M-00002-of-00002.gguf", 600},
      {"Q4_K_M/m-Q4_K_M-00001-of-00002.gguf", 700},
      {"m-Q8_0-00001-of-00003.gguf", 10},  // incomplete: never chosen
      {"m-F16.gguf", 5000}};
  const FileSelection s = select_model_files(files, "", "org/repo");
  EXPECT_THAT(s.files, ElementsAre("Q4_K_M/m-Q4_K_M-00001-of-00002.gguf",
                                   "Q4_K_M/m-Q4_K_M-00002-of-00002.gguf"));
  EXPECT_EQ(s.model_path, "Q4_K_M/m-Q4_K_M-00001-of-00002.gguf");
  EXPECT_THAT(s.description, HasSubstr("2 parts"));
  EXPECT_THAT(selection_error(files, "Q8_0"), HasSubstr("no GGUF file for quantisation Q8_0"));
}

TEST(FileSelection, SafetensorsRepositoryTakesConfigIndexAndTokenizer) {
  const std::vector<RepoFileEntry> files = {{"config.json", 1},
                                            {"model.safetensors.index.json", 1},
                                            {"model-00001-of-00002.safetensors", 9},
                                            {"tokenizer.json", 1},
                                            {"tokenizer_config.json", 1},
                                            {"pytorch_model.bin", 9},
                                            {"README.md", 1}};
  const FileSelection s = select_model_files(files, "", "org/repo");
  EXPECT_THAT(s.files, ElementsAre("config.json", "model.safetensors.index.json", "tokenizer.json",
                                   "tokenizer_config.json"));
  EXPECT_TRUE(s.safetensors_index);
  EXPECT_EQ(s.model_path, "");
  EXPECT_THAT(selection_error({{"README.md", 1}}, ""), HasSubstr("no GGUF file"));
}

TEST(FileSelection, IndexNamesEveryShardOnceAndStaysInTheRepository) {
  EXPECT_THAT(safetensors_shards(R"({"weight_map": {"a": "s2.safetensors", "b": "s1.safetensors",
                                    "c": "s2.safetensors"}})"),
              ElementsAre("s1.safetensors", "s2.safetensors"));
  EXPECT_THROW(safetensors_shards(R"({"weight_map": {"a": "../../x"}})"), Error);
  EXPECT_THROW(safetensors_shards(R"({"weight_map": {"a": 3}})"), Error);
  EXPECT_THROW(safetensors_shards("{"), Error);
}

TEST(RepoSpec, ParsesRepoAndQuantAndRefusesEscapes) {
  const RepoSpec spec = parse_repo_spec("ggml-org/gemma-3-1b-it-GGUF:q4_k_m");
  EXPECT_EQ(spec.repo, "ggml-org/gemma-3-1b-it-GGUF");
  EXPECT_EQ(spec.quant, "q4_k_m");
  EXPECT_EQ(spec.revision, "main");
  EXPECT_EQ(spec.str(), "ggml-org/gemma-3-1b-it-GGUF:q4_k_m");
  for (const char* bad : {"model.gguf", "a/b/c", "../x", "a/..", "org--x/y", "/abs", "a/b:"}) {
    EXPECT_THROW(parse_repo_spec(bad), Error) << bad;
  }
  EXPECT_THROW(parse_repo_spec("a/b", "../main"), Error);
}

TEST(RepoCache, FolderNamesFollowHuggingFace) {
  EXPECT_EQ(repo_folder_name("org/name"), "models--org--name");
  EXPECT_EQ(repo_from_folder_name("models--org--name"), "org/name");
  EXPECT_EQ(repo_from_folder_name("datasets--org--name"), std::nullopt);
  EXPECT_EQ(format_bytes(999), "999 B");
  EXPECT_EQ(format_bytes(1234567), "1.23 MB");
}

}  // namespace
}  // namespace torchless::hub
