#pragma once
// Text helpers shared by mslemu_gen's two lints (the emulator's own limits in mslemu_gen.cpp,
// Apple's MSL rules in msl_spec_lint.cpp). Both work on comment- and string-free text at the
// offsets of the original, so every finding maps back to a .metal line.
#include <cctype>
#include <cstddef>
// GCC 12 reports false maybe-uninitialized warnings inside <regex> under -fsanitize.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#include <string>
#include <vector>

namespace torchless::mslemu::lint {

struct Finding {
  size_t offset;
  std::string message;
};

// Blanks comments and string literals (keeping newlines) so offsets stay the original's.
std::string code_only(const std::string& src);

// Also blanks preprocessor lines (#include, #if, #define ...), for the declaration scans.
std::string without_directives(const std::string& code);

int line_of(const std::string& text, size_t offset);

// Every match of `re` in `code`, reported at the start of capture `group`.
void find_all(const std::string& code, const std::regex& re, int group, const std::string& why,
              std::vector<Finding>& out);

// The offset of the bracket that closes the one at `open` ('(' or '{'), or npos.
size_t matching_close(const std::string& code, size_t open);

// For each offset: true where the text is at program scope (outside every function, struct
// and initializer body; namespace bodies count as program scope).
std::vector<bool> program_scope(const std::string& code);

// A top-level piece of a comma-separated list, with its offset in the text.
struct Piece {
  std::string text;
  size_t offset;
};

// Splits code[begin, end) at the commas outside any (), [], <> or {} nesting.
std::vector<Piece> split_top_level(const std::string& code, size_t begin, size_t end);

}  // namespace torchless::mslemu::lint
