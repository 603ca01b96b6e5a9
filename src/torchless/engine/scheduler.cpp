#include "torchless/engine/scheduler.h"

namespace torchless {

void validate_request(const SequenceRequest& request, int n_vocab, int n_ctx, bool has_tokenizer) {
  if (request.prompt.empty()) fail("the prompt is empty");
  if (request.format == OutputFormat::JsonObject && !has_tokenizer) {
    fail("JSON output needs the tokenizer (the bytes of every token)");
  }
  if (request.n_probs < 0) fail("n_probs cannot be negative ({})", request.n_probs);
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    const int32_t id = request.prompt[i];
    if (id < 0 || id >= n_vocab) {
      fail("token {} at index {} is outside the vocabulary of {}", id, i, n_vocab);
    }
  }
  if (request.prompt.size() >= static_cast<size_t>(n_ctx)) {
    fail("the prompt of {} tokens leaves no room to generate in the context of {}",
         request.prompt.size(), n_ctx);
  }
}

std::unique_ptr<JsonConstraint> make_output_constraint(const SequenceRequest& request,
                                                       const Tokenizer* tokenizer,
                                                       std::shared_ptr<const TokenPieces>& pieces) {
  if (request.format == OutputFormat::Text) return nullptr;
  if (tokenizer == nullptr) fail("JSON output needs the tokenizer (the bytes of every token)");
  if (!pieces) pieces = std::make_shared<const TokenPieces>(*tokenizer);
  return std::make_unique<JsonConstraint>(pieces);
}

}  // namespace torchless
