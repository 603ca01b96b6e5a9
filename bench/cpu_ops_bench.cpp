// CPU backend kernels against the memory bandwidth floor. Mat-vec decode is bound by reading
// the weights once per token, so each case reports the weight bytes it streams per second
// (bytes_per_second) next to the machine's copy and read bandwidth. Every case cycles over
// enough copies of its matrix (>= 160 MiB) that the weights come from DRAM, as in a real model,
// not from the last-level cache; the cache-resident mat-vec cases (last argument 1) measure the
// kernel's arithmetic alone: a type whose rate there is near the DRAM rate is compute-bound.
// Weights are loaded as a model's are (to_device_matrix: Q4_K repacked on VNNI CPUs); the
// environment variable TORCHLESS_CPU_REPACK=0 measures the plain layout instead. Bytes per
// second always count the plain layout's bytes.
//   cpu_ops_bench --benchmark_filter=MatmulVec|Copy|Read
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/core/quant.h"
#include "torchless/core/thread_pool.h"

namespace torchless {
namespace {

constexpr size_t kWorkingSet = size_t{160} << 20;

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

const DType kTypes[] = {DType::F32,  DType::F16,  DType::Q8_0, DType::Q4_0,
                        DType::BF16, DType::Q4_K, DType::Q6_K, DType::Q5_K};

// Args: dtype index, rows, cols, threads[, 1: one copy, so the weights stay in the caches
// and the case measures the kernel's arithmetic rather than DRAM].
void BM_MatmulVec(benchmark::State& state) {
  const DType dtype = kTypes[state.range(0)];
  const int64_t rows = state.range(1), cols = state.range(2);
  BackendOptions options;
  options.threads = static_cast<int>(state.range(3));
  CpuBackend backend(options);

  const size_t row_bytes = dtype_row_bytes(dtype, cols);
  const size_t matrix_bytes = row_bytes * static_cast<size_t>(rows);
  const bool cached = state.range(4) != 0;
  const size_t copies =
      cached ? 1 : std::max<size_t>(1, (kWorkingSet + matrix_bytes - 1) / matrix_bytes);
  std::vector<std::byte> one(matrix_bytes);
  const auto w = random_floats(static_cast<size_t>(cols), 1);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(dtype, w.data(), one.data() + static_cast<size_t>(r) * row_bytes, cols);
  }
  std::vector<std::byte> all(matrix_bytes * copies);
  std::vector<Tensor> weights;
  for (size_t c = 0; c < copies; ++c) {
    std::memcpy(all.data() + c * matrix_bytes, one.data(), matrix_bytes);
    weights.push_back(backend.to_device_matrix(
        HostTensorView{Shape{rows, cols}, dtype, all.data() + c * matrix_bytes, matrix_bytes},
        false));
  }
  const Tensor x = backend.to_device_1d(random_floats(static_cast<size_t>(cols), 2));
  Tensor y = backend.alloc(Shape{rows}, DType::F32);
  size_t next = 0;
  for (auto _ : state) {
    backend.matmul_vec(weights[next], x, y);
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(matrix_bytes));
  state.SetLabel(std::string(dtype_name(dtype)));
}

void matvec_args(benchmark::internal::Benchmark* b) {
  for (int64_t t = 0; t < 8; ++t) {
    for (int64_t rows : {2048, 8192}) {
      for (int64_t threads : {1, 2}) b->Args({t, rows, 2048, threads, 0});
    }
    b->Args({t, 512, 2048, 1, 1});
  }
}
BENCHMARK(BM_MatmulVec)->Apply(matvec_args)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Batched matmul (prompt processing): reports tokens of 2048x2048 projections per second.
// Args: dtype index, tokens, threads (0: the backend's default).
void BM_Matmul(benchmark::State& state) {
  const DType dtype = kTypes[state.range(0)];
  const int64_t rows = 2048, cols = 2048, n = state.range(1);
  BackendOptions options;
  options.threads = static_cast<int>(state.range(2));
  CpuBackend backend(options);
  const size_t row_bytes = dtype_row_bytes(dtype, cols);
  std::vector<std::byte> bytes(row_bytes * static_cast<size_t>(rows));
  const auto w = random_floats(static_cast<size_t>(cols), 1);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(dtype, w.data(), bytes.data() + static_cast<size_t>(r) * row_bytes, cols);
  }
  const Tensor wt = backend.to_device_matrix(
      HostTensorView{Shape{rows, cols}, dtype, bytes.data(), bytes.size()}, false);
  const Tensor x = backend.to_device_2d(random_floats(static_cast<size_t>(n * cols), 2), n, cols);
  Tensor y = backend.alloc(Shape{n, rows}, DType::F32);
  for (auto _ : state) {
    backend.matmul(wt, x, y);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
  state.SetLabel(std::string(dtype_name(dtype)) + " tokens/s as items/s");
}
BENCHMARK(BM_Matmul)
    ->ArgsProduct({{0, 1, 2, 3, 5, 6, 7}, {1, 64}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// memcpy of a 256 MiB buffer split over `threads`; bytes_per_second counts the bytes copied
// (each is read once and written once).
void BM_Copy(benchmark::State& state) {
  const size_t bytes = size_t{256} << 20;
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<std::byte> src(bytes, std::byte{1}), dst(bytes, std::byte{2});
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(bytes >> 20), 1, [&](int64_t b, int64_t e, int) {
      std::memcpy(dst.data() + (b << 20), src.data() + (b << 20), static_cast<size_t>(e - b) << 20);
    });
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_Copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Summing a 256 MiB buffer: the read-only bandwidth that bounds a weight-streaming mat-vec.
void BM_Read(benchmark::State& state) {
  const size_t bytes = size_t{256} << 20;
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<uint64_t> src(bytes / 8, 3);
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()));
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(src.size()), 1 << 17, [&](int64_t b, int64_t e, int t) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += src[static_cast<size_t>(i)];
        s1 += src[static_cast<size_t>(i + 1)];
        s2 += src[static_cast<size_t>(i + 2)];
        s3 += src[static_cast<size_t>(i + 3)];
      }
      sums[static_cast<size_t>(t)] += s0 + s1 + s2 + s3;
    });
    benchmark::DoNotOptimize(sums.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_Read)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace torchless
