#pragma once
// The lint of Apple's rules: what the Metal Shading Language specification forbids and the
// emulator, a C++ compiler under keyword macros, would accept. A .metal file that passes it
// and the emulator's own lint is meant to compile with Apple's compiler (docs/metal.md,
// "The MSL lint: Apple's rules checked on Linux", lists every rule with its section).
#include <string>
#include <vector>

#include "lint_text.h"

namespace torchless::mslemu::lint {

// MSL language versions as __METAL_VERSION__ spells them: 300 for 3.0, 310 for 3.1.
constexpr int kMsl30 = 300;
constexpr int kMsl31 = 310;

// "3.1" -> 310; throws std::invalid_argument for anything else.
int parse_msl_version(const std::string& text);

// Every violation in `code` (comment- and string-free text, see code_only), for a library
// compiled at `msl_version`; `#if __METAL_VERSION__ >= N` blocks count as compiled at N.
std::vector<Finding> lint_msl_spec(const std::string& code, int msl_version);

}  // namespace torchless::mslemu::lint
