#pragma once
// How a model splits over the ranks of a tensor-parallel group (Megatron-LM's layout,
// docs/multi-gpu.md). Rank r of n holds:
//   - attention: its n_heads/n query heads and the KV heads they use (rows of Wq, Wk, Wv and
//     their biases; its slice of the KV cache), and the matching input columns of Wo. With n
//     dividing n_kv_heads that is n_kv_heads/n KV heads; with n a multiple of n_kv_heads, one
//     KV head that n/n_kv_heads neighbouring ranks each hold a copy of (vLLM's replication);
//   - feed-forward: n_ff/n rows of W_gate and W_up, the matching input columns of W_down;
//   - vocabulary: n_vocab/n rows of the embedding table and of the output head.
// Each rank's Wo and W_down products are partial sums of the full ones: an all-reduce per
// product (two per layer) joins them; the embedding is joined the same way and the logits
// with an all-gather. Norm weights are replicated.
//
// Row slices are views of the mapped weights (no copy); column slices (Wo, W_down) are copied
// once, since a column slice of a row-major matrix is not contiguous. A quantised matrix is
// split between its blocks only (a column slice must be a whole number of 32- or 256-value
// blocks); a model that does not split evenly is refused, naming the rank counts that would do.
#include <functional>
#include <memory>
#include <string>

#include "torchless/backends/backend.h"
#include "torchless/backends/communicator.h"
#include "torchless/formats/model_loader.h"

namespace torchless {

// One rank of a group, as a Transformer holding a slice sees it ({0, 1, null}: the whole model).
struct TensorParallelRank {
  int rank = 0;
  int size = 1;
  Communicator* comm = nullptr;
};

// A model split over `size` ranks of one process (size 1: not split).
struct TensorParallelOptions {
  int size = 1;
  // The backend of rank r >= 1 (rank 0 runs on the Transformer's own backend), of rank 0's kind
  // (make_rank_backend: CUDA on device r).
  std::function<std::unique_ptr<Backend>(int rank)> make_backend;
};

// "" when the model splits evenly over n ranks, else why not.
std::string tensor_parallel_problem(const LoadedModel& model, int n);
// Throws Error unless the model splits over n ranks; the message names the n that would work.
void check_tensor_parallel(const LoadedModel& model, int n);
// The shape one rank computes: heads and feed-forward width divided by n, KV heads divided by n
// or, where n exceeds them, one (the vocabulary stays the model's: token ids are global).
ModelConfig shard_config(const ModelConfig& config, int n);

enum class Split { None, Rows, Cols };

// Which part of a matrix a rank holds: part `part` of `parts` equal slices along `split`.
struct Slice {
  Split split = Split::None;
  int part = 0;
  int parts = 1;
};

// The rows of Wk and Wv (and of their biases) that rank `rank` of n holds, for a model of
// config.n_kv_heads KV heads (the whole model's config): its own n_kv_heads/n, or, when n is a
// multiple of n_kv_heads, the one KV head that its query heads use, shared with the
// n/n_kv_heads ranks around it.
Slice kv_slice(const ModelConfig& config, int rank, int n);

// Rank `rank` of `n`'s part of the matrix `name` ([rows, cols], any dtype): its rows (a view of
// the same bytes) or its columns (copied into bytes that `keep` holds for the model's lifetime).
HostTensorView shard_matrix(const std::string& name, const HostTensorView& full, Split split,
                            int rank, int n, WeightStore& keep);
// The rank's part of a 1-D tensor (biases): a view.
HostTensorView shard_vector(const std::string& name, const HostTensorView& full, int rank, int n);
// The rank's vocabulary rows of an embedding table [n_vocab, n_embd], then one zero row that the
// tokens of other ranks read, so that the all-reduce (sum) of the ranks' lookups is the row.
HostTensorView shard_embedding(const std::string& name, const HostTensorView& table, int rank,
                               int n, WeightStore& keep);

}  // namespace torchless
