#include "torchless/app/sampling_options.h"

#include <random>

namespace torchless::app {

void add_sampling_options(CLI::App& app, SamplingArgs& args) {
  SamplerOptions& s = args.sampler;
  app.add_option("--temp", s.temperature, "temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")
      ->capture_default_str();
  app.add_option("--top-p", s.top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  app.add_option("--min-p", s.min_p, "drop tokens below min-p x the top probability (0: off)")
      ->capture_default_str();
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  app.add_option("--repeat-last-n", s.penalty_last_n, "tokens the penalties look back on")
      ->capture_default_str();
  app.add_option("--presence-penalty", s.presence_penalty, "presence penalty (0: off)")
      ->capture_default_str();
  app.add_option("-s,--seed", args.seed, "random seed (-1: random)")->capture_default_str();
}

SamplerOptions resolve_sampling(const SamplingArgs& args) {
  SamplerOptions s = args.sampler;
  s.seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  return s;
}

}  // namespace torchless::app
