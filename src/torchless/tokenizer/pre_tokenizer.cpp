#include "torchless/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "torchless/core/error.h"
#include "torchless/tokenizer/utf8.h"

namespace torchless {

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  std::string pattern;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Frees PCRE2 per-call state; one per split() call so a tokenizer can be shared by threads.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // Long runs of one class ("\s+" over a megabyte of spaces) need more than the 32 KiB default.
    stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) fail("pre-tokenizer: out of memory for regex matching");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

// Splits one piece by one regex, appending matches and the gaps between them to `out`.
void split_piece(const RegexSplitter::Compiled& re, std::string_view piece, MatchState& state,
                 std::vector<std::string_view>& out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t offset = 0;
  size_t gap_start = 0;
  while (offset < piece.size()) {
    const int rc = pcre2_match(re.code, subject, piece.size(), offset, PCRE2_NO_UTF_CHECK,
                               state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("pre-tokenizer regex '{}' failed: {}", re.pattern, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end == begin) {
      // An empty match produces no piece; step over one character to make progress.
      const size_t n = utf8::valid_sequence_length(piece, begin);
      offset = begin + (n == 0 ? 1 : n);
      continue;
    }
    if (begin > gap_start) out.push_back(piece.substr(gap_start, begin - gap_start));
    out.push_back(piece.substr(begin, end - begin));
    gap_start = offset = end;
  }
  if (gap_start < piece.size()) out.push_back(piece.substr(gap_start));
}

}  // namespace

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns) {
  for (const auto& pattern : patterns) {
    auto compiled = std::make_unique<Compiled>();
    compiled->pattern = pattern;
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    // DOLLAR_ENDONLY: "$" means the end of the piece, not "before a final newline" (Rust regex
    // and std::regex semantics, which the patterns were written for).
    compiled->code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error, &error_offset, nullptr);
    if (!compiled->code) {
      fail("pre-tokenizer regex '{}' does not compile at offset {}: {}", pattern, error_offset,
           pcre2_message(error));
    }
    // Without JIT support PCRE2 still matches (interpreted), just slower.
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
    regexes_.push_back(std::move(compiled));
  }
}

RegexSplitter::~RegexSplitter() = default;

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  MatchState state;
  std::vector<std::string_view> next;
  for (const auto& re : regexes_) {
    next.clear();
    next.reserve(pieces.size() * 2);
    for (std::string_view piece : pieces) split_piece(*re, piece, state, next);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace torchless
