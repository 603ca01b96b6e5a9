// Argument structs shared by the emulator's test kernels and the tests (the same pattern as
// the Metal backend's metal_args.h): plain scalars valid in both MSL and C++.
#pragma once

struct RowsArgs {
  unsigned int rows;
  unsigned int cols;
  float eps;
};

struct SimdArgs {
  unsigned int n;      // threads that take part; the others return first
  unsigned int delta;  // shuffle_down/up distance
  unsigned int mask;   // shuffle_xor mask
  unsigned int lane;   // broadcast source, shuffle source offset
};

struct GemmArgs {
  unsigned int m;
  unsigned int n;
  unsigned int k;
};

// Outputs of simd_collectives, one row of kSimdOutputs floats per thread.
enum SimdOutput {
  kOutSum,
  kOutMax,
  kOutMin,
  kOutPrefixInclusive,
  kOutPrefixExclusive,
  kOutShuffle,
  kOutShuffleDown,
  kOutShuffleUp,
  kOutShuffleXor,
  kOutBroadcast,
  kOutAll,
  kOutAny,
  kOutProduct,
  kOutBroadcastFirst,
  kSimdOutputs
};
