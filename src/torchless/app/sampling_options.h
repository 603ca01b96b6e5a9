#pragma once
// The sampling options of every command that samples (generate, chat), declared once.
#include <cstdint>

#include <CLI/CLI.hpp>

#include "torchless/engine/sampler.h"

namespace torchless::app {

struct SamplingArgs {
  SamplerOptions sampler;
  int64_t seed = -1;  // -1: a random seed
};

void add_sampling_options(CLI::App& app, SamplingArgs& args);
// The sampler options with the seed resolved (a fresh random one when -1).
SamplerOptions resolve_sampling(const SamplingArgs& args);

}  // namespace torchless::app
