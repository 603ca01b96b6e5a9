#pragma once
// Named weight tensors of a loaded model, as views into memory-mapped files (no copies).
// Names are canonical, whatever the file format (GGUF's names):
//   token_embd.weight [n_vocab, n_embd]        output_norm.weight [n_embd]
//   output.weight [n_vocab, n_embd] (absent when embeddings are tied)
//   blk.{i}.attn_norm.weight [n_embd]          blk.{i}.ffn_norm.weight [n_embd]
//   blk.{i}.attn_q.weight [n_heads*head_dim, n_embd]
//   blk.{i}.attn_k.weight / attn_v.weight [n_kv_heads*head_dim, n_embd]
//   blk.{i}.attn_output.weight [n_embd, n_heads*head_dim]
//   blk.{i}.attn_q.bias / attn_k.bias / attn_v.bias (Qwen2)
//   blk.{i}.attn_q_norm.weight / attn_k_norm.weight [head_dim] (Qwen3)
//   blk.{i}.ffn_gate.weight / ffn_up.weight [n_ff, n_embd]   blk.{i}.ffn_down.weight [n_embd, n_ff]
// Shapes are row-major (see shape.h), i.e. the reverse of GGUF's ne[] order.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "torchless/core/mapped_file.h"
#include "torchless/core/tensor.h"

namespace torchless {

class WeightStore {
 public:
  // Keeps `owner` (a MappedFile, or any buffer) alive as long as the store.
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }
  // Keeps a mapped file alive and remembers its bytes, so a GPU backend can wrap each file once
  // (see Backend::map_host_region) rather than tensor by tensor.
  void add_mapping(std::shared_ptr<const MappedFile> file);
  const std::vector<std::span<const std::byte>>& mapped_regions() const { return regions_; }
  void add(std::string name, const HostTensorView& view);  // throws Error on duplicates
  bool contains(std::string_view name) const;
  const HostTensorView& get(std::string_view name) const;  // throws Error naming the tensor
  const HostTensorView* find(std::string_view name) const;
  const std::map<std::string, HostTensorView, std::less<>>& all() const { return tensors_; }

 private:
  std::map<std::string, HostTensorView, std::less<>> tensors_;
  std::vector<std::shared_ptr<const void>> owners_;
  std::vector<std::span<const std::byte>> regions_;
};

}  // namespace torchless
