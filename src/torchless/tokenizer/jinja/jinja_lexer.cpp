#include "torchless/tokenizer/jinja/jinja_lexer.h"

#include <cctype>

#include "torchless/core/error.h"

namespace torchless::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t open = find_tag_open(pos_);
      add_text(src_.substr(pos_, open - pos_));
      pos_ = open;
      if (pos_ >= src_.size()) break;
      lex_tag();
    }
    out_.push_back({TokenKind::End, "", line_});
    return std::move(out_);
  }

 private:
  size_t find_tag_open(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  void add_text(std::string_view text) {
    std::string s(text);
    if (strip_next_leading_) {
      size_t i = 0;
      while (i < s.size() && is_space(s[i])) ++i;
      s.erase(0, i);
      strip_next_leading_ = false;
    } else if (trim_next_newline_ && !s.empty() && s[0] == '\n') {
      s.erase(0, 1);
    }
    trim_next_newline_ = false;
    for (char c : text) line_ += c == '\n';
    if (!s.empty()) out_.push_back({TokenKind::Text, std::move(s), line_});
  }

  // "-" after the opening delimiter strips all whitespace before the tag; for block tags
  // (and comments) lstrip_blocks strips spaces and tabs between the line start and the tag.
  void strip_before_tag(bool minus, bool block, bool plus) {
    if (out_.empty() || out_.back().kind != TokenKind::Text) return;
    std::string& t = out_.back().text;
    if (minus) {
      while (!t.empty() && is_space(t.back())) t.pop_back();
    } else if (block && !plus) {
      size_t i = t.size();
      while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t')) --i;
      if (i == 0 || t[i - 1] == '\n') t.erase(i);
    }
    if (t.empty()) out_.pop_back();
  }

  void lex_tag() {
    const char kind = src_[pos_ + 1];
    pos_ += 2;
    const bool minus = pos_ < src_.size() && src_[pos_] == '-';
    const bool plus = pos_ < src_.size() && src_[pos_] == '+';
    if (minus || plus) ++pos_;
    strip_before_tag(minus, kind != '{', plus);
    if (kind == '#') return skip_comment();
    out_.push_back({kind == '{' ? TokenKind::ExprBegin : TokenKind::StmtBegin, "", line_});
    const char close = kind == '{' ? '}' : '%';
    while (true) {
      skip_spaces();
      if (pos_ >= src_.size()) fail("chat template line {}: unterminated tag", line_);
      if (closes_tag(close)) break;
      lex_inner_token();
    }
    out_.push_back({kind == '{' ? TokenKind::ExprEnd : TokenKind::StmtEnd, "", line_});
  }

  // Consumes "-}}" / "}}" (or the % form) and records the whitespace control it asks for.
  bool closes_tag(char close) {
    size_t p = pos_;
    const bool minus = src_[p] == '-';
    if (minus) ++p;
    if (p + 1 < src_.size() && src_[p] == close && src_[p + 1] == '}') {
      pos_ = p + 2;
      strip_next_leading_ = minus;
      trim_next_newline_ = close == '%';
      return true;
    }
    return false;
  }

  void skip_comment() {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) fail("chat template line {}: unterminated comment", line_);
    for (size_t i = pos_; i < end; ++i) line_ += src_[i] == '\n';
    strip_next_leading_ = end > pos_ && src_[end - 1] == '-';
    trim_next_newline_ = true;
    pos_ = end + 2;
  }

  void skip_spaces() {
    while (pos_ < src_.size() && is_space(src_[pos_])) line_ += src_[pos_++] == '\n';
  }

  void lex_inner_token() {
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') return lex_name();
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number();
    if (c == '\'' || c == '"') return lex_string(c);
    static constexpr std::string_view kTwoChar[] = {"==", "!=", "<=", ">=", "//", "**"};
    for (std::string_view op : kTwoChar) {
      if (src_.substr(pos_, 2) == op) {
        out_.push_back({TokenKind::Op, std::string(op), line_});
        pos_ += 2;
        return;
      }
    }
    if (std::string_view("+-*/%~<>=()[]{}.,:|").find(c) == std::string_view::npos) {
      fail("chat template line {}: unexpected character '{}'", line_, c);
    }
    out_.push_back({TokenKind::Op, std::string(1, c), line_});
    ++pos_;
  }

  void lex_name() {
    const size_t start = pos_;
    while (pos_ < src_.size() &&
           (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
      ++pos_;
    }
    out_.push_back({TokenKind::Name, std::string(src_.substr(start, pos_ - start)), line_});
  }

  void lex_number() {
    const size_t start = pos_;
    while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      ++pos_;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    }
    out_.push_back({TokenKind::Number, std::string(src_.substr(start, pos_ - start)), line_});
  }

  void lex_string(char quote) {
    std::string value;
    ++pos_;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      char c = src_[pos_++];
      if (c == '\n') ++line_;
      if (c == '\\' && pos_ < src_.size()) {
        const char e = src_[pos_++];
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
      value += c;
    }
    if (pos_ >= src_.size()) fail("chat template line {}: unterminated string", line_);
    ++pos_;
    out_.push_back({TokenKind::String, std::move(value), line_});
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool strip_next_leading_ = false;
  bool trim_next_newline_ = false;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex_template(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace torchless::jinja
