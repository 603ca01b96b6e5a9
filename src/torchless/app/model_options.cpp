#include "torchless/app/model_options.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include <fmt/format.h>

#include "torchless/app/hub_model.h"
#include "torchless/backends/backend.h"
#include "torchless/core/dtype.h"
#include "torchless/core/error.h"

namespace torchless::app {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The backend name as init_backend takes it; throws Error for an unknown one.
std::string resolve_backend(const ModelOptions& options) {
  std::string name = lower(options.backend);
  if (options.gpu_layers == 0) {
    if (name != "auto" && name != "cpu") {
      fail("-ngl 0 asks for the CPU but --backend is {}: drop one of them", options.backend);
    }
    return "cpu";
  }
  if (name != "metal-emulated") (void)parse_backend_preference(name);
  return name;
}

}  // namespace

void add_model_options(CLI::App& app, ModelOptions& options, ModelOptionSet which) {
  CLI::Option* model =
      app.add_option("-m,--model", options.model,
                     "model: a GGUF file, a Hugging Face directory, or a llama2.c checkpoint");
  add_hf_option(app, options.hf_repo, model);
  if (which.tokenizer) {
    app.add_option("--tokenizer", options.tokenizer,
                   "tokenizer file (llama2.c tokenizer.bin, or overrides the model's own)");
  }
  app.add_option("--backend", options.backend,
                 "auto, cpu, metal, cuda or metal-emulated (any case)")
      ->capture_default_str();
  app.add_option("-t,--threads", options.threads, "CPU threads (0: physical cores)");
  app.add_option("--n-gpu-layers", options.gpu_layers,
                 "llama.cpp's -ngl: 0 runs on the CPU; otherwise every layer goes to the "
                 "chosen backend");
  app.add_option("--tensor-parallel", options.tensor_parallel,
                 "-tp: split the model over N ranks: N GPUs with --backend cuda, N groups of "
                 "threads on the CPU (docs/multi-gpu.md)")
      ->capture_default_str();
  if (which.context) {
    app.add_option("-c,--ctx,--ctx-size", options.ctx,
                   "context length (0: the model's, at most 4096)");
    app.add_option("--kv-type,--cache-type-k", options.kv_type,
                   "KV cache type: f16, f32 or q8_0 (llama.cpp: -ctk; default " +
                       options.default_kv_type + ")");
    app.add_option("--cache-type-v", options.kv_type_v, "llama.cpp's -ctv: as --kv-type");
    app.add_flag("--kv-f16", options.kv_f16, "the same as --kv-type f16");
  }
}

int resolve_threads(int requested) {
  if (requested < 0) fail("--threads must be 0 (all physical cores) or more, got {}", requested);
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (requested > cpus) {
    fmt::print(stderr, "warning: --threads {} is more than the {} CPUs of this machine; using {}\n",
               requested, cpus, cpus);
    return cpus;
  }
  return requested;
}

SessionOptions session_options(const ModelOptions& options) {
  if (options.ctx < 0) fail("--ctx must be 0 (the model's context) or more, got {}", options.ctx);
  if (options.gpu_layers < -1) {
    fail("-ngl must be 0 (CPU) or a layer count, got {}", options.gpu_layers);
  }
  if (options.tensor_parallel < 1) {
    fail("--tensor-parallel must be 1 (not split) or more, got {}", options.tensor_parallel);
  }
  SessionOptions s;
  s.backend = resolve_backend(options);
  s.tensor_parallel = options.tensor_parallel;
  s.threads = resolve_threads(options.threads);
  s.model_path = model_path_or_hub(options.model, options.hf_repo);
  s.tokenizer_path = options.tokenizer;
  s.n_ctx = options.ctx;
  const std::string k = lower(options.kv_type);
  const std::string v = lower(options.kv_type_v);
  if (!k.empty() && !v.empty() && k != v) {
    fail("-ctk {} and -ctv {}: torchless keeps K and V in one type", options.kv_type,
         options.kv_type_v);
  }
  const std::string kv_type = !k.empty() ? k : !v.empty() ? v : options.default_kv_type;
  if (kv_type != "f16" && kv_type != "f32" && kv_type != "q8_0") {
    fail("--kv-type must be f16, f32 or q8_0, got '{}'", kv_type);
  }
  if (options.kv_f16 && kv_type != "f16" && !(k.empty() && v.empty())) {
    fail("--kv-f16 and --kv-type {} ask for two KV cache types", kv_type);
  }
  s.kv_dtype = options.kv_f16 ? DType::F16 : *dtype_from_name(kv_type);
  return s;
}

}  // namespace torchless::app
