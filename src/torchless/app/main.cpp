#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/app/llama_flags.h"
#include "torchless/core/error.h"

namespace torchless::app {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace torchless::app

namespace {

// CLI11's conversion errors read "Could not convert: --top-k = abc"; users want the flag, the
// value and what was wrong with it.
std::string parse_error_text(const CLI::ParseError& e) {
  std::string what = e.what();
  const std::string prefix = "Could not convert: ";
  const size_t eq = what.find(" = ");
  if (what.rfind(prefix, 0) == 0 && eq != std::string::npos) {
    const std::string flag = what.substr(prefix.size(), eq - prefix.size());
    return fmt::format("{}: '{}' is not a number (or is out of range for it)", flag,
                       what.substr(eq + 3));
  }
  return what;
}

// Output that never reached stdout (a full disk, a closed pipe) is an error.
int check_stdout(int code) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    fmt::print(stderr, "error: cannot write to standard output: {}\n", std::strerror(errno));
    return code == 0 ? 1 : code;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using torchless::app::command_registry;
  // A closed pipe makes write() fail with EPIPE, reported like any other write error.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App cli{"torchless: run Llama-family language models from GGUF and safetensors files"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", "torchless 0.1.0");
  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::function<int()> action;
  for (auto& command : commands) {
    CLI::App* sub = cli.add_subcommand(command.name, command.description);
    auto run = std::make_shared<std::function<int()>>();
    *run = command.setup(*sub);
    sub->callback([run, &action] { action = *run; });
  }
  const auto is_command = [&](std::string_view name) {
    return std::any_of(commands.begin(), commands.end(),
                       [&](const auto& c) { return c.name == name; });
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::string names;
    for (const auto& command : commands) names += (names.empty() ? "" : ", ") + command.name;
    fmt::print(stderr, "error: unknown command '{}' (commands: {})\n", argv[1], names);
    return 2;
  }
  const std::string help = argc > 1 && is_command(argv[1])
                               ? fmt::format("torchless {} --help", argv[1])
                               : std::string("torchless --help");
  std::vector<std::string> args;
  try {
    args = torchless::app::translate_llama_flags(argc, argv);
  } catch (const torchless::Error& e) {
    fmt::print(stderr, "error: {} (see {})\n", e.what(), help);
    return 2;
  }
  try {
    std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
    cli.parse(args);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0: let CLI11 print them.
    if (e.get_exit_code() == 0) return check_stdout(cli.exit(e));
    fmt::print(stderr, "error: {} (see {})\n", parse_error_text(e), help);
    return 2;
  }
  try {
    return check_stdout(action ? action() : 0);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
