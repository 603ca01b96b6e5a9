#pragma once
// Runs the torchless executable with arguments (and optional stdin) and captures its output,
// so CLI tests check exactly what a user sees: stdout, stderr and the exit status.
#include <string>
#include <vector>

namespace torchless::test {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "");
// The same with stdout sent elsewhere: a shell redirection such as ">/dev/full" or ">&-"
// (out stays empty).
CliResult run_cli_redirected(const std::vector<std::string>& args,
                             const std::string& stdout_redirection);
std::string shared_path(const std::string& relative);  // ../shared/<relative>, must exist

}  // namespace torchless::test
