// The commands' documented behaviours, checked through the real executable: logits of a model
// without tokenizer files, tokenize's exact-bytes file input and --no-bos, inspect of every
// format, the backends listing, and --backend/--threads on the commands that run a model.
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

// A file in a fresh temporary directory, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& name) : path_(dir_ / name) {}
  std::string str() const { return path_.string(); }
  void write(const std::string& bytes) const { std::ofstream(path_, std::ios::binary) << bytes; }

 private:
  TempDir dir_;
  fs::path path_;
};

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::vector<int> ids_of(const CliResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out)["ids"].get<std::vector<int>>();
}

// The golden llama folder has config.json and model.safetensors only: `logits` needs no
// tokenizer. Tolerance as in the golden README: 1e-4 of the row's largest magnitude.
TEST(CliCommands, LogitsOfAModelWithoutTokenizerFilesMatchHuggingFace) {
  std::ifstream in(shared_path("golden/llama/tokens.json"));
  const json golden = json::parse(in);
  std::string ids;
  for (const int id : golden["tokens"]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  const TempFile out("logits.f32");
  const CliResult r = run_cli({"logits", "-m", shared_path("golden/llama"), "--tokens", ids,
                               "--out", out.str(), "--backend", "cpu", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<float> got = read_floats(out.str());
  const std::vector<float> want = read_floats(shared_path("golden/llama/logits.f32"));
  const size_t n_vocab = golden["n_vocab"].get<size_t>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t row = 0; row < got.size() / n_vocab; ++row) {
    float scale = 0.0f;
    for (size_t i = 0; i < n_vocab; ++i) scale = std::max(scale, std::abs(want[row * n_vocab + i]));
    for (size_t i = 0; i < n_vocab; ++i) {
      ASSERT_NEAR(got[row * n_vocab + i], want[row * n_vocab + i], 1e-4f * scale)
          << "row " << row << " column " << i;
    }
  }
}

TEST(CliCommands, TokenizeFileTakesItsBytesExactly) {
  const TempFile text("prompt.txt");
  text.write("Once upon a time\n");
  const auto from_file = ids_of(run_cli({"tokenize", "-m", stories(), "-f", text.str(), "--json"}));
  const auto with_newline =
      ids_of(run_cli({"tokenize", "-m", stories(), "-p", "Once upon a time\n", "--json"}));
  const auto without =
      ids_of(run_cli({"tokenize", "-m", stories(), "-p", "Once upon a time", "--json"}));
  EXPECT_EQ(from_file, with_newline);
  EXPECT_NE(from_file, without);
}

TEST(CliCommands, NoBosAddsNoSpecialTokens) {
  const auto with_bos = ids_of(run_cli({"tokenize", "-m", stories(), "-p", "The dog", "--json"}));
  const auto no_bos =
      ids_of(run_cli({"tokenize", "-m", stories(), "-p", "The dog", "--no-bos", "--json"}));
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos.front(), 1);
  EXPECT_EQ(std::vector<int>(with_bos.begin() + 1, with_bos.end()), no_bos);
}

TEST(CliCommands, TokenizeNeedsText) {
  const CliResult r = run_cli({"tokenize", "-m", stories()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliCommands, InspectPrintsTheTensorTableAndTotals) {
  const CliResult r = run_cli({"inspect", stories()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* expected : {"GGUF v3", "tokenizer:     llama", "512 tokens", "token_embd.weight",
                               "f32", "totals:", "parameters"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  }
}

TEST(CliCommands, InspectSafetensorsListsTensorsAsStored) {
  const CliResult r = run_cli({"inspect", shared_path("golden/llama"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  EXPECT_EQ(report["format"], "safetensors");
  EXPECT_EQ(report["hyperparameters"]["embedding_length"], 256);
  bool found = false;
  for (const json& t : report["tensors"]) found = found || t["name"] == "model.embed_tokens.weight";
  EXPECT_TRUE(found) << report["tensors"].dump();
  // No tokenizer files in the folder: said so, not hidden.
  EXPECT_TRUE(report["tokenizer"].contains("unavailable")) << report["tokenizer"].dump();
}

TEST(CliCommands, InspectLlama2cFindsTheTokenizerBesideIt) {
  const CliResult r = run_cli({"inspect", shared_path("models/stories260K.bin")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("format:        llama2c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokenizer:     llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("512 tokens"), std::string::npos) << r.out;
}

TEST(CliCommands, InspectOfACorruptFileIsAnError) {
  const TempFile corrupt("corrupt.gguf");
  std::ifstream in(stories(), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  corrupt.write(bytes.substr(0, 5000));
  const CliResult r = run_cli({"inspect", corrupt.str()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliCommands, BackendsListsTheCpuAsAvailable) {
  const CliResult r = run_cli({"backends"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cpu"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("metal"), std::string::npos) << r.out;
}

TEST(CliCommands, GenerateOnTheMetalEmulatorGivesTheCpuTokens) {
  std::vector<json> outputs;
  for (const char* backend : {"cpu", "metal-emulated"}) {
    const CliResult r = run_cli({"generate", "-m", stories(), "-p", "Once upon a time", "-n", "24",
                                 "--temp", "0", "--backend", backend, "--output-format", "json"});
    ASSERT_EQ(r.exit_code, 0) << backend << ": " << r.err;
    outputs.push_back(json::parse(r.out));
  }
  EXPECT_EQ(outputs[0]["tokens"], outputs[1]["tokens"]);
  EXPECT_EQ(outputs[0]["text"], outputs[1]["text"]);
}

TEST(CliCommands, ModelCommandsAcceptBackendAndThreads) {
  const TempFile text("story.txt");
  std::string story;
  for (int i = 0; i < 4; ++i) story += "Once upon a time, there was a little girl named Lily. ";
  text.write(story);
  const std::vector<std::vector<std::string>> commands = {
      {"generate", "-m", stories(), "-p", "Once", "-n", "4"},
      {"logits", "-m", stories(), "--tokens", "1,403,407"},
      {"perplexity", "-m", stories(), "-f", text.str(), "--ctx", "16"},
      {"bench", "-m", stories(), "-p", "8", "-n", "2", "-r", "1"},
      {"chat", "-m", stories(), "-n", "2"},
  };
  for (std::vector<std::string> args : commands) {
    args.insert(args.end(), {"--backend", "cpu", "--threads", "1"});
    const CliResult r = run_cli(args, args[0] == "chat" ? "Hi\n" : "");
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
  }
}

}  // namespace
}  // namespace torchless::test
