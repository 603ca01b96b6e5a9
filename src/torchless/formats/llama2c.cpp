#include "torchless/formats/llama2c.h"

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

namespace torchless {
namespace {

constexpr uint32_t kVersionMagic = 0x616b3432;  // "ak42", export.py version1_export
constexpr size_t kLegacyHeaderBytes = 7 * sizeof(int32_t);
constexpr size_t kV1HeaderBytes = 256;

struct Header {
  int version = 0;  // 0 = legacy run.c format
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  bool shared_classifier = true;
  size_t data_offset = kLegacyHeaderBytes;
};

// One stretch of floats in file order; an empty name is skipped (the freq_cis tail).
struct Entry {
  std::string name;
  Shape shape;
  uint64_t floats = 0;
};

int32_t read_i32(std::span<const std::byte> bytes, size_t offset) {
  int32_t v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

Header read_header(std::span<const std::byte> bytes) {
  Header h;
  if (bytes.size() < kLegacyHeaderBytes)
    fail("file of {} bytes is too short for a llama2.c header", bytes.size());
  size_t at = 0;
  if (static_cast<uint32_t>(read_i32(bytes, 0)) == kVersionMagic) {
    if (bytes.size() < kV1HeaderBytes)
      fail("file of {} bytes is too short for a llama2.c v1 header", bytes.size());
    h.version = read_i32(bytes, 4);
    if (h.version != 1) {
      fail("llama2.c checkpoint version {} is not supported (only legacy and version 1 float32)",
           h.version);
    }
    at = 8;
    h.data_offset = kV1HeaderBytes;
  }
  int32_t* fields[] = {&h.dim,        &h.hidden_dim, &h.n_layers, &h.n_heads,
                       &h.n_kv_heads, &h.vocab_size, &h.seq_len};
  for (int32_t* f : fields) {
    *f = read_i32(bytes, at);
    at += 4;
  }
  if (h.version == 1) {
    h.shared_classifier = static_cast<uint8_t>(bytes[at]) != 0;
  } else {
    h.shared_classifier = h.vocab_size > 0;
    // INT32_MIN has no positive counterpart: 0 makes check_header reject it.
    if (h.vocab_size == std::numeric_limits<int32_t>::min()) h.vocab_size = 0;
    h.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  }
  return h;
}

void check_header(const Header& h) {
  // Bounds keep every size product below 2^63.
  const auto in_range = [](int32_t v, int32_t max) { return v > 0 && v <= max; };
  if (!in_range(h.dim, 1 << 20) || !in_range(h.hidden_dim, 1 << 20) ||
      !in_range(h.n_layers, 1 << 12) || !in_range(h.n_heads, 1 << 12) ||
      !in_range(h.n_kv_heads, 1 << 12) || !in_range(h.vocab_size, 1 << 24) ||
      !in_range(h.seq_len, 1 << 24)) {
    fail(
        "implausible llama2.c header (dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads "
        "{}, "
        "vocab_size {}, seq_len {})",
        h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len);
  }
  if (h.dim % h.n_heads != 0 || (h.dim / h.n_heads) % 2 != 0 || h.n_heads % h.n_kv_heads != 0) {
    fail("llama2.c header: dim {} with {} heads and {} KV heads is not a valid attention shape",
         h.dim, h.n_heads, h.n_kv_heads);
  }
}

void add_layers(std::vector<Entry>& out, const Header& h, std::string_view name, Shape shape) {
  for (int l = 0; l < h.n_layers; ++l) {
    out.push_back({fmt::format("blk.{}.{}", l, name), shape, static_cast<uint64_t>(shape.numel())});
  }
}

void add(std::vector<Entry>& out, std::string name, Shape shape) {
  out.push_back({std::move(name), shape, static_cast<uint64_t>(shape.numel())});
}

// Tensor shapes are [out, in]: run.c's matmul reads w[i * n + j] for output i, input j.
std::vector<Entry> file_layout(const Header& h, bool with_freq_tail) {
  const int64_t dim = h.dim, hidden = h.hidden_dim, vocab = h.vocab_size;
  const int64_t head = dim / h.n_heads, kv_dim = head * h.n_kv_heads;
  std::vector<Entry> out;
  const auto matrices = [&] {
    add_layers(out, h, "attn_q.weight", Shape{dim, dim});
    add_layers(out, h, "attn_k.weight", Shape{kv_dim, dim});
    add_layers(out, h, "attn_v.weight", Shape{kv_dim, dim});
    add_layers(out, h, "attn_output.weight", Shape{dim, dim});
  };
  const auto ffn = [&] {
    add_layers(out, h, "ffn_gate.weight", Shape{hidden, dim});
    add_layers(out, h, "ffn_down.weight", Shape{dim, hidden});
    add_layers(out, h, "ffn_up.weight", Shape{hidden, dim});
  };
  if (h.version == 1) {
    add_layers(out, h, "attn_norm.weight", Shape{dim});
    add_layers(out, h, "ffn_norm.weight", Shape{dim});
    add(out, "output_norm.weight", Shape{dim});
    add(out, "token_embd.weight", Shape{vocab, dim});
    matrices();
    ffn();
  } else {
    add(out, "token_embd.weight", Shape{vocab, dim});
    add_layers(out, h, "attn_norm.weight", Shape{dim});
    matrices();
    add_layers(out, h, "ffn_norm.weight", Shape{dim});
    ffn();
    add(out, "output_norm.weight", Shape{dim});
    if (with_freq_tail) add(out, "", Shape{2 * static_cast<int64_t>(h.seq_len) * head / 2});
  }
  if (!h.shared_classifier) add(out, "output.weight", Shape{vocab, dim});
  return out;
}

uint64_t layout_bytes(const Header& h, const std::vector<Entry>& layout) {
  uint64_t floats = 0;
  for (const Entry& e : layout) floats += e.floats;
  return h.data_offset + floats * sizeof(float);
}

// The legacy format always has the freq_cis tail, but a shared-classifier file cut right after
// rms_final_weight is still complete for run.c; accept both, nothing else.
std::vector<Entry> matching_layout(const Header& h, size_t file_size) {
  std::vector<Entry> layout = file_layout(h, true);
  const uint64_t expected = layout_bytes(h, layout);
  if (file_size == expected) return layout;
  if (h.version == 0 && h.shared_classifier) {
    std::vector<Entry> short_layout = file_layout(h, false);
    if (file_size == layout_bytes(h, short_layout)) return short_layout;
  }
  fail(
      "llama2.c checkpoint has {} bytes but its header (dim {}, hidden_dim {}, n_layers {}, "
      "n_heads {}, "
      "n_kv_heads {}, vocab_size {}, seq_len {}, {} classifier) needs {}{}",
      file_size, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len,
      h.shared_classifier ? "shared" : "separate", expected,
      file_size < expected ? " (file truncated or incomplete download)" : "");
}

}  // namespace

bool looks_like_llama2c(std::span<const std::byte> bytes) {
  if (bytes.size() >= 4 && static_cast<uint32_t>(read_i32(bytes, 0)) == kVersionMagic) return true;
  try {
    const Header h = read_header(bytes);
    check_header(h);
    matching_layout(h, bytes.size());
    return true;
  } catch (const Error&) {
    return false;
  }
}

LoadedModel load_llama2c_model(const std::filesystem::path& path) {
  auto mapping = MappedFile::open(path);
  const Header h = read_header(mapping->bytes());
  check_header(h);
  const std::vector<Entry> layout = matching_layout(h, mapping->size());

  LoadedModel model;
  model.format = ModelFormat::Llama2c;
  model.path = path;
  ModelConfig& c = model.config;
  c.architecture = "llama";
  c.name = path.stem().string();
  c.n_vocab = h.vocab_size;
  c.n_embd = h.dim;
  c.n_ff = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.n_ctx_train = h.seq_len;
  c.norm_eps = 1e-5f;  // run.c's rmsnorm
  c.rope_theta = 10000.0f;
  c.rope_neox = false;
  c.tied_embeddings = h.shared_classifier;

  size_t offset = h.data_offset;
  for (const Entry& e : layout) {
    const size_t nbytes = static_cast<size_t>(e.floats) * sizeof(float);
    if (!e.name.empty())
      model.weights.add(e.name, {e.shape, DType::F32, mapping->data() + offset, nbytes});
    offset += nbytes;
  }
  model.weights.add_mapping(std::move(mapping));
  return model;
}

}  // namespace torchless
