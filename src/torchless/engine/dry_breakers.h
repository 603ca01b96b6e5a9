#pragma once
// DRY sequence breakers as token ids (SamplerOptions::dry_sequence_breakers). The sampler sees
// ids, not text, so the strings ("\n", ":", ...) become every token sequence that spells them,
// as llama.cpp does: a token whose text contains the breaker is a breaker alone; a token whose
// text ends with the breaker's first characters is a breaker when followed by the tokens of
// the rest of the breaker.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

// llama.cpp's defaults.
inline const std::vector<std::string> kDefaultDrySequenceBreakers = {"\n", ":", "\"", "*"};

// Tails (the tokens after the first) are cut at this many tokens, a bound llama.cpp keeps too.
inline constexpr size_t kMaxBreakerTail = 20;

// Every token sequence that spells one of `breakers`, without duplicates; empty strings are
// ignored.
std::vector<std::vector<int32_t>> dry_breaker_sequences(const Tokenizer& tokenizer,
                                                        std::span<const std::string> breakers);

}  // namespace torchless
