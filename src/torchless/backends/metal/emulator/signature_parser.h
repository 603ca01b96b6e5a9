#pragma once
// Reads kernel signatures from the .metal text embedded in each generated translation unit:
// the C++ compiler cannot see the MSL attributes that give each parameter its role.
#include <string>
#include <string_view>
#include <vector>

#include "torchless/backends/metal/emulator/msl_emulator.h"

namespace torchless::mslemu::detail {

// Every `kernel void name(...)` of `source`, with name, line, attribute limit and each
// parameter's name, type text, role, index and builtin (sizes are left for the binder).
// Throws Error naming file:line for a parameter without a known attribute.
std::vector<KernelInfo> parse_kernel_signatures(std::string_view source, std::string_view file);

}  // namespace torchless::mslemu::detail
