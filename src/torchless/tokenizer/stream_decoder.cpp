#include "torchless/tokenizer/tokenizer.h"
#include "torchless/tokenizer/utf8.h"

namespace torchless {

std::string StreamDecoder::feed(int32_t id) {
  pending_ += tokenizer_->token_to_piece(id);
  const size_t ready = utf8::complete_prefix_length(pending_);
  std::string out = utf8::replace_invalid(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::replace_invalid(pending_);
  pending_.clear();
  return out;
}

}  // namespace torchless
