#pragma once
// The runtime entry points the shim calls from inside a kernel (a fiber): synchronisation
// and simdgroup collectives. Implemented in threadgroup_runner.cpp. Every call carries the
// .metal call site so diagnostics can name it.
#include <cstdint>

namespace torchless::mslemu::detail {

// One lane's operands of a simdgroup collective.
struct SimdLaneArgs {
  const void* in = nullptr;
  void* out = nullptr;
  const void* param = nullptr;
};

// What the leader (the last lane to arrive) sees: every participating lane's operands.
// Lanes that returned from the kernel are inactive; on error the leader sets `error`.
struct SimdCall {
  uint32_t width = 32;
  uint64_t active = 0;  // bit i: lane i participates
  SimdLaneArgs* lanes = nullptr;
  const char* error = nullptr;

  bool has(uint32_t lane) const { return lane < width && ((active >> lane) & 1u); }
  uint32_t first() const { return static_cast<uint32_t>(__builtin_ctzll(active)); }
};

using SimdLeader = void (*)(SimdCall&);

// A rendezvous of the simdgroup's active lanes at the same operation and call site; the
// last to arrive runs `leader` once for all of them.
void simd_collective(const char* op, SimdLeader leader, const void* in, void* out,
                     const void* param, const char* file, int line);
// Every thread of the threadgroup must reach the same barrier.
void threadgroup_barrier(const char* file, int line);

// Whether unqualified single-precision math functions are Metal's fast variants
// (mslemu_fast_math.h) for the kernel running on this OS thread. The runner sets it from
// Options::math_functions around each threadgroup; constinit keeps its reads wrapper-free.
extern thread_local constinit bool fast_math_functions;

}  // namespace torchless::mslemu::detail
