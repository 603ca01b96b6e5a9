#include "msl_spec_lint.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

// Section numbers follow the MSL 3.1 specification. Each rule names the section whose text it
// enforces, so a reader can check the rule against the specification.
namespace torchless::mslemu::lint {
namespace {

const std::string kRestrictions = " [MSL spec 1.4.4 \"Restrictions\" (Metal and C++14)]";
const std::string kScalarTypes = " [MSL spec 2.1 \"Scalar data types\"]";
const std::string kSimdMatrix = " [MSL spec 2.4 \"SIMD-group matrix data types\"]";
const std::string kAddressSpaces = " [MSL spec 4 \"Address spaces\"]";
const std::string kConstantSpace = " [MSL spec 4.2 \"Constant address space\"]";
const std::string kThreadgroupSpace = " [MSL spec 4.4 \"Threadgroup address space\"]";
const std::string kKernelFunctions = " [MSL spec 5.1 \"Functions\", kernel functions]";
const std::string kLocating =
    " [MSL spec 5.2.1 \"Locating buffer, texture, and sampler arguments\"; Metal feature set "
    "tables: 31 buffer and 31 threadgroup-memory entries per function]";
const std::string kKernelInputs = " [MSL spec 5.2.3.6 \"Kernel function input attributes\"]";

// ---- kernel signatures ------------------------------------------------------------------

struct Param {
  size_t offset = 0;
  std::string name, type, attribute, attribute_arg, address_space;
  bool indirect = false;  // pointer or reference
};

std::string squeeze_spaces(std::string s) {
  s = std::regex_replace(s, std::regex(R"(\s+)"), " ");
  return std::regex_replace(s, std::regex(R"(^ | $)"), "");
}

Param parse_param(const Piece& piece) {
  static const std::regex attribute(R"(\[\[\s*(\w+)\s*(\(\s*([^)]*?)\s*\))?\s*\]\])");
  static const std::regex declarator(R"(^([\s\S]*?)([A-Za-z_]\w*)\s*(\[[^\]]*\]\s*)?$)");
  static const std::regex space(
      R"(\b(device|constant|thread|threadgroup|threadgroup_imageblock|ray_data|object_data)\b)");
  Param p;
  p.offset = piece.offset;
  std::smatch m;
  if (std::regex_search(piece.text, m, attribute)) {
    p.attribute = m[1];
    p.attribute_arg = m[3];
  }
  const std::string decl = std::regex_replace(piece.text, attribute, " ");
  if (std::regex_match(decl, m, declarator)) {
    p.type = m[1];
    p.name = m[2];
  }
  p.indirect = p.type.find_first_of("*&") != std::string::npos;
  if (std::regex_search(p.type, m, space)) p.address_space = m[1];
  return p;
}

struct Kernel {
  std::string name;
  std::vector<Param> params;
};

std::vector<Kernel> kernels(const std::string& code) {
  static const std::regex head(R"(\bkernel\s+void\s+([A-Za-z_]\w*)\s*\()");
  std::vector<Kernel> out;
  for (std::sregex_iterator it(code.begin(), code.end(), head), end; it != end; ++it) {
    const size_t open = static_cast<size_t>(it->position(0) + it->length(0) - 1);
    const size_t close = matching_close(code, open);
    if (close == std::string::npos) continue;
    Kernel k{(*it)[1], {}};
    for (const Piece& piece : split_top_level(code, open + 1, close))
      k.params.push_back(parse_param(piece));
    out.push_back(std::move(k));
  }
  return out;
}

// A built-in's value type without qualifiers: "const uint3" -> "uint3".
std::string value_type(const Param& p) {
  std::string t = std::regex_replace(p.type, std::regex(R"(\b(const|volatile)\b)"), " ");
  t = squeeze_spaces(t);
  if (t == "unsigned int" || t == "uint32_t") return "uint";
  if (t == "unsigned short" || t == "uint16_t") return "ushort";
  return t;
}

// 0 for a type that is not ushort/uint or a 2- or 3-vector of them, else its width.
int position_width(const std::string& type) {
  static const std::regex re(R"(^(ushort|uint)([23])?$)");
  std::smatch m;
  if (!std::regex_match(type, m, re)) return 0;
  return m[2].matched ? m[2].str()[0] - '0' : 1;
}

const std::set<std::string> kPositionBuiltins = {
    "thread_position_in_grid",         "threads_per_grid",
    "thread_position_in_threadgroup",  "threads_per_threadgroup",
    "threadgroup_position_in_grid",    "threadgroups_per_grid",
    "dispatch_threads_per_threadgroup"};
const std::set<std::string> kIndexBuiltins = {"thread_index_in_threadgroup",
                                              "thread_index_in_simdgroup",
                                              "simdgroup_index_in_threadgroup",
                                              "simdgroups_per_threadgroup",
                                              "threads_per_simdgroup",
                                              "thread_execution_width",
                                              "thread_index_in_quadgroup",
                                              "quadgroup_index_in_threadgroup",
                                              "quadgroups_per_threadgroup",
                                              "dispatch_simdgroups_per_threadgroup",
                                              "dispatch_quadgroups_per_threadgroup"};

bool is_builtin(const std::string& attribute) {
  return kPositionBuiltins.count(attribute) || kIndexBuiltins.count(attribute);
}

void check_builtin_types(const Kernel& k, std::vector<Finding>& out) {
  const Param* first_position = nullptr;
  std::map<std::string, const Param*> by_attribute;
  for (const Param& p : k.params) {
    const std::string type = value_type(p);
    if (kIndexBuiltins.count(p.attribute) && type != "uint" && type != "ushort") {
      out.push_back({p.offset, "[[" + p.attribute + "]] '" + p.name + "' has type '" + type +
                                   "'; it must be ushort or uint" + kKernelInputs});
      continue;
    }
    if (!kPositionBuiltins.count(p.attribute)) continue;
    if (position_width(type) == 0) {
      out.push_back({p.offset, "[[" + p.attribute + "]] '" + p.name + "' has type '" + type +
                                   "'; it must be ushort, ushort2, ushort3, uint, uint2 or uint3" +
                                   kKernelInputs});
      continue;
    }
    by_attribute[p.attribute] = &p;
    if (!first_position) {
      first_position = &p;
    } else if (position_width(type) != position_width(value_type(*first_position))) {
      out.push_back(
          {p.offset, "kernel '" + k.name + "': [[" + p.attribute + "]] is " + type + " but [[" +
                         first_position->attribute + "]] is " + value_type(*first_position) +
                         "; the thread and threadgroup position and size attributes of one "
                         "kernel must be all scalars or all vectors with the same number of "
                         "components" +
                         kKernelInputs});
    }
  }
  // Pairs whose types must be identical, ushort against uint included.
  const std::vector<std::vector<std::string>> same_type = {
      {"thread_position_in_grid", "threads_per_grid"},
      {"thread_position_in_threadgroup", "threads_per_threadgroup",
       "dispatch_threads_per_threadgroup"}};
  for (const auto& group : same_type) {
    const Param* first = nullptr;
    for (const std::string& attribute : group) {
      const auto it = by_attribute.find(attribute);
      if (it == by_attribute.end()) continue;
      if (!first) {
        first = it->second;
      } else if (value_type(*it->second) != value_type(*first)) {
        out.push_back({it->second->offset, "kernel '" + k.name + "': [[" + attribute + "]] is " +
                                               value_type(*it->second) + " but [[" +
                                               first->attribute + "]] is " + value_type(*first) +
                                               "; these two must have the same type" +
                                               kKernelInputs});
      }
    }
  }
}

void check_address_spaces(const Kernel& k, std::vector<Finding>& out) {
  for (const Param& p : k.params) {
    const std::string what = "kernel argument '" + p.name + "'";
    if (p.indirect && p.address_space.empty()) {
      out.push_back({p.offset, what +
                                   " is a pointer or reference without an address space: "
                                   "write device, constant, threadgroup or thread" +
                                   kAddressSpaces});
      continue;
    }
    if (p.address_space == "constant" && (!p.indirect || p.attribute != "buffer")) {
      out.push_back({p.offset, what +
                                   ": only a pointer or reference with a [[buffer(n)]] "
                                   "attribute may be passed in the constant address space" +
                                   kConstantSpace});
      continue;
    }
    if (p.attribute == "buffer" &&
        (!p.indirect || (p.address_space != "device" && p.address_space != "constant"))) {
      out.push_back({p.offset, what +
                                   ": a [[buffer(n)]] argument must be a device or constant "
                                   "pointer or reference" +
                                   kLocating});
    } else if (p.attribute == "threadgroup" && (!p.indirect || p.address_space != "threadgroup")) {
      out.push_back({p.offset, what +
                                   ": a [[threadgroup(n)]] argument must be a threadgroup "
                                   "pointer or reference" +
                                   kThreadgroupSpace});
    } else if (is_builtin(p.attribute) && (p.indirect || !p.address_space.empty())) {
      out.push_back({p.offset, what +
                                   ": a built-in input is passed by value, without an "
                                   "address space" +
                                   kKernelInputs});
    }
  }
}

void check_attribute_indices(const Kernel& k, std::vector<Finding>& out) {
  static const std::regex literal(R"(^\d+$)");
  std::map<std::pair<std::string, long>, const Param*> seen;
  for (const Param& p : k.params) {
    if (p.attribute != "buffer" && p.attribute != "threadgroup") continue;
    if (!std::regex_match(p.attribute_arg, literal)) continue;  // a macro: not checkable here
    const long index = std::stol(p.attribute_arg);
    if (index > 30) {
      out.push_back({p.offset, "kernel argument '" + p.name + "': [[" + p.attribute + "(" +
                                   p.attribute_arg + ")]] is out of range; indices are 0 to 30" +
                                   kLocating});
      continue;
    }
    const auto [it, fresh] = seen.emplace(std::make_pair(p.attribute, index), &p);
    if (!fresh) {
      out.push_back({p.offset, "kernel '" + k.name + "': [[" + p.attribute + "(" + p.attribute_arg +
                                   ")]] is used by '" + it->second->name + "' and '" + p.name +
                                   "'; each index is used once" + kLocating});
    }
  }
}

// ---- program-scope declarations ---------------------------------------------------------

// `;`-terminated declarations at program scope: text outside every function and struct body,
// initializers included.
std::vector<Piece> program_declarations(const std::string& code) {
  static const std::regex namespace_head(R"(\bnamespace(\s+[A-Za-z_][\w:]*)?\s*$)");
  std::vector<Piece> out;
  size_t start = 0;
  for (size_t i = 0; i < code.size(); ++i) {
    const char c = code[i];
    if (c == '{') {
      const std::string head = code.substr(start, i - start);
      if (std::regex_search(head, namespace_head)) {
        start = i + 1;
        continue;
      }
      const size_t close = matching_close(code, i);
      if (close == std::string::npos) break;
      std::string outside_parens = head;
      for (size_t p = outside_parens.find('('); p != std::string::npos;
           p = outside_parens.find('(')) {
        const size_t q = matching_close(outside_parens, p);
        outside_parens.erase(p, q == std::string::npos ? std::string::npos : q - p + 1);
      }
      const bool initializer = outside_parens.find('=') != std::string::npos;
      i = close;
      if (!initializer) start = close + 1;  // a function, struct or enum body
    } else if (c == '}') {
      start = i + 1;  // the end of a namespace
    } else if (c == ';') {
      size_t s = start;
      while (s < i && std::isspace(static_cast<unsigned char>(code[s]))) ++s;
      if (s < i) out.push_back({code.substr(s, i - s), s});
      start = i + 1;
    }
  }
  return out;
}

void check_program_scope(const std::string& code, std::vector<Finding>& out) {
  static const std::regex skip(
      R"(^(\[\[[^\]]*\]\]\s*)*(using|typedef|static_assert|template|struct|class|enum|union|namespace|extern|friend)\b)");
  static const std::regex space(R"(\b(device|constant|thread|threadgroup)\b)");
  for (const Piece& d : program_declarations(without_directives(code))) {
    if (std::regex_search(d.text, skip)) continue;
    const size_t eq = d.text.find('='), paren = d.text.find('(');
    const std::string head = d.text.substr(0, std::min(eq, paren));
    std::smatch m;
    const std::string as = std::regex_search(head, m, space) ? m[1].str() : "";
    const bool function_declaration = paren < eq && as.empty();
    if (function_declaration || d.text.find("function_constant") != std::string::npos) continue;
    if (as == "threadgroup") {
      out.push_back({d.offset + static_cast<size_t>(m.position(1)),
                     "threadgroup variable at program scope: threadgroup memory is declared "
                     "in a kernel function (here: a [[threadgroup(n)]] kernel argument)" +
                         kThreadgroupSpace});
    } else if (as != "constant") {
      out.push_back({d.offset,
                     "program-scope variable outside the constant address space: variables "
                     "at program scope must be declared constant and initialized" +
                         kConstantSpace});
    } else if (eq == std::string::npos && paren == std::string::npos &&
               d.text.find('{') == std::string::npos) {
      out.push_back({d.offset,
                     "program-scope constant variable without an initializer: constant "
                     "variables at program scope must be initialized" +
                         kConstantSpace});
    }
  }
}

// ---- functions --------------------------------------------------------------------------

// Direct recursion: a function definition whose body calls its own name.
void check_recursion(const std::string& code, std::vector<Finding>& out) {
  static const std::regex call_head(R"(\b([A-Za-z_]\w*)\s*\()");
  static const std::regex keyword(
      R"(^(if|for|while|switch|return|catch|sizeof|alignof|decltype|static_assert|kernel)$)");
  static const std::regex after_params(R"(^\s*(const\s*)?(\[\[[^\]]*\]\]\s*)*\{)");
  const std::vector<bool> scope = program_scope(code);
  for (std::sregex_iterator it(code.begin(), code.end(), call_head), end; it != end; ++it) {
    const std::string name = (*it)[1];
    const size_t at = static_cast<size_t>(it->position(1));
    if (!scope[at] || std::regex_match(name, keyword)) continue;
    const size_t open = static_cast<size_t>(it->position(0) + it->length(0) - 1);
    const size_t close = matching_close(code, open);
    if (close == std::string::npos) continue;
    std::smatch m;
    const std::string rest = code.substr(close + 1, 200);
    if (!std::regex_search(rest, m, after_params)) continue;
    const size_t body = close + 1 + static_cast<size_t>(m.length(0)) - 1;
    const size_t body_end = matching_close(code, body);
    if (body_end == std::string::npos) continue;
    const std::regex self(R"((^|[^\w.>:])()" + name + R"()\s*\()");
    const std::string text = code.substr(body, body_end - body);
    std::smatch call;
    if (std::regex_search(text, call, self)) {
      out.push_back({body + static_cast<size_t>(call.position(2)),
                     "'" + name + "' calls itself: recursive function calls are not supported" +
                         kRestrictions});
    }
  }
}

void check_delete(const std::string& code, std::vector<Finding>& out) {
  static const std::regex del(R"(\bdelete\b)");
  for (std::sregex_iterator it(code.begin(), code.end(), del), end; it != end; ++it) {
    size_t p = static_cast<size_t>(it->position(0));
    while (p > 0 && std::isspace(static_cast<unsigned char>(code[p - 1]))) --p;
    if (p > 0 && code[p - 1] == '=') continue;  // `= delete`: a deleted function, allowed
    out.push_back(
        {static_cast<size_t>(it->position(0)),
         "the delete operator is not supported: there is no dynamic allocation" + kRestrictions});
  }
}

// ---- types and versions -----------------------------------------------------------------

// The MSL version in force on each line: `base`, raised inside `#if __METAL_VERSION__ >= N`
// (and lowered back in its #else).
std::vector<int> version_by_line(const std::string& code, int base) {
  static const std::regex if_version(R"(^\s*#\s*(el)?if\b.*__METAL_VERSION__\s*>=\s*(\d+))");
  static const std::regex if_any(R"(^\s*#\s*if(n?def)?\b)");
  static const std::regex elif_any(R"(^\s*#\s*(else|elif)\b)");
  static const std::regex endif(R"(^\s*#\s*endif\b)");
  std::vector<int> stack, out = {base};  // out[0] unused: lines count from 1
  size_t start = 0;
  while (start <= code.size()) {
    size_t end = code.find('\n', start);
    if (end == std::string::npos) end = code.size();
    const std::string line = code.substr(start, end - start);
    std::smatch m;
    if (std::regex_search(line, m, if_version)) {
      if (m[1].matched && !stack.empty()) stack.pop_back();
      stack.push_back(std::stoi(m[2]));
    } else if (std::regex_search(line, if_any)) {
      stack.push_back(0);
    } else if (std::regex_search(line, elif_any) && !stack.empty()) {
      stack.back() = 0;
    } else if (std::regex_search(line, endif) && !stack.empty()) {
      stack.pop_back();
    }
    int v = base;
    for (int raised : stack) v = std::max(v, raised);
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

std::string version_text(int v) {
  return std::to_string(v / 100) + "." + std::to_string(v / 10 % 10);
}

void check_bfloat(const std::string& code, int msl_version, std::vector<Finding>& out) {
  static const std::regex bfloat(R"(\b(simdgroup_)?bfloat\w*)");
  const std::vector<int> versions = version_by_line(code, msl_version);
  for (std::sregex_iterator it(code.begin(), code.end(), bfloat), end; it != end; ++it) {
    const size_t at = static_cast<size_t>(it->position(0));
    const int v = versions[static_cast<size_t>(line_of(code, at))];
    if (v >= kMsl31) continue;
    out.push_back({at, "'" + it->str() + "' needs MSL 3.1, and this library is compiled for MSL " +
                           version_text(v) +
                           ": guard it with #if __METAL_VERSION__ >= 310 or decode the bits" +
                           kScalarTypes});
  }
}

void check_simdgroup_matrix(const std::string& code, std::vector<Finding>& out) {
  static const std::regex templ(
      R"(\bsimdgroup_matrix\s*<\s*([\w\s]+?)\s*,\s*(\w+)\s*,\s*(\w+)\s*>)");
  static const std::regex alias(R"(\bsimdgroup_([a-z]+)(\d+)x(\d+)\b)");
  static const std::regex element(R"(^(float|half|bfloat)$)");
  static const std::regex digits(R"(^\d+$)");
  const auto check = [&](const std::smatch& m, size_t at) {
    const std::string t = m[1], cols = m[2], rows = m[3];
    if (!std::regex_match(t, element)) {
      out.push_back({at, "simdgroup_matrix of '" + t +
                             "': the element type must be float, "
                             "half or bfloat" +
                             kSimdMatrix});
    } else if ((std::regex_match(cols, digits) && cols != "8") ||
               (std::regex_match(rows, digits) && rows != "8")) {
      out.push_back({at, "simdgroup_matrix of " + cols + "x" + rows + ": only 8x8 is supported" +
                             kSimdMatrix});
    }
  };
  for (const std::regex* re : {&templ, &alias}) {
    for (std::sregex_iterator it(code.begin(), code.end(), *re), end; it != end; ++it)
      check(*it, static_cast<size_t>(it->position(0)));
  }
}

void check_max_threads(const std::string& code, std::vector<Finding>& out) {
  static const std::regex attr(
      R"(\[\[\s*max_total_threads_per_threadgroup\s*\(\s*([^)]*?)\s*\)\s*\]\])");
  static const std::regex literal(R"(^\d+$)");
  for (std::sregex_iterator it(code.begin(), code.end(), attr), end; it != end; ++it) {
    const std::string n = (*it)[1];
    if (!std::regex_match(n, literal)) continue;  // a macro: not checkable here
    const long v = std::stol(n);
    if (v < 1 || v > 1024) {
      out.push_back({static_cast<size_t>(it->position(0)),
                     "[[max_total_threads_per_threadgroup(" + n +
                         ")]]: the limit must be 1 to 1024, the most threads a threadgroup "
                         "has on any Metal GPU" +
                         kKernelFunctions});
    }
  }
}

}  // namespace

int parse_msl_version(const std::string& text) {
  static const std::regex re(R"(^(\d)\.(\d)$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) throw std::invalid_argument("bad MSL version " + text);
  return std::stoi(m[1]) * 100 + std::stoi(m[2]) * 10;
}

std::vector<Finding> lint_msl_spec(const std::string& code, int msl_version) {
  std::vector<Finding> f;
  for (const Kernel& k : kernels(code)) {
    check_builtin_types(k, f);
    check_address_spaces(k, f);
    check_attribute_indices(k, f);
  }
  find_all(code, std::regex(R"(\bkernel\s+(?!void\b)[A-Za-z_]\w*\s+[A-Za-z_]\w*\s*\()"), 0,
           "a kernel function must return void" + kKernelFunctions, f);
  check_program_scope(code, f);
  check_recursion(code, f);
  find_all(code, std::regex(R"(\bvirtual\b)"), 0,
           "virtual functions are not supported" + kRestrictions, f);
  find_all(code, std::regex(R"(\b(throw|try|catch)\b)"), 0,
           "exception handling (throw, try, catch) is not supported" + kRestrictions, f);
  find_all(code, std::regex(R"(\bnew\b)"), 0,
           "the new operator is not supported: there is no dynamic allocation" + kRestrictions, f);
  check_delete(code, f);
  find_all(code, std::regex(R"(\(\s*[*&]\s*([A-Za-z_]\w*)?\s*\)\s*\()"), 0,
           "function pointer: MSL has them only as [[visible]] functions linked into the "
           "pipeline, which this backend does not do; call the function by name or template "
           "on it" +
               kRestrictions,
           f);
  find_all(code, std::regex(R"(\b(dynamic_cast|typeid|noexcept|thread_local)\b)"), 0,
           "dynamic_cast, typeid, noexcept and thread_local are not supported" + kRestrictions, f);
  check_bfloat(code, msl_version, f);
  check_simdgroup_matrix(code, f);
  check_max_threads(code, f);
  find_all(code, std::regex(R"(\b(long\s+)?double\b)"), 0,
           "MSL has no double (nor long double): use float" + kScalarTypes, f);
  find_all(code,
           std::regex(R"((^|[^\w.])((\d+\.\d*|\.\d+)([eE][+-]?\d+)?|\d+[eE][+-]?\d+)(?![\w.]))"), 2,
           "floating-point literal without a suffix: Metal reads it as float, C++ (the "
           "emulator) as double, so the two compute differently; write 0.5f (float) or "
           "half(0.5f)" +
               kScalarTypes,
           f);
  return f;
}

}  // namespace torchless::mslemu::lint
