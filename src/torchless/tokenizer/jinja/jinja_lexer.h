#pragma once
// Splits a Jinja template into text and tag tokens, applying whitespace control the way
// Hugging Face's chat-template environment does (trim_blocks, lstrip_blocks, and "-" markers).
#include <string>
#include <string_view>
#include <vector>

namespace torchless::jinja {

enum class TokenKind {
  Text,
  ExprBegin,
  ExprEnd,
  StmtBegin,
  StmtEnd,
  Name,
  String,
  Number,
  Op,
  End
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::string text;  // Text content, identifier, decoded string literal, number or operator
  int line = 1;
};

// Throws Error (with the template line) on unterminated tags or strings and unknown characters.
std::vector<Token> lex_template(std::string_view source);

}  // namespace torchless::jinja
