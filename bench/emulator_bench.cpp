// Dispatch cost of the MSL emulator (src/torchless/backends/metal/emulator) on its own test
// kernels (tests/emulator/kernels): a 4096x4096 f32 (and f16-weight) mat-vec, one simdgroup
// per row, and RMSNorm with 256 and 1024 threads per threadgroup. Regressions in the fiber
// switch or the scheduler show up here.
#if defined(TORCHLESS_HAVE_MSL_EMULATOR)
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "../tests/emulator/kernels/emulator_test_args.h"
#include "torchless/backends/metal/emulator/msl_emulator.h"
#include "torchless/core/half.h"

void mslemu_register_emulator_test();

namespace {

using torchless::mslemu::Dispatch;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

void BM_MatVecF32(benchmark::State& state) {
  mslemu_register_emulator_test();
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const RowsArgs args{n, n, 0.0f};
  const std::vector<float> w = random_floats(size_t{n} * n, 1), x = random_floats(n, 2);
  std::vector<float> y(n);
  for (auto _ : state) {
    Dispatch("mat_vec_f32")
        .bytes(0, &args, sizeof args)
        .buffer(1, const_cast<float*>(w.data()), w.size() * sizeof(float))
        .buffer(2, const_cast<float*>(x.data()), x.size() * sizeof(float))
        .buffer(3, y.data(), y.size() * sizeof(float))
        .dispatch_threadgroups({(n + 3) / 4, 1, 1}, {128, 1, 1});
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * int64_t{n} * n);
}
BENCHMARK(BM_MatVecF32)->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_MatVecF16(benchmark::State& state) {
  mslemu_register_emulator_test();
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const RowsArgs args{n, n, 0.0f};
  const std::vector<float> wf = random_floats(size_t{n} * n, 1), x = random_floats(n, 2);
  std::vector<uint16_t> w(wf.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = torchless::fp32_to_fp16(wf[i]);
  std::vector<float> y(n);
  for (auto _ : state) {
    Dispatch("mat_vec_f16")
        .bytes(0, &args, sizeof args)
        .buffer(1, w.data(), w.size() * sizeof(uint16_t))
        .buffer(2, const_cast<float*>(x.data()), x.size() * sizeof(float))
        .buffer(3, y.data(), y.size() * sizeof(float))
        .dispatch_threadgroups({(n + 3) / 4, 1, 1}, {128, 1, 1});
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * int64_t{n} * n);
}
BENCHMARK(BM_MatVecF16)->Arg(4096)->Unit(benchmark::kMillisecond);

// Args: rows, threads per threadgroup (cols fixed at 4096).
void BM_RmsNorm(benchmark::State& state) {
  mslemu_register_emulator_test();
  const uint32_t rows = static_cast<uint32_t>(state.range(0));
  const uint32_t threads = static_cast<uint32_t>(state.range(1));
  const RowsArgs args{rows, 4096, 1e-5f};
  const std::vector<float> x = random_floats(size_t{rows} * args.cols, 3),
                           w = random_floats(args.cols, 4);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    Dispatch("rms_norm_f32")
        .bytes(0, &args, sizeof args)
        .buffer(1, const_cast<float*>(x.data()), x.size() * sizeof(float))
        .buffer(2, const_cast<float*>(w.data()), w.size() * sizeof(float))
        .buffer(3, y.data(), y.size() * sizeof(float))
        .threadgroup_memory(0, 32 * sizeof(float))
        .dispatch_threadgroups({rows, 1, 1}, {threads, 1, 1});
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * int64_t{rows} * threads);  // threads run
}
BENCHMARK(BM_RmsNorm)
    ->Args({32, 1024})
    ->Args({512, 256})
    ->Args({512, 1024})
    ->Unit(benchmark::kMillisecond);

}  // namespace
#endif
