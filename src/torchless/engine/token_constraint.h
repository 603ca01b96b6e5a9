#pragma once
// Which tokens may come next, for constrained decoding (a grammar, a JSON object): the Sampler
// draws only among the tokens a constraint allows, and the caller advances the constraint with
// the token drawn.
#include <cstdint>
#include <span>

namespace torchless {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  virtual bool allows(int32_t id) const = 0;
  // Sets the logit of every token that is not allowed to -inf (the whole-vocabulary scan, the
  // slow path: the sampler first tries the token it would pick unconstrained).
  virtual void mask(std::span<float> logits) const = 0;
};

}  // namespace torchless
