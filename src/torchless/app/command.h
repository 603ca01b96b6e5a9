#pragma once
// CLI subcommands register themselves here (one file per command, app/cmd_*.cpp), so adding a
// command touches no shared list. Each command's run() may throw torchless::Error; main()
// prints it as one line on stderr and exits non-zero.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace torchless::app {

struct Command {
  std::string name;
  std::string description;
  // Declares the options on `sub` and returns the action to run after parsing.
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& command_registry();

// Usage at namespace scope in a cmd_*.cpp: `const bool registered = register_command({...});`
inline bool register_command(Command command) {
  command_registry().push_back(std::move(command));
  return true;
}

}  // namespace torchless::app
