// --tensor-parallel / -tp on the commands (docs/multi-gpu.md), with CPU ranks: the greedy text
// of stories260K split over 2 ranks is the unsplit text; a count that does not split the model
// is refused naming the counts that do.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "app/cli_runner.h"

namespace torchless::test {
namespace {

using nlohmann::json;

std::vector<std::string> generate(const std::string& tp_flag, const std::string& n) {
  return {"generate",
          "-m",
          shared_path("models/stories260K.gguf"),
          "--backend",
          "cpu",
          "-p",
          "Once upon a time",
          "-n",
          "24",
          "--temp",
          "0",
          "--json",
          tp_flag,
          n};
}

TEST(CliTensorParallel, SplitGeneratesTheUnsplitText) {
  const CliResult one = run_cli(generate("--tensor-parallel", "1"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const CliResult two = run_cli(generate("-tp", "2"));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(json::parse(two.out)["text"], json::parse(one.out)["text"]);
  EXPECT_EQ(json::parse(two.out)["tokens"], json::parse(one.out)["tokens"]);
}

TEST(CliTensorParallel, RefusesACountThatDoesNotSplit) {
  const CliResult r = run_cli(generate("-tp", "3"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("it splits over N = 1, 2, 4"), std::string::npos) << r.err;
  const CliResult zero = run_cli(generate("-tp", "0"));
  EXPECT_NE(zero.exit_code, 0);
  EXPECT_NE(zero.err.find("--tensor-parallel must be 1"), std::string::npos) << zero.err;
}

}  // namespace
}  // namespace torchless::test
