// The command line as llama.cpp and Ollama users type it (issue 11, items 10, 11 and 13):
// llama.cpp's flag spellings, errors that point at the subcommand's help, one way to ask for
// JSON, and messages that read right.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "app/cli_runner.h"
#include "common/temp_dir.h"

namespace torchless::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string stories() {
  return shared_path("models/stories260K.gguf");
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::vector<int> greedy_tokens(std::vector<std::string> extra) {
  std::vector<std::string> args = {"generate", "-m", stories(), "-p", "Once upon a time",
                                   "-n",       "6",  "--temp",  "0",  "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? json::parse(r.out)["tokens"].get<std::vector<int>>()
                          : std::vector<int>{};
}

TEST(CliConventions, LlamaCppSpellingsMeanWhatTheyMeanThere) {
  const std::vector<int> plain = greedy_tokens({});
  ASSERT_EQ(plain.size(), 6u);
  EXPECT_EQ(greedy_tokens({"-c", "64"}), plain);
  EXPECT_EQ(greedy_tokens({"--ctx-size", "64"}), plain);
  EXPECT_EQ(greedy_tokens({"-ngl", "0"}), plain);
  EXPECT_EQ(greedy_tokens({"--n-gpu-layers", "99", "--backend", "CPU"}), plain);
  EXPECT_EQ(greedy_tokens({"--output-format", "json"}), plain);
}

TEST(CliConventions, PromptFromStdinWithDashF) {
  const CliResult r = run_cli(
      {"generate", "-m", stories(), "-f", "-", "-n", "3", "--temp", "0", "--json"}, "Once upon");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const CliResult p =
      run_cli({"generate", "-m", stories(), "-p", "Once upon", "-n", "3", "--temp", "0", "--json"});
  EXPECT_EQ(json::parse(r.out)["tokens"], json::parse(p.out)["tokens"]);
}

TEST(CliConventions, MultiLetterShortFlagsAreNotGluedValues) {
  // -cnv is llama.cpp's conversation mode, never "-c nv".
  CliResult r = run_cli({"generate", "-m", stories(), "-p", "x", "-cnv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("torchless chat"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("nv"), r.err.find("-cnv") + 2) << r.err;
  r = run_cli(
      {"chat", "-m", stories(), "-cnv", "-sys", "You are a storyteller.", "--temp", "0", "-n", "4"},
      "Hello\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  // A glued value is refused, with the spelling that works.
  r = run_cli({"generate", "-m", stories(), "-p", "x", "-n64"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("-n 64"), std::string::npos) << r.err;
}

TEST(CliConventions, ParseErrorsPointAtTheSubcommandHelpAndSayNotANumber) {
  CliResult r = run_cli({"generate", "-m", stories(), "-p", "x", "--top-k", "abc"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--top-k: 'abc' is not a number"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("see torchless generate --help"), std::string::npos) << r.err;
  r = run_cli({"perplexity", "-m", stories(), "-f", "x", "--ctx", "1e999"});
  EXPECT_NE(r.err.find("not a number"), std::string::npos) << r.err;
  EXPECT_LT(r.err.size(), 200u) << r.err;  // no 309-digit range
  r = run_cli({"tokenize", "-m", stories(), "--bogus"});
  EXPECT_NE(r.err.find("see torchless tokenize --help"), std::string::npos) << r.err;
}

TEST(CliConventions, ReversePromptStopsTheOutput) {
  const CliResult full =
      run_cli({"generate", "-m", stories(), "-p", "Once upon a time", "-n", "40", "--temp", "0"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const CliResult r = run_cli({"generate", "-m", stories(), "-p", "Once upon a time", "-n", "40",
                               "--temp", "0", "-r", "little"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NE(full.out.find("little"), std::string::npos) << full.out;
  EXPECT_EQ(r.out.substr(0, r.out.size() - 1), full.out.substr(0, full.out.find("little") + 6));
}

TEST(CliConventions, LogitBiasBansATokenAndMirostatRuns) {
  const std::vector<int> plain = greedy_tokens({});
  ASSERT_FALSE(plain.empty());
  const std::vector<int> banned =
      greedy_tokens({"--logit-bias", std::to_string(plain[0]) + "-inf"});
  ASSERT_FALSE(banned.empty());
  EXPECT_NE(banned[0], plain[0]);
  EXPECT_EQ(greedy_tokens({"-l", std::to_string(plain[0]) + "+0"}), plain);
  const CliResult r = run_cli({"generate", "-m", stories(), "-p", "Once", "-n", "8",
                               "--dry-multiplier", "0.8", "--mirostat", "2", "--typical", "0.9",
                               "--frequency-penalty", "0.5", "--seed", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["tokens"].size(), 8u);
}

// Greedy on a prompt that repeats "Lily and Tom.": the model goes on with " Tom", which DRY
// penalises as extending a long repeat, unless a breaker ends the prompt: "and" (one token) or
// "y and" (spanning "Lily" and " and"); "none" and breakers absent from the text change nothing.
TEST(CliConventions, DrySequenceBreakersStopTheRepeatAtTheBreaker) {
  const std::string prompt = "Lily and Tom. Lily and Tom. Lily and Tom. Lily and";
  auto next = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "-m", stories(), "-p", prompt,
                                     "-n",       "2",  "--temp",  "0",  "--dry-allowed-length",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(prompt.size(), 4);  // the continuation's first word
  };
  ASSERT_EQ(next({}), " Tom");
  EXPECT_NE(next({"--dry-multiplier", "3"}), " Tom");
  EXPECT_NE(next({"--dry-multiplier", "3", "--dry-sequence-breaker", "none"}), " Tom");
  EXPECT_NE(next({"--dry-multiplier", "3", "--dry-sequence-breaker", "x"}), " Tom");
  EXPECT_EQ(next({"--dry-multiplier", "3", "--dry-sequence-breaker", "and"}), " Tom");
  EXPECT_EQ(next({"--dry-multiplier", "3", "--dry-sequence-breaker", "x", "--dry-sequence-breaker",
                  "y and"}),
            " Tom");
}

TEST(CliConventions, MirostatV1RunsAndOtherVersionsAreRefused) {
  const CliResult r = run_cli({"generate", "-m", stories(), "-p", "Once", "-n", "8", "--mirostat",
                               "1", "--mirostat-ent", "3", "--seed", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["tokens"].size(), 8u);
  const CliResult bad = run_cli({"generate", "-m", stories(), "-p", "x", "--mirostat", "3"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--mirostat must be 0 (off), 1 or 2"), std::string::npos) << bad.err;
}

// The KV cache's size in the memory check tells its type: stories260K has 5 layers of 4 KV
// heads of 8, so 1e9 positions take 2 * 5 * 1e9 * 32 elements.
TEST(CliConventions, KvCacheIsF16ByDefaultAndCtkChangesIt) {
  const std::vector<std::string> huge = {"generate", "-m",    stories(),   "-p",
                                         "x",        "--ctx", "1000000000"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = huge;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args).err;
  };
  EXPECT_NE(with({}).find("KV cache (596.05 GiB)"), std::string::npos) << with({});
  EXPECT_NE(with({"-ctk", "f32"}).find("KV cache (1192.09 GiB)"), std::string::npos);
  EXPECT_NE(with({"--kv-type", "F32"}).find("KV cache (1192.09 GiB)"), std::string::npos);
  // Q8_0 blocks of 32 do not fit stories260K's heads of 8: refused, naming both, before loading.
  const CliResult q = run_cli({"generate", "-m", stories(), "-p", "x", "--kv-type", "q8_0"});
  EXPECT_EQ(q.exit_code, 1);
  EXPECT_NE(q.err.find("multiple of 32"), std::string::npos) << q.err;
  EXPECT_NE(q.err.find("heads have 8 values"), std::string::npos) << q.err;
  EXPECT_NE(q.err.find("--kv-type f16"), std::string::npos) << q.err;
  EXPECT_EQ(greedy_tokens({"-ctk", "f32", "-ctv", "f32"}).size(), 6u);
  const CliResult both =
      run_cli({"generate", "-m", stories(), "-p", "x", "-ctk", "q8_0", "-ctv", "f16"});
  EXPECT_EQ(both.exit_code, 1);
}

// The golden llama model (2 layers, 2 KV heads of 64): a Q8_0 row of 128 elements is 4 blocks
// of 34 bytes, so 1e9 positions take 2 * 2 * 1e9 * 136 bytes = 506.64 GiB (F32: 1907.35).
TEST(CliConventions, KvCacheQ8_0IsPlannedInBlocks) {
  auto plan = [](const std::string& type) {
    return run_cli({"logits", "-m", shared_path("golden/llama"), "--tokens", "1", "--ctx",
                    "1000000000", "--kv-type", type, "--backend", "cpu"})
        .err;
  };
  EXPECT_NE(plan("q8_0").find("KV cache (506.64 GiB)"), std::string::npos) << plan("q8_0");
  EXPECT_NE(plan("f32").find("KV cache (1907.35 GiB)"), std::string::npos) << plan("f32");
}

// Reference: the logits command's last row after the prompt, softmaxed here in double.
TEST(CliConventions, NProbsAreTheModelsTopProbabilities) {
  const TempDir dir;
  const std::string out = (dir / "logits.f32").string();
  const CliResult l = run_cli({"logits", "-m", stories(), "--tokens", "1,403,407", "-o", out});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  std::ifstream in(out, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> logits(bytes.size() / sizeof(float));
  std::memcpy(logits.data(), bytes.data(), logits.size() * sizeof(float));
  ASSERT_EQ(logits.size(), 3u * 512u);
  const std::vector<float> last(logits.end() - 512, logits.end());
  const double max = *std::max_element(last.begin(), last.end());
  double total = 0;
  for (const float v : last) total += std::exp(v - max);
  std::vector<std::pair<double, int>> want;
  for (int i = 0; i < 512; ++i)
    want.push_back({std::exp(last[static_cast<size_t>(i)] - max) / total, i});
  std::sort(want.begin(), want.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });

  const CliResult r = run_cli({"generate", "-m", stories(), "-p", "Once upon", "-n", "2", "--temp",
                               "0", "--json", "--n-probs", "3", "-ctk", "f32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json g = json::parse(r.out);
  ASSERT_EQ(g["prompt_tokens"], json({1, 403, 407}));
  ASSERT_EQ(g["top_probs"].size(), 2u);
  const json& first = g["top_probs"][0];
  ASSERT_EQ(first.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(first[i]["id"].get<int>(), want[i].second);
    EXPECT_NEAR(first[i]["p"].get<double>(), want[i].first, 1e-5);
    EXPECT_NEAR(first[i]["logprob"].get<double>(), std::log(want[i].first), 1e-4);
  }
  EXPECT_EQ(first[0]["id"], g["tokens"][0]);  // greedy takes the most likely
}

TEST(CliConventions, JsonIsAskedForWithDashDashJsonEverywhere) {
  const TempDir dir;
  std::ofstream(dir / "text.txt") << "Once upon a time, there was a little girl named Lily. "
                                     "She loved to play outside in the park.";
  const std::vector<std::vector<std::string>> commands = {
      {"generate", "-m", stories(), "-p", "Once", "-n", "2"},
      {"tokenize", "-m", stories(), "-p", "Once"},
      {"inspect", "-m", stories()},
      {"perplexity", "-m", stories(), "-f", (dir / "text.txt").string(), "--ctx", "16"},
      {"bench", "-m", stories(), "-p", "4", "-n", "2", "-r", "1"},
  };
  for (auto args : commands) {
    args.push_back("--json");
    const CliResult r = run_cli(args);
    SCOPED_TRACE(args[0]);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(json::accept(r.out)) << r.out;
  }
}

TEST(CliConventions, InspectTakesDashMAndConfigJson) {
  const CliResult by_m = run_cli({"inspect", "-m", stories(), "--json"});
  const CliResult by_arg = run_cli({"inspect", stories(), "--json"});
  ASSERT_EQ(by_m.exit_code, 0) << by_m.err;
  EXPECT_EQ(by_m.out, by_arg.out);
  const CliResult config = run_cli({"inspect", shared_path("golden/llama/config.json"), "--json"});
  ASSERT_EQ(config.exit_code, 0) << config.err;
  const CliResult dir = run_cli({"inspect", shared_path("golden/llama"), "--json"});
  EXPECT_EQ(config.out, dir.out);
}

TEST(CliConventions, TruncatedFileSaysSoAndNamesItOnce) {
  const TempDir dir;
  for (const std::string name : {"stories260K.gguf", "stories260K.bin"}) {
    std::ifstream in(shared_path("models/" + name), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const fs::path cut = dir / ("cut-" + name);
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    for (const std::string command : {"generate", "inspect"}) {
      SCOPED_TRACE(command + " " + name);
      std::vector<std::string> args = {command, "-m", cut.string()};
      if (command == "generate") args.insert(args.end(), {"-p", "x"});
      const CliResult r = run_cli(args);
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_NE(r.err.find("truncated or incomplete download"), std::string::npos) << r.err;
      EXPECT_EQ(count(r.err, cut.filename().string()), 1u) << r.err;
    }
  }
  const CliResult r = run_cli({"generate", "-m", "/nonexistent/m.gguf", "-p", "x"});
  EXPECT_EQ(count(r.err, "/nonexistent/m.gguf"), 1u) << r.err;
}

TEST(CliConventions, CountsAreSingularForOne) {
  const CliResult r =
      run_cli({"generate", "-m", stories(), "-p", "Once", "-n", "1", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(" 1 token "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(" 1 tokens"), std::string::npos) << r.err;
}

TEST(CliConventions, BackendMessagesSayWhatIsTrue) {
  CliResult r = run_cli({"generate", "-m", stories(), "-p", "x", "--backend", "CUDA"});
  // What is true of this build: CUDA not compiled in, or compiled in without a usable device.
  if (r.exit_code != 0) {
    EXPECT_TRUE(r.err.find("built without CUDA") != std::string::npos ||
                r.err.find("no usable CUDA device") != std::string::npos)
        << r.err;
  }
  r = run_cli({"metal-selftest"});
  if (r.out.find("not available here") != std::string::npos) {
    EXPECT_NE(r.out.find("--emulated"), std::string::npos) << r.out;
  }
  r = run_cli(
      {"generate", "-m", stories(), "-p", "Once", "-n", "2", "--backend", "Metal-Emulated"});
  if (r.exit_code == 0) {
    EXPECT_EQ(count(r.err, "CPU emulator"), 1u) << r.err;
  } else {
    EXPECT_NE(r.err.find("built without the emulated Metal backend"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace torchless::test
