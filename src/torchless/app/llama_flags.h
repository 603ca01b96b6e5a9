#pragma once
// llama.cpp's multi-letter single-dash flags (-cnv, -ngl, -sys) and its glued-value rule.
// CLI11 reads "-cnv" as "-c nv"; these flags are rewritten to their long spellings first, and
// any other single-dash word (-c4096, -xyz) is refused: a short option takes its value after
// a space.
#include <string>
#include <vector>

namespace torchless::app {

// argv[1..] with the llama.cpp spellings replaced; throws Error for a glued short option.
std::vector<std::string> translate_llama_flags(int argc, char** argv);

}  // namespace torchless::app
