#pragma once
// How much memory this machine has, and how messages about memory print sizes. One place, so
// the backends' load-time checks and the commands agree.
#include <cstdint>
#include <string>

namespace torchless {

// Installed RAM (sysconf works on macOS and Linux); 0 when unknown.
uint64_t physical_memory_bytes();

// `bytes` in binary gigabytes with `decimals` digits: gib(3 << 29) == "1.50 GiB".
std::string gib(uint64_t bytes, int decimals = 2);

}  // namespace torchless
