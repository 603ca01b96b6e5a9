#include "torchless/model/tensor_parallel.h"

#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "torchless/core/error.h"

namespace torchless {
namespace {

std::string layer_name(int layer, std::string_view suffix) {
  return fmt::format("blk.{}.{}", layer, suffix);
}

// "" when `what` (count of them) splits over n; else the reason.
std::string split_problem(int64_t count, std::string_view what, int n) {
  if (count % n == 0) return {};
  return fmt::format("its {} {} do not split over {} ranks", count, what, n);
}

// KV heads split over n ranks, or repeat across them (kv_slice).
std::string kv_problem(int n_kv_heads, int n) {
  if (n_kv_heads % n == 0 || n % n_kv_heads == 0) return {};
  return fmt::format("its {} KV heads neither split over {} ranks nor repeat evenly across them",
                     n_kv_heads, n);
}

// A column slice of `cols / n` values must hold whole quantisation blocks.
std::string column_problem(const LoadedModel& model, const std::string& name, int n) {
  const HostTensorView* view = model.weights.find(name);
  if (view == nullptr) return {};  // the Transformer reports the missing tensor by name
  const int64_t slice = view->shape.cols() / n;
  const int64_t block = dtype_block_size(view->dtype);
  if (view->shape.cols() % n == 0 && slice % block == 0) return {};
  return fmt::format(
      "{} ({}) has {} columns, which do not split over {} ranks into whole {}-value blocks", name,
      dtype_name(view->dtype), view->shape.cols(), n, block);
}

void copy_bytes(std::byte* dst, const std::byte* src, size_t n) {
  if (n > 0) std::memcpy(dst, src, n);
}

}  // namespace

std::string tensor_parallel_problem(const LoadedModel& model, int n) {
  const ModelConfig& c = model.config;
  if (n < 1) return fmt::format("the rank count must be at least 1, got {}", n);
  for (const std::string& problem :
       {split_problem(c.n_heads, "attention heads", n), kv_problem(c.n_kv_heads, n),
        split_problem(c.n_ff, "feed-forward rows", n),
        split_problem(c.n_vocab, "vocabulary entries", n)}) {
    if (!problem.empty()) return problem;
  }
  for (int layer = 0; layer < c.n_layers; ++layer) {
    for (const char* suffix : {"attn_output.weight", "ffn_down.weight"}) {
      std::string problem = column_problem(model, layer_name(layer, suffix), n);
      if (!problem.empty()) return problem;
    }
  }
  return {};
}

void check_tensor_parallel(const LoadedModel& model, int n) {
  const std::string problem = tensor_parallel_problem(model, n);
  if (problem.empty()) return;
  // Query heads split whole, so no count above theirs can work.
  std::vector<std::string> valid;
  for (int m = 1; m <= model.config.n_heads; ++m) {
    if (tensor_parallel_problem(model, m).empty()) valid.push_back(std::to_string(m));
  }
  fail("--tensor-parallel {} cannot split {}: {}; it splits over N = {}", n, model.path.string(),
       problem, fmt::join(valid, ", "));
}

ModelConfig shard_config(const ModelConfig& config, int n) {
  ModelConfig c = config;
  c.n_heads /= n;
  c.n_kv_heads = config.n_kv_heads % n == 0 ? config.n_kv_heads / n : 1;
  c.n_ff /= n;
  return c;
}

Slice kv_slice(const ModelConfig& config, int rank, int n) {
  if (config.n_kv_heads % n == 0) return {Split::Rows, rank, n};
  const std::string problem = kv_problem(config.n_kv_heads, n);
  if (!problem.empty()) fail("tensor parallelism: {}", problem);
  // n / n_kv_heads consecutive ranks hold the query heads of one KV head's group.
  return {Split::Rows, rank / (n / config.n_kv_heads), config.n_kv_heads};
}

HostTensorView shard_matrix(const std::string& name, const HostTensorView& full, Split split,
                            int rank, int n, WeightStore& keep) {
  const int64_t rows = full.shape.rows(), cols = full.shape.cols();
  if (full.shape.rank() != 2)
    fail("tensor {} has shape {}, expected a matrix", name, full.shape.str());
  if (split == Split::None || n == 1) return full;
  const size_t row_bytes = dtype_row_bytes(full.dtype, cols);
  HostTensorView part = full;
  if (split == Split::Rows) {
    if (rows % n != 0) fail("tensor {}: {} rows do not split over {} ranks", name, rows, n);
    const int64_t count = rows / n;
    part.shape = Shape{count, cols};
    part.data = full.data + static_cast<size_t>(rank * count) * row_bytes;
    part.nbytes = static_cast<size_t>(count) * row_bytes;
    return part;
  }
  const int64_t count = cols / n;
  if (cols % n != 0 || count % dtype_block_size(full.dtype) != 0) {
    fail("tensor {}: {} {} columns do not split over {} ranks on block boundaries", name, cols,
         dtype_name(full.dtype), n);
  }
  const size_t offset = dtype_row_bytes(full.dtype, rank * count);
  const size_t part_row = dtype_row_bytes(full.dtype, count);
  auto bytes = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(rows) * part_row);
  for (int64_t r = 0; r < rows; ++r) {
    copy_bytes(bytes->data() + static_cast<size_t>(r) * part_row,
               full.data + static_cast<size_t>(r) * row_bytes + offset, part_row);
  }
  part.shape = Shape{rows, count};
  part.data = bytes->data();
  part.nbytes = bytes->size();
  keep.keep_alive(std::move(bytes));
  return part;
}

HostTensorView shard_vector(const std::string& name, const HostTensorView& full, int rank, int n) {
  const int64_t size = full.shape.numel();
  if (full.shape.rank() != 1 || size % n != 0 || dtype_block_size(full.dtype) != 1) {
    fail("tensor {} ({}, shape {}) does not split over {} ranks", name, dtype_name(full.dtype),
         full.shape.str(), n);
  }
  HostTensorView part = full;
  part.shape = Shape{size / n};
  part.nbytes = dtype_row_bytes(full.dtype, size / n);
  part.data = full.data + static_cast<size_t>(rank) * part.nbytes;
  return part;
}

HostTensorView shard_embedding(const std::string& name, const HostTensorView& table, int rank,
                               int n, WeightStore& keep) {
  const HostTensorView rows = shard_matrix(name, table, Split::Rows, rank, n, keep);
  // Every quantised format scales its values by a per-block factor: zero bytes are a zero row.
  auto bytes = std::make_shared<std::vector<std::byte>>(
      rows.nbytes + rows.nbytes / static_cast<size_t>(rows.shape.rows()));
  copy_bytes(bytes->data(), rows.data, rows.nbytes);
  HostTensorView part = rows;
  part.shape = Shape{rows.shape.rows() + 1, rows.shape.cols()};
  part.data = bytes->data();
  part.nbytes = bytes->size();
  keep.keep_alive(std::move(bytes));
  return part;
}

}  // namespace torchless
