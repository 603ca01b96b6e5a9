#pragma once
// The host's view of kernels/metal_args.h: the same structs in torchless::metal, with their
// layouts pinned so a change on one side cannot silently break the other.
#include <cstddef>
#include <cstdint>

#define TORCHLESS_METAL_ARGS_NAMESPACE_BEGIN namespace torchless::metal {
#define TORCHLESS_METAL_ARGS_NAMESPACE_END }
#include "torchless/backends/metal/kernels/metal_args.h"
#undef TORCHLESS_METAL_ARGS_NAMESPACE_BEGIN
#undef TORCHLESS_METAL_ARGS_NAMESPACE_END

namespace torchless::metal {

static_assert(sizeof(RowArgs) == 16 && offsetof(RowArgs, eps) == 8);
static_assert(sizeof(ElementwiseArgs) == 16 && offsetof(ElementwiseArgs, period) == 8);
static_assert(sizeof(RopeArgs) == 24 && offsetof(RopeArgs, neox) == 16);
static_assert(sizeof(MatmulArgs) == 24 && offsetof(MatmulArgs, rows) == 8 &&
              offsetof(MatmulArgs, tile) == 20);
static_assert(sizeof(EmbeddingArgs) == 24 && offsetof(EmbeddingArgs, table_rows) == 16);
static_assert(sizeof(AttentionArgs) == 48 && offsetof(AttentionArgs, split_len) == 36 &&
              offsetof(AttentionArgs, scale) == 40);
static_assert(sizeof(PagedStoreArgs) == 16 && offsetof(PagedStoreArgs, cols) == 8);
static_assert(sizeof(PagedAttentionArgs) == 32 && offsetof(PagedAttentionArgs, scale) == 28);
static_assert(sizeof(ProbeArgs) == 16 && offsetof(ProbeArgs, delta) == 12);

}  // namespace torchless::metal
