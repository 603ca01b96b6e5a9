#pragma once
// What a request's generated text must be (OpenAI's response_format): anything, or one JSON
// object (constrained decoding, json_constraint.h; the sequence ends with
// SequenceEnd::Completed once the object closes).

namespace torchless {

enum class OutputFormat { Text, JsonObject };

}  // namespace torchless
