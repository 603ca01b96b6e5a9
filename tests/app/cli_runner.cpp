#include "app/cli_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace torchless::test {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

CliResult run_cli_impl(const std::vector<std::string>& args, const std::string& stdin_text,
                       const std::string& stdout_redirection);

CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text) {
  return run_cli_impl(args, stdin_text, "");
}

CliResult run_cli_redirected(const std::vector<std::string>& args,
                             const std::string& stdout_redirection) {
  return run_cli_impl(args, "", stdout_redirection);
}

CliResult run_cli_impl(const std::vector<std::string>& args, const std::string& stdin_text,
                       const std::string& stdout_redirection) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("torchless_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "stdin", std::ios::binary) << stdin_text;
  std::string cmd = shell_quote(TORCHLESS_CLI);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const std::string out = stdout_redirection.empty() ? " >" + shell_quote((dir / "out").string())
                                                     : " " + stdout_redirection;
  cmd += " <" + shell_quote((dir / "stdin").string()) + out + " 2>" +
         shell_quote((dir / "err").string());
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  std::filesystem::remove_all(dir);
  return r;
}

std::string shared_path(const std::string& relative) {
  const std::filesystem::path p =
      std::filesystem::path(TORCHLESS_SOURCE_DIR) / ".." / "shared" / relative;
  if (!std::filesystem::exists(p)) {
    throw std::runtime_error("missing test data " + p.string() +
                             ": the shared data folder must sit beside the repository");
  }
  return p.string();
}

}  // namespace torchless::test
