#pragma once
// Shape checks of the paged attention ops (backend.h), shared by every backend so that they
// reject the same calls with the same messages. Each throws Error naming the op and operand.
// Values inside the index tensors (sequence ids, block ids) are checked by backends that can
// read them on the host (the CPU); GPU kernels read them on the device.
#include "torchless/backends/backend.h"

namespace torchless {

void check_paged_kv_store(const Tensor& src, const Tensor& pool, const Tensor& slots);
void check_paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                           const Tensor& tokens, const Tensor& block_tables, const Tensor& out,
                           const PagedAttentionParams& params);

}  // namespace torchless
