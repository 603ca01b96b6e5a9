#pragma once
// NCCL, opened at run time (dlopen) the first time a tensor-parallel group is made on CUDA, like
// cuBLAS (cuda_blas.h): builds and CI machines without libnccl still link and run, and programs
// that never split a model do not load it.
#include <nccl.h>

namespace torchless::cuda {

struct Nccl {
  decltype(&ncclCommInitAll) comm_init_all;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclCommAbort) comm_abort;
  decltype(&ncclAllReduce) all_reduce;
  decltype(&ncclAllGather) all_gather;
  decltype(&ncclGetErrorString) error_string;
};

// The loaded library's functions; throws Error saying which library or symbol is missing.
const Nccl& nccl();

}  // namespace torchless::cuda
