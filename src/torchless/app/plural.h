#pragma once
// "1 token", "2 tokens": counts in messages read as English.
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace torchless::app {

inline std::string count_of(size_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

}  // namespace torchless::app
