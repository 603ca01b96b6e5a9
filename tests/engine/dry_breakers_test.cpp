#include "torchless/engine/dry_breakers.h"

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/formats/model_loader.h"

namespace torchless {
namespace {

std::unique_ptr<Tokenizer> stories_tokenizer() {
  const auto path =
      std::filesystem::path(TORCHLESS_SOURCE_DIR) / "../shared/models/stories260K.gguf";
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("reference model missing: " + path.string());
  }
  return load_tokenizer_from_gguf(*load_model(path).gguf);
}

std::string spelled(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string text;
  for (const int32_t id : ids) text += tok.token_to_piece(id, true);
  return text;
}

// Checked against the definition, token by token: a single token contains the breaker; a
// longer sequence starts with a token that ends in the breaker's first bytes and spells the
// breaker from there; every token containing the breaker is among the singles.
TEST(DryBreakers, SequencesSpellTheBreakersAndMissNoSingleToken) {
  const auto tok = stories_tokenizer();
  for (const std::string breaker : {"\n", ":", "\"", "*", "ce up", "Once upon"}) {
    const std::vector<std::string> one = {breaker};
    const auto sequences = dry_breaker_sequences(*tok, one);
    std::set<int32_t> singles;
    size_t multi = 0;
    for (const auto& seq : sequences) {
      ASSERT_FALSE(seq.empty());
      const std::string head = tok->token_to_piece(seq[0], true);
      if (seq.size() == 1 && head.find(breaker) != std::string::npos) {
        singles.insert(seq[0]);
        continue;
      }
      ++multi;
      const std::string text = spelled(*tok, seq);
      const size_t at = text.find(breaker);
      ASSERT_NE(at, std::string::npos) << "'" << breaker << "': '" << text << "'";
      EXPECT_LT(at, head.size()) << "'" << breaker << "': the breaker starts after the head";
      EXPECT_GT(at + breaker.size(), head.size()) << "'" << breaker << "': head alone spells it";
    }
    for (int32_t id = 0; id < tok->n_vocab(); ++id) {
      if (tok->token_to_piece(id, true).find(breaker) != std::string::npos) {
        EXPECT_TRUE(singles.count(id)) << "'" << breaker << "' misses token " << id;
      }
    }
    if (breaker.size() > 1) {
      EXPECT_GT(multi, 0u) << "'" << breaker << "' spans no tokens";
    }
  }
  EXPECT_TRUE(dry_breaker_sequences(*tok, std::vector<std::string>{""}).empty());
}

}  // namespace
}  // namespace torchless
