#include "lint_text.h"

namespace torchless::mslemu::lint {

std::string code_only(const std::string& src) {
  std::string out = src;
  enum { kCode, kLine, kBlock, kString } state = kCode;
  for (size_t i = 0; i < src.size(); ++i) {
    const char c = src[i], next = i + 1 < src.size() ? src[i + 1] : '\0';
    switch (state) {
      case kCode:
        if (c == '/' && next == '/')
          state = kLine;
        else if (c == '/' && next == '*')
          state = kBlock;
        else if (c == '"')
          state = kString;
        if (state != kCode) out[i] = ' ';
        continue;
      case kLine:
        if (c == '\n') state = kCode;
        break;
      case kBlock:
        if (c == '*' && next == '/') {
          out[i + 1] = ' ';
          ++i;
          state = kCode;
        }
        break;
      case kString:
        if (c == '\\') {
          out[i] = ' ';
          if (i + 1 < src.size() && src[i + 1] != '\n') out[++i] = ' ';
          continue;
        }
        if (c == '"') state = kCode;
        break;
    }
    if (out[i] != '\n') out[i] = ' ';
  }
  return out;
}

std::string without_directives(const std::string& code) {
  std::string out = code;
  bool directive = false, line_start = true;
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (line_start && c == '#') directive = true;
    if (c == '\n') {
      // A backslash-newline continues the directive.
      directive = directive && i > 0 && out[i - 1] == '\\';
      line_start = true;
      continue;
    }
    if (c != ' ' && c != '\t') line_start = false;
    if (directive) out[i] = ' ';
  }
  return out;
}

int line_of(const std::string& text, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

void find_all(const std::string& code, const std::regex& re, int group, const std::string& why,
              std::vector<Finding>& out) {
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it)
    out.push_back({static_cast<size_t>(it->position(group)), why});
}

size_t matching_close(const std::string& code, size_t open) {
  const char o = code[open], c = o == '(' ? ')' : o == '[' ? ']' : '}';
  int depth = 0;
  for (size_t i = open; i < code.size(); ++i) {
    if (code[i] == o) ++depth;
    if (code[i] == c && --depth == 0) return i;
  }
  return std::string::npos;
}

std::vector<bool> program_scope(const std::string& code) {
  static const std::regex namespace_head(R"(\bnamespace(\s+[A-Za-z_][\w:]*)?\s*$)");
  std::vector<bool> scope(code.size(), true);
  std::vector<bool> is_namespace;  // one per open brace
  int bodies = 0;                  // open braces that are not namespaces
  size_t statement = 0;            // where the text before the next brace starts
  for (size_t i = 0; i < code.size(); ++i) {
    const char c = code[i];
    if (c == '{') {
      const bool ns = std::regex_search(code.substr(statement, i - statement), namespace_head);
      is_namespace.push_back(ns);
      bodies += ns ? 0 : 1;
      statement = i + 1;
    } else if (c == '}' && !is_namespace.empty()) {
      bodies -= is_namespace.back() ? 0 : 1;
      is_namespace.pop_back();
      statement = i + 1;
    } else if (c == ';') {
      statement = i + 1;
    }
    scope[i] = bodies == 0;
  }
  return scope;
}

std::vector<Piece> split_top_level(const std::string& code, size_t begin, size_t end) {
  std::vector<Piece> out;
  int depth = 0;
  size_t start = begin;
  for (size_t i = begin; i <= end; ++i) {
    const char c = i < end ? code[i] : ',';
    if (c == '(' || c == '[' || c == '<' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '>' || c == '}') --depth;
    if (c == ',' && depth <= 0) {
      size_t s = start;
      while (s < i && std::isspace(static_cast<unsigned char>(code[s]))) ++s;
      if (s < i) out.push_back({code.substr(s, i - s), s});
      start = i + 1;
    }
  }
  return out;
}

}  // namespace torchless::mslemu::lint
