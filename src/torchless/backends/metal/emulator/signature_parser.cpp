#include "torchless/backends/metal/emulator/signature_parser.h"

#include "torchless/backends/metal/emulator/raise.h"

// GCC 12 reports false maybe-uninitialized warnings inside <regex> under -fsanitize.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#include <string>
#include <utility>

namespace torchless::mslemu::detail {
namespace {

constexpr std::pair<std::string_view, Builtin> kBuiltins[] = {
    {"thread_position_in_grid", Builtin::ThreadPositionInGrid},
    {"threadgroup_position_in_grid", Builtin::ThreadgroupPositionInGrid},
    {"thread_position_in_threadgroup", Builtin::ThreadPositionInThreadgroup},
    {"threads_per_threadgroup", Builtin::ThreadsPerThreadgroup},
    {"dispatch_threads_per_threadgroup", Builtin::ThreadsPerThreadgroup},
    {"threadgroups_per_grid", Builtin::ThreadgroupsPerGrid},
    {"threads_per_grid", Builtin::ThreadsPerGrid},
    {"thread_index_in_threadgroup", Builtin::ThreadIndexInThreadgroup},
    {"simdgroup_index_in_threadgroup", Builtin::SimdgroupIndexInThreadgroup},
    {"thread_index_in_simdgroup", Builtin::ThreadIndexInSimdgroup},
    {"threads_per_simdgroup", Builtin::ThreadsPerSimdgroup},
    {"thread_execution_width", Builtin::ThreadsPerSimdgroup},
    {"simdgroups_per_threadgroup", Builtin::SimdgroupsPerThreadgroup},
};

// Comments become spaces, so offsets and line numbers stay those of the source.
std::string strip_comments(std::string_view src) {
  std::string out(src);
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '/' && out[i + 1] == '/') {
      while (i < out.size() && out[i] != '\n') out[i++] = ' ';
    } else if (out[i] == '/' && out[i + 1] == '*') {
      size_t j = i;
      for (; j < out.size() && !(out[j] == '*' && j + 1 < out.size() && out[j + 1] == '/'); ++j)
        if (out[j] != '\n') out[j] = ' ';
      for (size_t k = j; k < std::min(j + 2, out.size()); ++k) out[k] = ' ';
      i = j + 1;
    }
  }
  return out;
}

int line_at(const std::string& text, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset; ++i) line += text[i] == '\n';
  return line;
}

// Splits "a, b<c, d>, e[[f(1)]]" at the commas outside any bracket.
std::vector<std::pair<std::string, size_t>> split_params(const std::string& text, size_t begin,
                                                         size_t end) {
  std::vector<std::pair<std::string, size_t>> out;
  int depth = 0;
  size_t start = begin;
  for (size_t i = begin; i < end; ++i) {
    const char c = text[i];
    if (c == '(' || c == '[' || c == '<' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '>' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      out.emplace_back(text.substr(start, i - start), start);
      start = i + 1;
    }
  }
  out.emplace_back(text.substr(start, end - start), start);
  if (out.size() == 1 && out[0].first.find_first_not_of(" \t\r\n") == std::string::npos)
    out.clear();
  return out;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

ParamInfo parse_param(const std::string& text, std::string_view file, int line) {
  static const std::regex attribute(R"(\[\[\s*(\w+)\s*(?:\(\s*(\d+)\s*\))?\s*\]\])");
  static const std::regex name_at_end(R"(([A-Za-z_]\w*)\s*$)");
  ParamInfo p;
  std::smatch m;
  std::string rest = text;
  std::string attr;
  std::string index;
  while (std::regex_search(rest, m, attribute)) {
    attr = m[1];
    index = m[2];
    rest = m.prefix().str() + " " + m.suffix().str();
  }
  rest = trim(rest);
  if (!std::regex_search(rest, m, name_at_end))
    raise("{}:{}: cannot read the parameter name in '{}'", file, line, trim(text));
  p.name = m[1];
  p.type = trim(m.prefix().str());
  if (attr == "buffer" || attr == "threadgroup") {
    if (index.empty()) raise("{}:{}: [[{}]] of '{}' needs an index", file, line, attr, p.name);
    p.role = attr == "buffer" ? ParamRole::Buffer : ParamRole::Threadgroup;
    p.index = static_cast<uint32_t>(std::stoul(index));
    return p;
  }
  for (const auto& [builtin_name, builtin] : kBuiltins) {
    if (attr == builtin_name) {
      p.role = ParamRole::Builtin;
      p.builtin = builtin;
      p.kind = ParamKind::Value;
      return p;
    }
  }
  if (attr.empty())
    raise(
        "{}:{}: parameter '{}' has no attribute; the emulator needs [[buffer(n)]], "
        "[[threadgroup(n)]] or a thread-position attribute on every parameter",
        file, line, p.name);
  raise("{}:{}: parameter '{}' has the unsupported attribute [[{}]]", file, line, p.name, attr);
}

uint32_t max_threads_attribute(const std::string& code, size_t kernel_pos) {
  static const std::regex limit(
      R"(\[\[\s*max_total_threads_per_threadgroup\s*\(\s*(\d+)\s*\)\s*\]\])");
  const size_t from = code.find_last_of(";}", kernel_pos);
  const size_t begin = from == std::string::npos ? 0 : from + 1;
  const std::string before = code.substr(begin, kernel_pos - begin);
  std::smatch m;
  if (std::regex_search(before, m, limit)) return static_cast<uint32_t>(std::stoul(m[1]));
  return 1024;
}

}  // namespace

std::vector<KernelInfo> parse_kernel_signatures(std::string_view source, std::string_view file) {
  static const std::regex kernel(R"(\bkernel\s+void\s+([A-Za-z_]\w*)\s*\()");
  const std::string code = strip_comments(source);
  std::vector<KernelInfo> kernels;
  for (std::sregex_iterator it(code.begin(), code.end(), kernel), end; it != end; ++it) {
    KernelInfo k;
    k.name = (*it)[1];
    k.file = std::string(file);
    const size_t pos = static_cast<size_t>(it->position(0));
    k.line = line_at(code, pos);
    k.max_total_threads_per_threadgroup = max_threads_attribute(code, pos);
    const size_t open = pos + static_cast<size_t>(it->length(0)) - 1;
    int depth = 0;
    size_t close = open;
    for (; close < code.size(); ++close) {
      if (code[close] == '(') ++depth;
      if (code[close] == ')' && --depth == 0) break;
    }
    if (close >= code.size())
      raise("{}:{}: unterminated parameter list of kernel {}", file, k.line, k.name);
    for (const auto& [text, offset] : split_params(code, open + 1, close))
      k.params.push_back(
          parse_param(text, file, line_at(code, offset + text.find_first_not_of(" \t\r\n"))));
    kernels.push_back(std::move(k));
  }
  return kernels;
}

}  // namespace torchless::mslemu::detail
