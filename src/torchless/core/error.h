#pragma once
// The one exception type of torchless: every failure a user can cause (bad file, bad
// argument, unavailable backend) becomes an Error whose message names the problem and where.
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace torchless {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace torchless
