#pragma once
// RoPE inverse frequencies, computed once on the host with every scaling scheme folded in, so
// that backends only ever see a [head_dim / 2] table (see RopeParams in backend.h).
#include <optional>
#include <span>
#include <vector>

#include "torchless/formats/model_config.h"

namespace torchless {

// inv_freq[i] = theta^(-2i / head_dim), then:
//   - `freq_divisors` (GGUF's rope_freqs.weight, llama.cpp's "freq factors") when given: each
//     frequency is divided by its divisor; llama3 scaling in the config is then ignored because
//     the converter already baked it into the divisors;
//   - otherwise llama3 scaling (Meta's smooth interpolation between low and high frequencies);
//   - linear scaling (position interpolation) divides every frequency by the factor.
// Yarn needs attention-scale changes as well and is rejected with an Error.
std::vector<float> rope_inverse_frequencies(const ModelConfig& config,
                                            std::optional<std::span<const float>> freq_divisors);

}  // namespace torchless
