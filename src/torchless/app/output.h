#pragma once
// Writing to stdout so that a closed pipe or a full disk is an error, not lost output: each
// write is flushed and checked, and main() ignores SIGPIPE so a closed pipe reports EPIPE.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "torchless/core/error.h"

namespace torchless::app {

[[noreturn]] inline void fail_stdout(int error) {
  fail("cannot write to standard output: {}", std::strerror(error));
}

inline void write_stdout(std::string_view text) {
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
    fail_stdout(errno);
  }
  if (std::fflush(stdout) != 0) fail_stdout(errno);
}

}  // namespace torchless::app
