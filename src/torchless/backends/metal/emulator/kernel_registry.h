#pragma once
// The registered kernels: name -> signature (KernelInfo) plus the type-erased function.
#include <string_view>

#include "torchless/backends/metal/emulator/msl_emulator.h"
#include "torchless/backends/metal/emulator/shim/mslemu_abi.h"

namespace torchless::mslemu::detail {

struct Kernel {
  KernelInfo info;
  GenericFn fn = nullptr;
  Thunk thunk = nullptr;
};

const Kernel* find_registered(std::string_view name);

}  // namespace torchless::mslemu::detail
