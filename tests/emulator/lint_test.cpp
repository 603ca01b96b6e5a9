// The generator's lint rejects each construct the emulator cannot run faithfully, naming the
// file and line, and accepts idiomatic code (tests/emulator/lint/*.metal).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <string>

namespace {

struct Result {
  int status;
  std::string output;
};

Result lint(const std::string& name) {
  const std::string file = std::string(TORCHLESS_SOURCE_DIR) + "/tests/emulator/lint/" + name;
  const std::string command =
      std::string(MSLEMU_GEN_PATH) + " --lint " + file + " lint/" + name + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  std::array<char, 512> buffer;
  while (fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

struct Case {
  const char* file;
  int line;
  const char* why;
};

class LintTest : public ::testing::TestWithParam<Case> {};

TEST_P(LintTest, RejectsWithFileLineAndReason) {
  const Case& c = GetParam();
  const Result r = lint(c.file);
  EXPECT_EQ(r.status, 1) << r.output;
  const std::string where =
      std::string("lint/") + c.file + ":" + std::to_string(c.line) + ": error: ";
  EXPECT_NE(r.output.find(where + c.why), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    ForbiddenConstructs, LintTest,
    ::testing::Values(
        Case{"swizzle_assignment.metal", 6, "assignment to a multi-component swizzle"},
        Case{"function_constant.metal", 4, "function constants are not supported"},
        Case{"threadgroup_array.metal", 5, "threadgroup variable declared in a function body"},
        Case{"host_name_template.metal", 9, "`template [[host_name(...)]]`"},
        Case{"host_name_template.metal", 4, "kernel templates cannot be registered"},
        Case{"half_literal.metal", 5, "half literals like 0.5h"},
        Case{"address_space_overload.metal", 5, "'first' is overloaded on address space only"},
        Case{"constant_const.metal", 4, "`constant const`"},
        Case{"thread_elements.metal", 6, "thread_elements()"},
        Case{"atomics.metal", 4, "atomics are not supported"}),
    [](const auto& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find('.')) + "_" + std::to_string(info.index);
      return name;
    });

TEST(Lint, AcceptsIdiomaticCode) {
  const Result r = lint("clean.metal");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

}  // namespace
