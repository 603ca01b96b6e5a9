// Cost of running the product's Metal shaders on the CPU through the MSL emulator (the
// `metal-emulated` backend): a 4096x4096 mat-vec with f32 and f16 weights and RMSNorm over
// rows of 4096. The emulator's fiber switches and scheduler dominate these numbers, so their
// regressions show up here. Skipped in builds without the emulator.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "torchless/backends/backend.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"

namespace {

using torchless::Backend;
using torchless::DType;
using torchless::Shape;
using torchless::Tensor;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// The emulated backend, or null after telling the benchmark why it is skipped.
std::unique_ptr<Backend> emulated_backend(benchmark::State& state) {
  try {
    return torchless::init_backend("metal-emulated");
  } catch (const torchless::Error& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

Tensor f16_matrix(Backend& backend, std::span<const float> values, int64_t rows, int64_t cols) {
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < half.size(); ++i) half[i] = torchless::fp32_to_fp16(values[i]);
  Tensor w = backend.alloc(Shape{rows, cols}, DType::F16);
  backend.upload(std::as_bytes(std::span<const uint16_t>(half)), w);
  return w;
}

void run_mat_vec(benchmark::State& state, DType dtype) {
  const auto backend = emulated_backend(state);
  if (!backend) return;
  const int64_t n = state.range(0);
  const std::vector<float> values = random_floats(static_cast<size_t>(n * n), 1);
  const Tensor w = dtype == DType::F16 ? f16_matrix(*backend, values, n, n)
                                       : backend->to_device_2d(values, n, n);
  const Tensor x = backend->to_device_1d(random_floats(static_cast<size_t>(n), 2));
  Tensor y = backend->alloc(Shape{n}, DType::F32);
  for (auto _ : state) {
    backend->matmul_vec(w, x, y);
    backend->synchronize();
  }
  state.SetItemsProcessed(state.iterations() * n * n);
}

void BM_MatVecF32(benchmark::State& state) {
  run_mat_vec(state, DType::F32);
}
BENCHMARK(BM_MatVecF32)->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_MatVecF16(benchmark::State& state) {
  run_mat_vec(state, DType::F16);
}
BENCHMARK(BM_MatVecF16)->Arg(4096)->Unit(benchmark::kMillisecond);

// Arg: rows of 4096 columns.
void BM_RmsNorm(benchmark::State& state) {
  const auto backend = emulated_backend(state);
  if (!backend) return;
  const int64_t rows = state.range(0), cols = 4096;
  const Tensor x =
      backend->to_device_2d(random_floats(static_cast<size_t>(rows * cols), 3), rows, cols);
  const Tensor w = backend->to_device_1d(random_floats(static_cast<size_t>(cols), 4));
  Tensor y = backend->alloc(Shape{rows, cols}, DType::F32);
  for (auto _ : state) {
    backend->rmsnorm(x, w, y, 1e-5f);
    backend->synchronize();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols);
}
BENCHMARK(BM_RmsNorm)->Arg(32)->Arg(512)->Unit(benchmark::kMillisecond);

}  // namespace
