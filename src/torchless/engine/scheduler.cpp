#include "torchless/engine/scheduler.h"

namespace torchless {

void validate_request(const SequenceRequest& request, int n_vocab, int n_ctx) {
  if (request.prompt.empty()) fail("the prompt is empty");
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

}  // namespace torchless
