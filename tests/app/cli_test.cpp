#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "app/cli_runner.h"
#include "common/temp_dir.h"

namespace torchless::test {
namespace {

using nlohmann::json;

std::string stories() {
  return shared_path("models/stories260K.gguf");
}

json reference_case(int index) {
  std::ifstream in(shared_path("models/stories260K.reference.json"));
  return json::parse(in)["cases"][static_cast<size_t>(index)];
}

// A user error gives exactly one line on stderr and a non-zero exit, never a crash.
void expect_one_line_error(const CliResult& r, const std::string& fragment) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal";
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, UnknownOptionIsAnError) {
  expect_one_line_error(run_cli({"generate", "-m", stories(), "--no-such-option"}),
                        "no-such-option");
  expect_one_line_error(run_cli({"tokenize", "-m", stories(), "-p", "x", "--bogus"}), "bogus");
  expect_one_line_error(run_cli({"no-such-command"}), "no-such-command");
}

TEST(Cli, HelpAndVersionSucceed) {
  EXPECT_EQ(run_cli({"--help"}).exit_code, 0);
  EXPECT_EQ(run_cli({"generate", "--help"}).exit_code, 0);
  const CliResult r = run_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("torchless"), std::string::npos);
}

TEST(Cli, MissingModelFileNamesThePath) {
  expect_one_line_error(run_cli({"generate", "-m", "/nonexistent/model.gguf", "-p", "x"}),
                        "/nonexistent/model.gguf");
  expect_one_line_error(run_cli({"inspect", "/nonexistent/model.gguf"}), "/nonexistent/model.gguf");
}

TEST(Cli, CorruptModelFileIsAnError) {
  const auto path = std::filesystem::temp_directory_path() / "torchless_corrupt.gguf";
  {
    std::ifstream in(stories(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  expect_one_line_error(run_cli({"generate", "-m", path.string(), "-p", "x"}), "");
  std::filesystem::remove(path);
}

TEST(Cli, BadBackendNameIsAnError) {
  expect_one_line_error(run_cli({"generate", "-m", stories(), "-p", "x", "--backend", "tpu"}),
                        "tpu");
}

TEST(Cli, TokenizeJsonMatchesLlamaCpp) {
  const json c = reference_case(0);
  const CliResult r = run_cli({"tokenize", "-m", stories(), "-p", c["prompt"], "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["ids"], c["prompt_ids"]);
}

TEST(Cli, GenerateJsonReproducesReferenceGreedyTokens) {
  const json c = reference_case(1);
  const int n = static_cast<int>(c["greedy_ids"].size());
  const CliResult r = run_cli({"generate", "-m", stories(), "-p", c["prompt"], "-n",
                               std::to_string(n), "--temp", "0", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  EXPECT_EQ(out["prompt_tokens"], c["prompt_ids"]);
  EXPECT_EQ(out["tokens"], c["greedy_ids"]);
  EXPECT_EQ(out["text"], c["greedy_text"]);
  EXPECT_TRUE(out["timings"].contains("generated_tokens_per_s"));
}

TEST(Cli, InspectJsonDescribesTheModel) {
  const CliResult r = run_cli({"inspect", stories(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"llama\""), std::string::npos);
  EXPECT_NE(r.out.find("token_embd.weight"), std::string::npos);
}

TEST(Cli, ChatAnswersEachLineFromStdin) {
  const CliResult r = run_cli({"chat", "-m", stories(), "--temp", "0", "-n", "8"},
                              "Once upon a time\n/reset\nThe dog\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
}

TEST(Cli, PerplexityOfStoryTextIsLow) {
  const auto path = std::filesystem::temp_directory_path() / "torchless_story.txt";
  std::string story;
  for (int i = 0; i < 6; ++i) {
    story += "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
  }
  std::ofstream(path) << story;
  const CliResult r =
      run_cli({"perplexity", "-m", stories(), "-f", path.string(), "--ctx", "64", "--json"});
  std::filesystem::remove(path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  // A 512-token vocabulary: uniform guessing would give 512; the trained model knows these words.
  EXPECT_GT(out["perplexity"].get<double>(), 1.0);
  EXPECT_LT(out["perplexity"].get<double>(), 20.0);
  EXPECT_GE(out["chunks"].get<int>(), 1);
}

TEST(Cli, RandomModelLoadsAndBenchReportsBothTests) {
  const auto path = std::filesystem::temp_directory_path() / "torchless_random_q4.gguf";
  CliResult r =
      run_cli({"make-random-model", "-o", path.string(), "--dtype", "q4_0", "--vocab", "300",
               "--embd", "64", "--ff", "96", "--layers", "2", "--heads", "4", "--kv-heads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"bench", "-m", path.string(), "-p", "16", "-n", "4", "-r", "2", "-o", "json"});
  CliResult given = run_cli({"bench", "-m", path.string(), "-p", "0", "-n", "4", "-r", "1",
                             "--bandwidth-gbs", "250", "-o", "json"});
  std::filesystem::remove(path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["test"], "pp16");
  EXPECT_EQ(out[1]["test"], "tg4");
  EXPECT_GT(out[1]["mean"].get<double>(), 0.0);
  EXPECT_GT(out[0]["threads"].get<int>(), 0);  // the pool's real size, not the 0 of "default"
  EXPECT_GT(out[0]["params"].get<int64_t>(), 0);
  // --bandwidth-gbs replaces the device's peak in the fraction.
  ASSERT_EQ(given.exit_code, 0) << given.err;
  const json tg = json::parse(given.out).at(0);
  EXPECT_EQ(tg["bandwidth_gbs"].get<double>(), 250.0);
  EXPECT_DOUBLE_EQ(tg["bandwidth_fraction"].get<double>(),
                   tg["weight_bytes_per_token"].get<double>() * tg["mean"].get<double>() / 250e9);
}

// The family options of make-random-model reach the file: logits reads it back on the CPU.
TEST(Cli, RandomModelOfEachFamilyRuns) {
  const TempDir dir;
  const auto path = dir / "model.gguf";
  for (const std::vector<std::string>& family :
       {std::vector<std::string>{"--arch", "qwen2", "--qkv-bias", "--tied"},
        std::vector<std::string>{"--arch", "qwen3", "--qk-norm", "--head-dim", "48"},
        std::vector<std::string>{"--arch", "mistral", "--sliding-window", "2"}}) {
    std::vector<std::string> args = {"make-random-model",
                                     "-o",
                                     path.string(),
                                     "--dtype",
                                     "f32",
                                     "--vocab",
                                     "280",
                                     "--embd",
                                     "72",
                                     "--ff",
                                     "100",
                                     "--layers",
                                     "1",
                                     "--heads",
                                     "3",
                                     "--kv-heads",
                                     "1"};
    args.insert(args.end(), family.begin(), family.end());
    CliResult r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("(" + family[1] + ", f32 weights"), std::string::npos) << r.out;
    r = run_cli({"logits", "-m", path.string(), "--backend", "cpu", "--tokens", "1,7,9"});
    EXPECT_EQ(r.exit_code, 0) << family[1] << ": " << r.err;
  }
}

TEST(Cli, RandomModelRejectsBadShapes) {
  expect_one_line_error(
      run_cli({"make-random-model", "-o", "/tmp/x.gguf", "--heads", "5", "--kv-heads", "2"}),
      "KV heads");
}

}  // namespace
}  // namespace torchless::test
