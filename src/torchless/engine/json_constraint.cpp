#include "torchless/engine/json_constraint.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "torchless/core/error.h"

namespace torchless {

TokenPieces::TokenPieces(const Tokenizer& tokenizer) {
  const int32_t n = tokenizer.n_vocab();
  ends_.reserve(static_cast<size_t>(n));
  end_.resize(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    bytes_ += tokenizer.token_to_piece(id);
    ends_.push_back(bytes_.size());
    end_[static_cast<size_t>(id)] = tokenizer.is_end_of_generation(id);
  }
}

std::string_view TokenPieces::piece(int32_t id) const {
  const auto i = static_cast<size_t>(id);
  const size_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::string_view(bytes_).substr(begin, ends_[i] - begin);
}

JsonConstraint::JsonConstraint(std::shared_ptr<const TokenPieces> pieces, int max_depth)
    : pieces_(std::move(pieces)), recognizer_(max_depth) {
  if (!pieces_) fail("a JSON constraint needs the vocabulary's token pieces");
  update_first_bytes();
}

void JsonConstraint::update_first_bytes() {
  for (int b = 0; b < 256; ++b) {
    JsonRecognizer next = recognizer_;
    first_bytes_[static_cast<size_t>(b)] = next.feed(static_cast<uint8_t>(b));
  }
}

bool JsonConstraint::allows(int32_t id) const {
  if (id < 0 || id >= pieces_->size()) return false;
  if (pieces_->end_of_generation(id)) return recognizer_.complete();
  const std::string_view piece = pieces_->piece(id);
  if (piece.empty() || !first_bytes_[static_cast<uint8_t>(piece[0])]) return false;
  JsonRecognizer next = recognizer_;
  return next.feed(piece);
}

void JsonConstraint::mask(std::span<float> logits) const {
  const auto n =
      static_cast<int32_t>(std::min(logits.size(), static_cast<size_t>(pieces_->size())));
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  for (int32_t id = 0; id < n; ++id) {
    float& logit = logits[static_cast<size_t>(id)];
    if (logit != kBanned && !allows(id)) logit = kBanned;
  }
  for (size_t id = static_cast<size_t>(n); id < logits.size(); ++id) logits[id] = kBanned;
}

void JsonConstraint::accept(int32_t id) {
  if (!allows(id)) fail("token {} does not continue the JSON object", id);
  if (!pieces_->end_of_generation(id)) recognizer_.feed(pieces_->piece(id));
  update_first_bytes();
}

}  // namespace torchless
