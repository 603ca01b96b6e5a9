#pragma once
// Renders a parsed template against a JSON context (messages, bos_token, add_generation_prompt,
// ...). Values are JSON values; undefined variables render as "" and are false, as in jinja2.
#include <string>

#include <nlohmann/json.hpp>

#include "torchless/tokenizer/jinja/jinja_ast.h"

namespace torchless::jinja {

// Throws Error for raise_exception() calls and for type errors, naming the template line.
std::string render(const Body& body, const nlohmann::json& context);

}  // namespace torchless::jinja
