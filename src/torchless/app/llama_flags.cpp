#include "torchless/app/llama_flags.h"

#include <array>
#include <cctype>
#include <string_view>
#include <utility>

#include "torchless/core/error.h"

namespace torchless::app {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kAliases = {{
    {"-cnv", "--conversation"},
    {"-sys", "--system-prompt"},
    {"-ngl", "--n-gpu-layers"},
    {"-no-cnv", "--no-conversation"},
    {"-ctx", "--ctx-size"},
    {"-ctk", "--cache-type-k"},
    {"-ctv", "--cache-type-v"},
    {"-np", "--parallel"},  // llama-server
    {"-hf", "--hf-repo"},
    {"-hfr", "--hf-repo"},
    {"-tp", "--tensor-parallel"},  // vLLM's short spelling
}};

// "-x" alone, "-5" (a negative number) and "-" (stdin) are fine; "-abc" is not.
bool is_glued_short_option(std::string_view arg) {
  return arg.size() > 2 && arg[0] == '-' && arg[1] != '-' &&
         std::isalpha(static_cast<unsigned char>(arg[1])) &&
         arg.find(' ') == std::string_view::npos;
}

}  // namespace

std::vector<std::string> translate_llama_flags(int argc, char** argv) {
  std::vector<std::string> out;
  bool positional_only = false;
  bool value_expected = false;  // the previous word was an option that may take this as value
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    bool replaced = false;
    if (!positional_only) {
      for (const auto& [from, to] : kAliases) {
        if (arg == from) {
          out.emplace_back(to);
          replaced = true;
        }
      }
    }
    if (replaced) {
      value_expected = true;
      continue;
    }
    if (arg == "--") positional_only = true;
    if (!positional_only && !value_expected && is_glued_short_option(arg)) {
      fail("unknown option '{}': short options take their value after a space (e.g. -{} {})", arg,
           arg[1], arg.substr(2));
    }
    value_expected = !positional_only && arg.size() > 1 && arg[0] == '-' &&
                     arg.find('=') == std::string_view::npos;
    out.emplace_back(arg);
  }
  return out;
}

}  // namespace torchless::app
