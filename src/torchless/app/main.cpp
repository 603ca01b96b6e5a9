#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

#include <fmt/format.h>

#include "torchless/app/command.h"
#include "torchless/core/error.h"

namespace torchless::app {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace torchless::app

int main(int argc, char** argv) {
  using torchless::app::command_registry;
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
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0: let CLI11 print them.
    if (e.get_exit_code() == 0) return cli.exit(e);
    fmt::print(stderr, "error: {} (see torchless --help)\n", e.what());
    return 2;
  }
  try {
    return action ? action() : 0;
  } catch (const torchless::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
