#pragma once
// The sampling options of every command that samples (generate, chat), declared once.
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "torchless/engine/dry_breakers.h"
#include "torchless/engine/sampler.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless::app {

struct SamplingArgs {
  SamplerOptions sampler;
  std::string seed = "-1";                   // -1: a random seed; else 0 .. 2^64-1
  std::vector<std::string> reverse_prompts;  // -r: stop once the output contains one
  std::vector<std::string> logit_bias;       // llama.cpp's "ID+BIAS" / "ID-BIAS" / "ID-inf"
  // --dry-sequence-breaker: strings with C escapes ("\\n"); "none" clears them.
  std::vector<std::string> dry_sequence_breakers = kDefaultDrySequenceBreakers;
};

void add_sampling_options(CLI::App& app, SamplingArgs& args);
// Throws Error naming the flag and its valid range when a value is out of range or NaN.
void check_sampling(const SamplingArgs& args);
// -n: -1 (no limit) or a count; throws Error otherwise.
void check_n_predict(int n_predict);
// The sampler options with the seed resolved (a fresh random one when -1) and, when DRY is on,
// the sequence breakers turned into token ids of `tokenizer`.
SamplerOptions resolve_sampling(const SamplingArgs& args, const Tokenizer& tokenizer);
// The breaker strings as the sampler takes them: C escapes (\n, \t, \", \\) resolved, and
// none at all when one of them is "none".
std::vector<std::string> dry_breaker_strings(const std::vector<std::string>& flags);

// The index just past the first reverse prompt found in `text`, or npos.
size_t find_reverse_prompt(const std::vector<std::string>& prompts, std::string_view text);

}  // namespace torchless::app
