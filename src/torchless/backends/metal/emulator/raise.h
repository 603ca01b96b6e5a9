#pragma once
// Throws mslemu::Error with a formatted message (the emulator's counterpart of fail()).
#include <utility>

#include <fmt/format.h>

#include "torchless/backends/metal/emulator/msl_emulator.h"

namespace torchless::mslemu::detail {

template <typename... Args>
[[noreturn]] void raise(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace torchless::mslemu::detail
