#pragma once
// Hyperparameters and per-family switches of the one Llama-family Transformer. Every loader
// (GGUF, safetensors + config.json, llama2.c) fills this; the model code reads nothing else.
#include <cstdint>
#include <string>

namespace torchless {

enum class RopeScaling { None, Linear, Llama3, Yarn };

struct ModelConfig {
  std::string architecture;  // "llama", "mistral", "qwen2", "qwen3" (GGUF general.architecture)
  std::string name;          // general.name or the directory name, for display
  int n_vocab = 0;
  int n_embd = 0;  // hidden size
  int n_ff = 0;    // feed-forward (intermediate) size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;     // n_embd / n_heads unless the file says otherwise (Qwen3)
  int n_ctx_train = 0;  // context length the model was trained with
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  bool rope_neox = false;  // rotate (i, i + d/2) instead of (2i, 2i+1); see backend.h
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_scaling_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;   // llama3
  float rope_high_freq_factor = 4.0f;  // llama3
  int rope_original_context = 8192;    // llama3 / yarn
  int sliding_window = 0;              // 0 = full attention (Mistral: 4096)
  bool qkv_bias = false;               // Qwen2
  bool qk_norm = false;                // Qwen3: RMSNorm of each q and k head before RoPE
  bool tied_embeddings = false;        // output projection reuses token_embd.weight
  // The WeightStore holds rope_freqs.weight [head_dim/2] (F32, llama.cpp's freq_factors): RoPE
  // frequency i becomes theta^(-2i/head_dim) / rope_freqs[i]. GGUF files carry llama3 scaling
  // this way (and no scaling keys), so rope_scaling stays None for them; Hugging Face configs
  // give RopeScaling::Llama3 and its parameters instead, with no tensor.
  bool rope_freq_factors = false;
};

}  // namespace torchless
