#pragma once
// llama2.c checkpoints (Karpathy's run.c), float32 only:
//   - legacy: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
//     a negative vocab_size means an unshared classifier), then the weights in run.c's order
//     (token_embedding_table, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, the
//     unused freq_cis_real/imag tail, then wcls when unshared);
//   - version 1 ("ak42" magic, 256-byte header, norms first; export.py version1_export).
// Tensors are views into the mapping. llama2.c rotates adjacent pairs (2i, 2i+1) and keeps
// q/k rows in that order (llama.cpp's converter copies them unchanged), so rope_neox = false.
#include <filesystem>
#include <span>

#include "torchless/formats/model_loader.h"

namespace torchless {

// True when `bytes` start with something that can only be a llama2.c checkpoint header
// (the version-1 magic, or a legacy header whose sizes add up to exactly `bytes.size()`).
bool looks_like_llama2c(std::span<const std::byte> bytes);

LoadedModel load_llama2c_model(const std::filesystem::path& path);

}  // namespace torchless
