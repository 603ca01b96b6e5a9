#pragma once
#include <string_view>

#include "torchless/tokenizer/jinja/jinja_ast.h"

namespace torchless::jinja {

// Parses a template into statements. Throws Error naming the line and the construct for
// syntax errors and for Jinja features outside the supported subset (macros, blocks, ...).
Body parse_template(std::string_view source);

}  // namespace torchless::jinja
