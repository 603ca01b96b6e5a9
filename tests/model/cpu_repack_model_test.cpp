// A Q4_K model on the CPU backend with its matrices repacked at load (backends/cpu/cpu_repack.h,
// forced on every CPU with TORCHLESS_CPU_REPACK=force) gives the logits of the plain layout
// (TORCHLESS_CPU_REPACK=0) bit for bit, over a prompt (batch) and decode steps (mat-vec), with
// a tied head (the embedding table, which must stay plain) and with its own head.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "common/temp_dir.h"
#include "torchless/backends/backend_registry.h"
#include "torchless/formats/model_loader.h"
#include "torchless/formats/random_model_writer.h"
#include "torchless/model/transformer.h"

namespace torchless {
namespace {

// Widths of whole Q4_K super-blocks (256), a row count (n_vocab) that leaves a partial group.
std::filesystem::path q4k_model(const test::TempDir& dir, bool tied) {
  RandomModelSpec spec;
  spec.config.n_vocab = 300;
  spec.config.n_embd = 256;
  spec.config.n_ff = 512;
  spec.config.n_layers = 2;
  spec.config.n_heads = 4;
  spec.config.n_kv_heads = 2;
  spec.config.head_dim = 64;
  spec.config.n_ctx_train = 64;
  spec.config.tied_embeddings = tied;
  spec.weight_dtype = DType::Q4_K;
  spec.seed = 31;
  const auto path = dir / (tied ? "tied.gguf" : "untied.gguf");
  write_random_model(spec, path);
  return path;
}

// The logits of a 7-token prompt and then 3 decode steps, with repacking set to `setting`.
std::vector<float> logits(const std::filesystem::path& path, const char* setting) {
  ::setenv("TORCHLESS_CPU_REPACK", setting, 1);
  BackendOptions options;
  options.threads = 2;
  auto backend = init_backend("cpu", options);
  Transformer model(load_model(path), *backend);
  ::unsetenv("TORCHLESS_CPU_REPACK");
  auto cache = model.new_kv_cache(32, DType::F32);
  const std::vector<int32_t> prompt = {1, 17, 250, 3, 99, 299, 42};
  std::vector<float> out;
  auto last = model.forward(prompt, 0, *cache);
  out.insert(out.end(), last.begin(), last.end());
  for (int step = 0; step < 3; ++step) {
    const std::vector<int32_t> token = {static_cast<int32_t>(7 + 50 * step)};
    last = model.forward(token, static_cast<int>(prompt.size()) + step, *cache);
    out.insert(out.end(), last.begin(), last.end());
  }
  return out;
}

TEST(CpuRepackModel, RepackedQ4KModelGivesThePlainLogitsBitForBit) {
  test::TempDir dir;
  for (bool tied : {true, false}) {
    const auto path = q4k_model(dir, tied);
    const auto plain = logits(path, "0");
    const auto repacked = logits(path, "force");
    ASSERT_EQ(plain.size(), repacked.size());
    for (size_t i = 0; i < plain.size(); ++i) {
      ASSERT_EQ(repacked[i], plain[i]) << (tied ? "tied" : "untied") << " head, logit " << i;
    }
  }
}

}  // namespace
}  // namespace torchless
