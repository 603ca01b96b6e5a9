// The hub from the command line, against the local FakeHub: pull prints the cached path,
// -hf on a model command downloads once and then runs from the cache without a request, and
// the downloaded model generates exactly what the local file does; list and rm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "app/cli_runner.h"
#include "hub/hub_test_repos.h"

namespace torchless::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

const std::vector<std::string> kGenerate = {"-p", "Once upon a time", "-n", "24", "--temp", "0"};

std::vector<std::string> generate_with(const std::vector<std::string>& model) {
  std::vector<std::string> args = {"generate"};
  args.insert(args.end(), model.begin(), model.end());
  args.insert(args.end(), kGenerate.begin(), kGenerate.end());
  return args;
}

TEST_F(HubTest, CliPullThenHfGeneratesWhatTheLocalFileDoes) {
  add_gguf_repo();
  const CliResult pulled = run_cli({"pull", kGgufRepo + ":F32"});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_EQ(pulled.out,
            (repo_dir(kGgufRepo) / "snapshots" / kCommit / "stories260K-F32.gguf").string() + "\n");
  EXPECT_THAT(pulled.err, HasSubstr("stories260K-F32.gguf"));
  const size_t before = hub_.request_count();

  const CliResult local = run_cli(generate_with({"-m", shared_path("models/stories260K.gguf")}));
  const CliResult hub = run_cli(generate_with({"-hf", kGgufRepo + ":F32"}));
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_EQ(hub.exit_code, 0) << hub.err;
  EXPECT_FALSE(local.out.empty());
  EXPECT_EQ(hub.out, local.out);
  EXPECT_EQ(hub_.request_count(), before) << "the cached model needs no request";
}

TEST_F(HubTest, CliHfDownloadsASplitModelOnFirstUse) {
  add_split_repo();
  const CliResult local = run_cli(generate_with({"-m", shared_path("models/stories260K.gguf")}));
  const CliResult hub = run_cli(generate_with({"--hf-repo", kSplitRepo}));
  ASSERT_EQ(hub.exit_code, 0) << hub.err;
  EXPECT_EQ(hub.out, local.out);
  const CliResult tokens = run_cli({"tokenize", "-hf", kSplitRepo, "-p", "Once", "--json"});
  EXPECT_EQ(tokens.exit_code, 0) << tokens.err;
  EXPECT_THAT(tokens.out, HasSubstr("\"ids\""));
}

TEST_F(HubTest, CliErrorsAreOneLine) {
  add_gguf_repo();
  hub_.require_token(kGgufRepo, "hf_secret");
  const CliResult gated = run_cli(generate_with({"-hf", kGgufRepo}));
  EXPECT_EQ(gated.exit_code, 1);
  EXPECT_THAT(gated.err, AllOf(HasSubstr("HF_TOKEN"), HasSubstr("licence")));
  EXPECT_EQ(std::count(gated.err.begin(), gated.err.end(), '\n'), 1) << gated.err;
  const CliResult none = run_cli({"generate", "-p", "x"});
  EXPECT_THAT(none.err, HasSubstr("-hf ORG/NAME"));
  const CliResult both = run_cli({"generate", "-m", "x.gguf", "-hf", kGgufRepo, "-p", "x"});
  EXPECT_NE(both.exit_code, 0);
  set_env("HF_HUB_OFFLINE", "1");
  const CliResult offline = run_cli({"pull", "test-org/absent"});
  EXPECT_EQ(offline.exit_code, 1);
  EXPECT_THAT(offline.err, HasSubstr("HF_HUB_OFFLINE=1"));
}

TEST_F(HubTest, CliListAndRm) {
  add_gguf_repo();
  ASSERT_EQ(run_cli({"pull", kGgufRepo + ":F32"}).exit_code, 0);
  const CliResult list = run_cli({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out,
              AllOf(HasSubstr(kGgufRepo), HasSubstr("1.19 MB"), HasSubstr("stories260K-F32.gguf")));
  const CliResult rm = run_cli({"rm", kGgufRepo});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_THAT(rm.out, HasSubstr("1.19 MB freed"));
  EXPECT_FALSE(fs::exists(repo_dir(kGgufRepo)));
  EXPECT_NE(run_cli({"rm", kGgufRepo}).exit_code, 0);
}

}  // namespace
}  // namespace torchless::test
