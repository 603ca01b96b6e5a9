// The hub client end to end against a local hub (FakeHub): downloads into the standard cache
// layout, resumes, verifies, explains errors, works offline, and loads what it downloaded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "hub/hub_test_repos.h"
#include "torchless/core/error.h"
#include "torchless/formats/model_loader.h"
#include "torchless/hub/cache_admin.h"

namespace torchless::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

void expect_same_weights(const LoadedModel& a, const LoadedModel& b) {
  ASSERT_EQ(a.weights.all().size(), b.weights.all().size());
  for (const auto& [name, view] : a.weights.all()) {
    const HostTensorView& other = b.weights.get(name);
    ASSERT_EQ(view.nbytes, other.nbytes) << name;
    EXPECT_EQ(std::memcmp(view.data, other.data, view.nbytes), 0) << name;
  }
}

size_t requests_to(const FakeHub& hub, const std::string& fragment) {
  size_t n = 0;
  for (const LoggedRequest& r : hub.requests()) n += r.path.find(fragment) != std::string::npos;
  return n;
}

TEST_F(HubTest, FreshDownloadFillsTheStandardCacheLayout) {
  add_gguf_repo();
  const hub::ResolvedModel model = pull(kGgufRepo);
  const fs::path snapshot = repo_dir(kGgufRepo) / "snapshots" / kCommit;
  // No quantisation asked: Q4_K_M is the default.
  EXPECT_EQ(model.path, snapshot / "stories260K-Q4_K_M.gguf");
  EXPECT_EQ(model.commit, kCommit);
  EXPECT_FALSE(model.from_cache);
  EXPECT_EQ(file_bytes(repo_dir(kGgufRepo) / "refs" / "main"), kCommit);
  ASSERT_TRUE(fs::is_symlink(model.path));
  const std::string sha = FakeHub::sha256_hex(file_bytes(model.path));
  EXPECT_EQ(fs::read_symlink(model.path), fs::path("../../blobs") / sha);
  EXPECT_TRUE(fs::is_regular_file(repo_dir(kGgufRepo) / "blobs" / sha));
  // Only the chosen model file was fetched: not the F32 file, not the README.
  EXPECT_FALSE(fs::exists(snapshot / "stories260K-F32.gguf"));
  EXPECT_EQ(requests_to(hub_, "/cdn/"), 1u);
  for (const std::string& f : files_under(cache_dir()))
    EXPECT_THAT(f, Not(HasSubstr(".incomplete")));
  expect_same_weights(load_model(model.path), load_model(shared_file("models/stories260K.gguf")));
}

TEST_F(HubTest, QuantSuffixPicksThatFileWhateverItsCase) {
  add_gguf_repo();
  const hub::ResolvedModel model = pull(kGgufRepo + ":f32");
  EXPECT_EQ(model.path.filename(), "stories260K-F32.gguf");
  EXPECT_EQ(file_bytes(model.path), stories());
  EXPECT_THAT(
      pull_error(kGgufRepo + ":Q5_K_S"),
      AllOf(HasSubstr("no GGUF file for quantisation Q5_K_S"), HasSubstr("stories260K-F32.gguf")));
}

TEST_F(HubTest, SecondUseFindsTheCacheWithoutAnyRequest) {
  add_gguf_repo();
  const fs::path pulled = pull(kGgufRepo + ":F32").path;
  const size_t before = hub_.request_count();
  const hub::ResolvedModel again = use(kGgufRepo + ":F32");
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.path, pulled);
  EXPECT_EQ(hub_.request_count(), before);
  // A quantisation the cache lacks goes to the hub.
  EXPECT_FALSE(use(kGgufRepo + ":Q4_K_M").from_cache);
  EXPECT_GT(hub_.request_count(), before);
}

TEST_F(HubTest, DroppedConnectionIsResumedWithARangeRequest) {
  add_gguf_repo();
  constexpr size_t kDropAt = 300000;
  hub_.drop_once_after("stories260K-F32.gguf", kDropAt);
  const hub::ResolvedModel model = pull(kGgufRepo + ":F32");
  EXPECT_EQ(file_bytes(model.path), stories());
  std::vector<std::string> ranges;
  for (const LoggedRequest& r : hub_.requests()) {
    if (r.path.find("/cdn/") != std::string::npos) ranges.push_back(r.range);
  }
  EXPECT_THAT(ranges, ::testing::ElementsAre("", "bytes=300000-"));
}

TEST_F(HubTest, PartialFileOfAnEarlierRunIsResumed) {
  add_gguf_repo();
  const std::string bytes = stories();
  const fs::path blobs = repo_dir(kGgufRepo) / "blobs";
  fs::create_directories(blobs);
  std::ofstream(blobs / (FakeHub::sha256_hex(bytes) + ".incomplete"), std::ios::binary)
      << bytes.substr(0, 123457);
  const hub::ResolvedModel model = pull(kGgufRepo + ":F32");
  EXPECT_EQ(file_bytes(model.path), bytes);
  ASSERT_EQ(requests_to(hub_, "/cdn/"), 1u);
  for (const LoggedRequest& r : hub_.requests()) {
    if (r.path.find("/cdn/") != std::string::npos) {
      EXPECT_EQ(r.range, "bytes=123457-");
    }
  }
}

TEST_F(HubTest, ChecksumMismatchIsRefusedAndLeavesNothingInTheCache) {
  add_gguf_repo();
  hub_.corrupt("stories260K-F32.gguf");
  EXPECT_THAT(pull_error(kGgufRepo + ":F32"),
              AllOf(HasSubstr("SHA-256"), HasSubstr("stories260K-F32.gguf"), HasSubstr("deleted")));
  EXPECT_THAT(files_under(cache_dir()), IsEmpty());
}

TEST_F(HubTest, ErrorAnswersSayWhatToDo) {
  add_gguf_repo();
  hub_.answer_status(kGgufRepo, 401);
  EXPECT_THAT(pull_error(kGgufRepo), AllOf(HasSubstr("401"), HasSubstr("licence"),
                                           HasSubstr("HF_TOKEN"), HasSubstr("no token is set")));
  hub_.answer_status(kGgufRepo, 403);
  EXPECT_THAT(pull_error(kGgufRepo), AllOf(HasSubstr("403"), HasSubstr("gated or private")));
  hub_.answer_status(kGgufRepo, 500);
  EXPECT_THAT(pull_error(kGgufRepo), AllOf(HasSubstr("500"), HasSubstr("try again later")));
  EXPECT_THAT(pull_error("test-org/no-such-model"),
              AllOf(HasSubstr("404"), HasSubstr("no such repository")));
  EXPECT_THAT(files_under(cache_dir()), IsEmpty());
}

TEST_F(HubTest, GatedRepositoryOpensWithHfToken) {
  add_gguf_repo();
  hub_.require_token(kGgufRepo, "hf_secret");
  EXPECT_THAT(pull_error(kGgufRepo), HasSubstr("HF_TOKEN"));
  set_env("HF_TOKEN", "hf_secret");
  EXPECT_EQ(file_bytes(pull(kGgufRepo + ":F32").path), stories());
  // The token goes to the hub, never to the CDN the hub redirects to.
  for (const LoggedRequest& r : hub_.requests()) {
    if (r.path.find("/cdn/") != std::string::npos) {
      EXPECT_EQ(r.authorization, "");
    }
  }
}

TEST_F(HubTest, OfflineModeUsesOnlyTheCache) {
  add_gguf_repo();
  set_env("HF_HUB_OFFLINE", "1");
  EXPECT_THAT(pull_error(kGgufRepo),
              AllOf(HasSubstr("HF_HUB_OFFLINE=1"), HasSubstr("torchless pull")));
  EXPECT_EQ(hub_.request_count(), 0u);
  set_env("HF_HUB_OFFLINE", std::nullopt);
  const fs::path pulled = pull(kGgufRepo).path;
  const size_t before = hub_.request_count();
  set_env("HF_HUB_OFFLINE", "1");
  EXPECT_EQ(pull(kGgufRepo).path, pulled);
  EXPECT_EQ(use(kGgufRepo).path, pulled);
  EXPECT_EQ(hub_.request_count(), before);
}

TEST_F(HubTest, SplitGgufDownloadsEveryPartAndLoadsAsOneModel) {
  add_split_repo();
  const hub::ResolvedModel model = pull(kSplitRepo);
  EXPECT_EQ(model.path.filename(), "stories260K-Q8_0-00001-of-00003.gguf");
  for (int i = 2; i <= 3; ++i) {
    EXPECT_TRUE(
        fs::is_regular_file(model.path.parent_path() / gguf_split_name("stories260K-Q8_0", i, 3)));
  }
  EXPECT_FALSE(fs::exists(model.path.parent_path() / ".gitattributes"));
  expect_same_weights(load_model(model.path), load_model(shared_file("models/stories260K.gguf")));
  const size_t before = hub_.request_count();
  EXPECT_TRUE(use(kSplitRepo + ":q8_0").from_cache);
  EXPECT_EQ(hub_.request_count(), before);
}

TEST_F(HubTest, ShardedSafetensorsBringsConfigTokenizerAndEveryShard) {
  hub_.add_repo(kSafetensorsRepo, kCommit, safetensors_files());
  const hub::ResolvedModel model = pull(kSafetensorsRepo);
  EXPECT_EQ(model.path, repo_dir(kSafetensorsRepo) / "snapshots" / kCommit);
  for (const char* name : {"config.json", "model.safetensors.index.json", "tokenizer_config.json",
                           "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                           "model-00003-of-00003.safetensors"}) {
    EXPECT_TRUE(fs::is_regular_file(model.path / name)) << name;
  }
  EXPECT_FALSE(fs::exists(model.path / "original"));
  expect_same_weights(load_model(model.path), load_model(shared_file("golden/llama")));
  EXPECT_THAT(pull_error(kSafetensorsRepo + ":Q4_K_M"), HasSubstr("safetensors repository"));
  const size_t before = hub_.request_count();
  EXPECT_TRUE(use(kSafetensorsRepo).from_cache);
  EXPECT_EQ(hub_.request_count(), before);
}

TEST_F(HubTest, ListShowsCachedModelsAndRmRemovesOneQuantisation) {
  add_gguf_repo();
  pull(kGgufRepo + ":F32");
  pull(kGgufRepo + ":Q4_K_M");
  auto repos = hub::list_cached_repos(cache_dir());
  ASSERT_EQ(repos.size(), 1u);
  EXPECT_EQ(repos[0].repo, kGgufRepo);
  EXPECT_THAT(repos[0].models,
              ::testing::ElementsAre("stories260K-F32.gguf", "stories260K-Q4_K_M.gguf"));
  const uint64_t both = repos[0].size;
  EXPECT_GT(both, 2 * stories().size() - 1);
  const uint64_t freed =
      hub::remove_cached(cache_dir(), hub::parse_repo_spec(kGgufRepo + ":q4_k_m"));
  repos = hub::list_cached_repos(cache_dir());
  ASSERT_EQ(repos.size(), 1u);
  EXPECT_THAT(repos[0].models, ::testing::ElementsAre("stories260K-F32.gguf"));
  EXPECT_EQ(repos[0].size + freed, both);
  hub::remove_cached(cache_dir(), hub::parse_repo_spec(kGgufRepo));
  EXPECT_THAT(hub::list_cached_repos(cache_dir()), IsEmpty());
  EXPECT_THROW(hub::remove_cached(cache_dir(), hub::parse_repo_spec(kGgufRepo)), Error);
}

}  // namespace
}  // namespace torchless::test
