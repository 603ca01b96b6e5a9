// Bad inputs through the real executable (issue 11): every one is a clear one-line error or a
// warning, checked before the model loads and before anything reaches stdout; none crashes.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "app/cli_runner.h"
#include "common/temp_dir.h"
#include "torchless/core/error.h"
#include "torchless/core/thread_pool.h"

namespace torchless::test {
namespace {

namespace fs = std::filesystem;

std::string stories() {
  return shared_path("models/stories260K.gguf");
}

void expect_one_line_error(const CliResult& r, const std::string& fragment) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal";
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliInput, ThreadCountAboveTheMachineIsCappedWithAWarning) {
  const CliResult r = run_cli(
      {"generate", "-m", stories(), "-p", "Once", "-n", "2", "--temp", "0", "-t", "100000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --threads 100000"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.rfind("Once", 0), 0u) << r.out;
}

// Under an address-space limit that leaves room for a few thread stacks only, asks for 4000
// threads; exits 0 when that was an Error naming the count (and nothing terminated).
void start_pool_without_address_space() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  statm >> pages;
  const uint64_t cap = pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) + (uint64_t{256} << 20);
  const rlimit limit{cap, cap};
  setrlimit(RLIMIT_AS, &limit);
  try {
    ThreadPool pool(4000);
    std::_Exit(2);  // every thread started: the limit did not bite
  } catch (const Error& e) {
    std::_Exit(std::string(e.what()).find("cannot start 4000 threads") != std::string::npos ? 0
                                                                                            : 3);
  }
}

// Threads that cannot start are an Error, and the workers already running are joined: no
// std::terminate.
TEST(CliInput, ThreadPoolThatCannotStartThrowsAndJoinsItsWorkers) {
#if defined(__SANITIZE_ADDRESS__)
  // ASan's shadow memory and allocator need address space of their own: under an RLIMIT_AS
  // they abort before the pool can report anything.
  GTEST_SKIP() << "needs an address-space limit, which AddressSanitizer cannot run under";
#endif
  EXPECT_EXIT(start_pool_without_address_space(), ::testing::ExitedWithCode(0), "");
}

TEST(CliInput, KvCacheLargerThanMemoryIsRefusedBeforeAllocating) {
  const CliResult r = run_cli({"generate", "-m", stories(), "-p", "Once", "--ctx", "1000000000"});
  expect_one_line_error(r, "KV cache");
  EXPECT_NE(r.err.find("--ctx"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(CliInput, FullOrClosedStdoutIsAnError) {
  const std::vector<std::string> args = {"generate", "-m", stories(), "-p", "Once", "-n", "4"};
  expect_one_line_error(run_cli_redirected(args, ">/dev/full"), "standard output");
  expect_one_line_error(run_cli_redirected(args, ">&-"), "standard output");
  const std::vector<std::string> tokenize = {"tokenize", "-m", stories(), "-p", "Once"};
  expect_one_line_error(run_cli_redirected(tokenize, ">/dev/full"), "standard output");
}

// The model path does not exist: an error about the flag proves it was checked first.
TEST(CliInput, EverySamplingValueIsRangeCheckedBeforeTheModelLoads) {
  const struct {
    std::vector<std::string> flag;
    std::string message;
  } cases[] = {
      {{"--temp", "nan"}, "--temp must be between 0"},
      {{"--temp", "-1"}, "--temp must be"},
      {{"--repeat-penalty", "nan"}, "--repeat-penalty must be a positive number"},
      {{"--repeat-penalty", "0"}, "--repeat-penalty must be"},
      {{"--top-p", "2"}, "--top-p must be between 0 and 1"},
      {{"--top-p", "nan"}, "--top-p must be between 0 and 1"},
      {{"--min-p", "nan"}, "--min-p must be between 0"},
      {{"--top-k", "-5"}, "--top-k must be 0 (off) or more"},
      {{"--repeat-last-n", "-5"}, "--repeat-last-n must be -1"},
      {{"--presence-penalty", "inf"}, "--presence-penalty must be a finite number"},
      {{"--frequency-penalty", "nan"}, "--frequency-penalty must be a finite number"},
      {{"--typical", "nan"}, "--typical must be between 0 and 1"},
      {{"--mirostat", "3"}, "--mirostat must be 0 (off), 1 or 2"},
      {{"--kv-type", "q4_0"}, "--kv-type must be f16, f32 or q8_0"},
      {{"--mirostat-lr", "-1"}, "--mirostat-lr must be 0 or more"},
      {{"--logit-bias", "5x"}, "--logit-bias must be ID+BIAS"},
      {{"--dry-base", "nan"}, "--dry-base must be between 1 and 1000"},
      {{"-n", "-2"}, "-n must be -1"},
      {{"--seed", "-2"}, "--seed must be -1 (random) or a whole number from 0 to"},
      {{"--seed", "18446744073709551616"}, "--seed must be -1"},
      {{"--threads", "-3"}, "--threads must be 0"},
      {{"--ctx", "-3"}, "--ctx must be 0"},
  };
  for (const auto& c : cases) {
    for (const std::string command : {"generate", "chat"}) {
      std::vector<std::string> args = {command, "-m", "/nonexistent/model.gguf", "-p", "x"};
      if (command == "chat") args.resize(3);
      args.insert(args.end(), c.flag.begin(), c.flag.end());
      const CliResult r = run_cli(args);
      SCOPED_TRACE(command + " " + c.flag[0] + " " + c.flag[1]);
      expect_one_line_error(r, c.message);
      EXPECT_EQ(r.err.find("nonexistent"), std::string::npos) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  }
}

TEST(CliInput, LargestSeedIsAccepted) {
  const CliResult r = run_cli(
      {"generate", "-m", stories(), "-p", "Once", "-n", "2", "--seed", "18446744073709551615"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("seed 18446744073709551615"), std::string::npos) << r.err;
}

// A llama2.c tokenizer file of n tokens ("t0", "t1", ...), as llama2.c's export writes it.
void write_llama2c_tokenizer(const fs::path& path, int n) {
  std::ofstream out(path, std::ios::binary);
  const uint32_t max_len = 8;
  out.write(reinterpret_cast<const char*>(&max_len), 4);
  for (int i = 0; i < n; ++i) {
    const std::string text = "t" + std::to_string(i);
    const float score = -static_cast<float>(i);
    const uint32_t len = static_cast<uint32_t>(text.size());
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&len), 4);
    out.write(text.data(), len);
  }
}

TEST(CliInput, TokenizerOfAnotherVocabularySizeIsRefusedNamingBothSizes) {
  const TempDir dir;
  write_llama2c_tokenizer(dir / "big.bin", 600);
  for (const std::string& model :
       {shared_path("models/stories260K.bin"), shared_path("models/stories260K.gguf")}) {
    SCOPED_TRACE(model);
    const CliResult r = run_cli({"generate", "-m", model, "--tokenizer", (dir / "big.bin").string(),
                                 "-p", "Once", "-n", "2"});
    expect_one_line_error(r, "600 tokens");
    EXPECT_NE(r.err.find("512"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(CliInput, Llama2cTokenizerIsNeverPickedSilently) {
  const TempDir dir;
  fs::copy_file(shared_path("models/stories260K.bin"), dir / "model.bin");
  const std::vector<std::string> args = {
      "generate", "-m", (dir / "model.bin").string(), "-p", "Once", "-n", "2", "--temp", "0"};
  // Two candidates and none named by the convention (tok<vocab size>.bin): ask.
  fs::copy_file(shared_path("models/tok512.bin"), dir / "tok_a.bin");
  fs::copy_file(shared_path("models/tok512.bin"), dir / "tok_b.bin");
  CliResult r = run_cli(args);
  expect_one_line_error(r, "--tokenizer");
  EXPECT_NE(r.err.find("tok_a.bin, tok_b.bin"), std::string::npos) << r.err;
  // The conventional name wins without a word.
  fs::copy_file(shared_path("models/tok512.bin"), dir / "tok512.bin");
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("note:"), std::string::npos) << r.err;
  // A single unconventional candidate is used, and named.
  fs::remove(dir / "tok512.bin");
  fs::remove(dir / "tok_b.bin");
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: using the tokenizer " + (dir / "tok_a.bin").string()),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace torchless::test
