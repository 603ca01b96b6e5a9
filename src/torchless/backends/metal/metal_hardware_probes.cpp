#include "torchless/backends/metal/metal_hardware_probes.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "torchless/backends/metal/metal_kernel_args.h"

namespace torchless::metal {
namespace {

constexpr int kStride = 16;  // the probed matrix is 16 x 16, in[r * 16 + c] = r * 16 + c
constexpr int kOriginCol = 3;
constexpr int kOriginRow = 5;
constexpr int kShuffleDelta = 4;

// Runs `kernel` once as one simdgroup with `args` at buffer 0, `inputs` at buffers 1.. and a
// float output of `n_out` elements after them; returns the output.
std::vector<float> run_probe(MetalDevice& device, std::string_view kernel, const ProbeArgs& args,
                             std::span<const std::vector<float>> inputs, size_t n_out) {
  std::vector<std::shared_ptr<MetalBuffer>> buffers;
  for (const std::vector<float>& values : inputs) {
    auto buffer = device.new_buffer(values.size() * sizeof(float));
    std::memcpy(buffer->contents(), values.data(), values.size() * sizeof(float));
    buffer->did_modify_range(0, values.size() * sizeof(float));
    buffers.push_back(std::move(buffer));
  }
  auto out = device.new_buffer(n_out * sizeof(float));
  buffers.push_back(out);
  auto cb = device.new_command_buffer();
  cb->set_pipeline(device.pipeline(kernel));
  cb->set_bytes(&args, sizeof args, 0);
  for (size_t i = 0; i < buffers.size(); ++i) {
    cb->set_buffer(*buffers[i], 0, buffers[i]->length(), static_cast<uint32_t>(i + 1));
  }
  cb->dispatch_threadgroups({1, 1, 1}, {device.info().simd_width, 1, 1});
  cb->synchronize_for_host(*out);
  cb->commit();
  cb->wait();
  std::vector<float> result(n_out);
  std::memcpy(result.data(), out->contents(), n_out * sizeof(float));
  return result;
}

std::string first_values(std::span<const float> values, size_t n) {
  return fmt::format("{}", fmt::join(values.first(std::min(n, values.size())), ", "));
}

ProbeOutcome probe_load_origin(MetalDevice& device) {
  std::vector<float> matrix(kStride * kStride);
  for (size_t i = 0; i < matrix.size(); ++i) matrix[i] = static_cast<float>(i);
  const ProbeArgs args{kOriginCol, kOriginRow, kStride, 0};
  const auto out =
      run_probe(device, "probe_simdgroup_load_origin_kernel", args, std::span(&matrix, 1), 64);
  ProbeOutcome o{"simdgroup_load's origin is (column, row)", true, {}};
  for (int r = 0; r < 8 && o.holds; ++r) {
    for (int c = 0; c < 8; ++c) {
      o.holds = o.holds && out[r * 8 + c] == matrix[(kOriginRow + r) * kStride + kOriginCol + c];
    }
  }
  if (!o.holds) {
    o.observed =
        fmt::format("origin ({}, {}) loaded a tile starting {} (expected {})", kOriginCol,
                    kOriginRow, first_values(out, 3), matrix[kOriginRow * kStride + kOriginCol]);
  }
  return o;
}

ProbeOutcome probe_diagonal(MetalDevice& device) {
  const auto out = run_probe(device, "probe_simdgroup_matrix_diagonal_kernel", ProbeArgs{}, {}, 64);
  ProbeOutcome o{"simdgroup_matrix(T) fills only the diagonal", true, {}};
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) o.holds = o.holds && out[r * 8 + c] == (r == c ? 3.0f : 0.0f);
  }
  if (!o.holds)
    o.observed = fmt::format("simdgroup_float8x8(3) stored rows starting {}", first_values(out, 9));
  return o;
}

ProbeOutcome probe_shuffle_down(MetalDevice& device) {
  const uint32_t width = device.info().simd_width;
  const ProbeArgs args{0, 0, 0, kShuffleDelta};
  const auto out = run_probe(device, "probe_shuffle_down_kernel", args, {}, width);
  ProbeOutcome o{
      fmt::format("simd_shuffle_down keeps top lanes' values (width {})", width), true, {}};
  for (uint32_t lane = 0; lane < width; ++lane) {
    const uint32_t source = lane + kShuffleDelta < width ? lane + kShuffleDelta : lane;
    o.holds = o.holds && out[lane] == static_cast<float>(source);
  }
  if (!o.holds) {
    o.observed = fmt::format("the top {} lanes received {}", kShuffleDelta,
                             first_values(std::span(out).last(kShuffleDelta), kShuffleDelta));
  }
  return o;
}

}  // namespace

std::vector<ProbeOutcome> probe_emulator_assumptions(MetalDevice& device) {
  std::vector<ProbeOutcome> outcomes;
  if (device.info().has_simdgroup_matrix) {
    outcomes.push_back(probe_load_origin(device));
    outcomes.push_back(probe_diagonal(device));
  }
  outcomes.push_back(probe_shuffle_down(device));
  return outcomes;
}

}  // namespace torchless::metal
