#pragma once
// Output that is always one JSON object (OpenAI's response_format {"type": "json_object"}):
// a TokenConstraint that allows a token when all of its bytes (what the token decodes to)
// continue a JSON object (JsonRecognizer), and an end-of-generation token only once the object
// is complete. Tokens that decode to nothing (control tokens) are never allowed: they would let
// a sequence run on without progress. The scheduler ends the sequence when complete() turns
// true.
#include <bitset>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "torchless/engine/json_recognizer.h"
#include "torchless/engine/token_constraint.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {

// Every token's decoded bytes (token_to_piece), computed once per vocabulary and shared by
// the constraints of every request.
class TokenPieces {
 public:
  explicit TokenPieces(const Tokenizer& tokenizer);
  int32_t size() const { return static_cast<int32_t>(ends_.size()); }
  std::string_view piece(int32_t id) const;
  bool end_of_generation(int32_t id) const { return end_[static_cast<size_t>(id)]; }

 private:
  std::string bytes_;         // every piece, one after the other
  std::vector<size_t> ends_;  // where piece i ends in bytes_
  std::vector<bool> end_;
};

class JsonConstraint final : public TokenConstraint {
 public:
  explicit JsonConstraint(std::shared_ptr<const TokenPieces> pieces,
                          int max_depth = JsonRecognizer::kDefaultMaxDepth);

  bool allows(int32_t id) const override;
  void mask(std::span<float> logits) const override;
  // Advances past a drawn token; throws Error if it was not allowed.
  void accept(int32_t id);
  bool complete() const { return recognizer_.complete(); }

 private:
  void update_first_bytes();

  std::shared_ptr<const TokenPieces> pieces_;
  JsonRecognizer recognizer_;
  // The bytes the recogniser takes next: a token starting with another byte is refused without
  // simulating it, which rules out most of a vocabulary at once outside strings.
  std::bitset<256> first_bytes_;
};

}  // namespace torchless
