// Argument structs shared by the shaders and the host (bound with setBytes at [[buffer(0)]]),
// so host and GPU cannot disagree on a layout. Rules: fixed-width scalars only, 8-byte fields
// first, sizes padded to a multiple of 8, no bool, no MSL vector types. The host includes this
// through metal_kernel_args.h, which opens the torchless::metal namespace and static_asserts
// every size.
#ifndef TORCHLESS_METAL_ARGS_H
#define TORCHLESS_METAL_ARGS_H

#ifdef TORCHLESS_METAL_ARGS_NAMESPACE_BEGIN
TORCHLESS_METAL_ARGS_NAMESPACE_BEGIN
#endif

// rmsnorm_kernel, softmax_kernel: one threadgroup per row.
struct RowArgs {
  int32_t rows;
  int32_t cols;
  float eps;  // rmsnorm only
  int32_t pad;
};

// silu, fused_silu_mul, add, kv_store: grid-stride loops over n elements.
struct ElementwiseArgs {
  int64_t n;
  int64_t period;  // add: b is read at i % period (period == n: same shape; cols: bias row)
};

struct RopeArgs {
  int32_t n_tokens;
  int32_t n_heads;
  int32_t head_dim;
  int32_t pos0;
  int32_t neox;  // 0: rotate (2i, 2i+1); 1: rotate (i, i + head_dim / 2)
  int32_t pad;
};

// matmul_vec_* and matmul_*: y[t, r] = sum_k W[r, k] x[t, k].
struct MatmulArgs {
  int64_t w_row_bytes;
  int32_t rows;
  int32_t cols;
  int32_t n_tokens;
  int32_t tile;  // matmul_vec_tiled_kernel: floats of x staged per step
};

struct EmbeddingArgs {
  int64_t row_bytes;
  int32_t n_ids;
  int32_t cols;
  int32_t table_rows;  // ids outside [0, table_rows) produce zeros, never a stray read
  int32_t pad;
};

// attention_scores, weighted_sum, attention (flash decoding) and its merge.
// paged_kv_store_kernel: row i of src goes to pool row slots[i].
struct PagedStoreArgs {
  int64_t n;  // elements of src
  int32_t cols;
  int32_t pad;
};

// paged_attention_kernel: one simdgroup per (query head, token), over its sequence's blocks.
struct PagedAttentionArgs {
  int32_t n_tokens;
  int32_t n_heads;
  int32_t n_kv_heads;
  int32_t head_dim;
  int32_t window;  // 0: no sliding window
  int32_t block_size;
  int32_t max_blocks;  // columns of the block tables
  float scale;
};

struct AttentionArgs {
  int32_t n_tokens;
  int32_t pos0;
  int32_t n_heads;
  int32_t n_kv_heads;
  int32_t head_dim;
  int32_t window;          // 0: no sliding window
  int32_t scores_stride;   // attention_scores/weighted_sum: floats per row of scores
  int32_t keys_per_group;  // attention_scores: keys per threadgroup
  int32_t n_splits;        // attention: splits of the key range (1: write out directly)
  int32_t split_len;       // attention: keys per split
  float scale;
  int32_t pad;
};

// hardware_probes.metal: the behaviours the MSL emulator assumes, measured by metal-selftest.
struct ProbeArgs {
  int32_t origin_col;  // simdgroup_load origin, as (column, row)
  int32_t origin_row;
  int32_t row_stride;  // elements per row of the probed matrix
  int32_t delta;       // simd_shuffle_down distance
};

#ifdef TORCHLESS_METAL_ARGS_NAMESPACE_END
TORCHLESS_METAL_ARGS_NAMESPACE_END
#endif

#endif  // TORCHLESS_METAL_ARGS_H
