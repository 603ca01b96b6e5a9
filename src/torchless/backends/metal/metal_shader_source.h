#pragma once
// The Metal shader sources embedded in the binary, for run-time compilation on Apple
// (newLibraryWithSource), so users need only the Command Line Tools. Generated at build time
// from kernels/*.metal with every local #include "..." (metal_args.h and helpers) inlined:
// one translation unit of MSL, ready for the Metal compiler.
#include <string_view>

namespace torchless::metal {

std::string_view metal_shader_source();

}  // namespace torchless::metal
