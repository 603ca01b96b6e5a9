#pragma once
// Checks that a loaded ModelConfig describes a Transformer torchless can build and that the
// WeightStore holds exactly the tensors it needs, with the shapes it needs.
#include <map>
#include <string>

#include "torchless/core/shape.h"
#include "torchless/formats/model_config.h"
#include "torchless/formats/weight_store.h"

namespace torchless {

// Every canonical tensor the config calls for (weight_store.h), with its shape.
std::map<std::string, Shape> expected_tensors(const ModelConfig& config);

// Throws Error naming the first problem: an impossible config (e.g. heads that do not divide),
// a missing tensor, a shape that differs from the config, or a tensor the model would ignore.
void validate_model(const ModelConfig& config, const WeightStore& weights);

}  // namespace torchless
