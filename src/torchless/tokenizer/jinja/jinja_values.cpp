#include "torchless/tokenizer/jinja/jinja_values.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "torchless/core/error.h"

namespace torchless::jinja {
namespace {

using nlohmann::json;

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string strip(const std::string& s, bool left, bool right, const std::string& chars) {
  auto drop = [&](char c) {
    return chars.empty() ? is_space(c) : chars.find(c) != std::string::npos;
  };
  size_t b = 0, e = s.size();
  while (left && b < e && drop(s[b])) ++b;
  while (right && e > b && drop(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

const std::string& need_string(const Value& v, const char* what, int line) {
  if (!v.data.is_string()) fail("chat template line {}: {} needs a string", line, what);
  return v.data.get_ref<const std::string&>();
}

std::string arg_string(const std::vector<Value>& args, size_t i, const std::string& fallback) {
  return i < args.size() && args[i].data.is_string() ? args[i].data.get<std::string>() : fallback;
}

json split(const std::string& s, const std::vector<Value>& args) {
  json parts = json::array();
  const std::string sep = arg_string(args, 0, "");
  if (sep.empty()) {  // Python's split(): runs of whitespace, no empty parts
    std::string cur;
    for (char c : s) {
      if (is_space(c)) {
        if (!cur.empty()) parts.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) parts.push_back(cur);
    return parts;
  }
  size_t start = 0;
  for (size_t p = s.find(sep); p != std::string::npos; p = s.find(sep, start)) {
    parts.push_back(s.substr(start, p - start));
    start = p + sep.size();
  }
  parts.push_back(s.substr(start));
  return parts;
}

std::string title_case(std::string s, bool only_first) {
  bool start = true;
  for (char& c : s) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (only_first) {
      c = static_cast<char>(start ? std::toupper(c) : std::tolower(c));
      start = false;
      continue;
    }
    c = static_cast<char>(start && alpha ? std::toupper(c) : std::tolower(c));
    start = !alpha;
  }
  return s;
}

json items_of(const json& obj) {
  json out = json::array();
  for (auto it = obj.begin(); it != obj.end(); ++it) out.push_back(json::array({it.key(), *it}));
  return out;
}

// selectattr/rejectattr(attribute, [test, [value]]): the default test is truthiness.
json select_by_attribute(const json& list, const std::vector<Value>& args, bool keep, int line) {
  json out = json::array();
  const std::string attr = arg_string(args, 0, "");
  const std::string test = arg_string(args, 1, "");
  for (const json& item : list) {
    Value field;
    if (item.is_object() && item.contains(attr)) {
      field.data = item[attr];
    } else {
      field.undefined = true;
    }
    std::vector<Value> test_args(args.begin() + std::min<size_t>(2, args.size()), args.end());
    const bool pass = test.empty() ? truthy(field) : apply_test(test, field, test_args, line);
    if (pass == keep) out.push_back(item);
  }
  return out;
}

}  // namespace

bool truthy(const Value& v) {
  if (v.undefined) return false;
  const json& d = v.data;
  if (d.is_null()) return false;
  if (d.is_boolean()) return d.get<bool>();
  if (d.is_number_integer()) return d.get<int64_t>() != 0;
  if (d.is_number()) return d.get<double>() != 0.0;
  if (d.is_string() || d.is_array() || d.is_object()) return !d.empty();
  return true;
}

std::string to_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 1e15) return fmt::format("{:.1f}", d);
    return fmt::format("{}", d);
  }
  if (v.is_number()) return v.dump();
  std::string out = v.is_array() ? "[" : "{";
  bool first = true;
  auto repr = [](const json& x) {
    if (!x.is_string()) return to_text(x);
    std::string quoted(1, '\'');
    quoted += x.get<std::string>();
    quoted += '\'';
    return quoted;
  };
  for (auto it = v.begin(); it != v.end(); ++it) {
    out += first ? "" : ", ";
    first = false;
    if (v.is_object()) {
      out += '\'';
      out += it.key();
      out += "': ";
    }
    out += repr(*it);
  }
  return out + (v.is_array() ? "]" : "}");
}

std::string to_json_text(const json& v, int indent) {
  return v.dump(indent, ' ', false, json::error_handler_t::replace);
}

bool contains(const json& haystack, const json& needle) {
  if (haystack.is_string() && needle.is_string()) {
    return haystack.get<std::string>().find(needle.get<std::string>()) != std::string::npos;
  }
  if (haystack.is_array())
    return std::find(haystack.begin(), haystack.end(), needle) != haystack.end();
  if (haystack.is_object() && needle.is_string())
    return haystack.contains(needle.get<std::string>());
  return false;
}

namespace {

// Bounds what a hostile template can build (s = s ~ s in a loop doubles each time); far above
// any real prompt.
constexpr size_t kMaxValueSize = size_t{64} << 20;

void check_size(size_t a, size_t b, int line) {
  if (a > kMaxValueSize || b > kMaxValueSize - a) {
    fail("chat template line {}: value larger than {} bytes or items", line, kMaxValueSize);
  }
}

// Python's integers do not overflow; ours fail instead of wrapping (undefined behaviour).
int64_t checked(bool overflowed, int64_t result, const std::string& op, int line) {
  if (overflowed) fail("chat template line {}: integer overflow in '{}'", line, op);
  return result;
}

int64_t floor_div(int64_t i, int64_t j, int line) {
  if (i == std::numeric_limits<int64_t>::min() && j == -1) checked(true, 0, "//", line);
  const int64_t q = i / j;
  return (i % j != 0 && (i < 0) != (j < 0)) ? q - 1 : q;
}

int64_t floor_mod(int64_t i, int64_t j) {
  const int64_t r = j == -1 ? 0 : i % j;
  return (r != 0 && (r < 0) != (j < 0)) ? r + j : r;
}

int64_t to_int64(double d, int line) {
  if (!(d > -9.2233720368547758e18 && d < 9.2233720368547758e18)) {
    fail("chat template line {}: {} does not fit an integer", line, d);
  }
  return static_cast<int64_t>(d);
}

// Jinja's int/float filters give 0 for text that is not a number.
json parse_number(const std::string& text, bool integer, int line) {
  try {
    return integer ? json(std::stoll(text)) : json(std::stod(text));
  } catch (const std::invalid_argument&) {
    return integer ? json(0) : json(0.0);
  } catch (const std::out_of_range&) {
    fail("chat template line {}: number '{}' is out of range", line, text);
  }
}

}  // namespace

Value binary_op(const std::string& op, const Value& l, const Value& r, int line) {
  const json& a = l.data;
  const json& b = r.data;
  if (op == "~") {
    std::string x = to_text(l.undefined ? json("") : a), y = to_text(r.undefined ? json("") : b);
    check_size(x.size(), y.size(), line);
    return {x + y};
  }
  if (op == "==") return {a == b && l.undefined == r.undefined};
  if (op == "!=") return {!(a == b && l.undefined == r.undefined)};
  if (op == "in") return {contains(b, a)};
  if (op == "not in") return {!contains(b, a)};
  if (op == "+" && a.is_string() && b.is_string()) {
    check_size(a.get_ref<const std::string&>().size(), b.get_ref<const std::string&>().size(),
               line);
    return {a.get<std::string>() + b.get<std::string>()};
  }
  if (op == "+" && a.is_array() && b.is_array()) {
    check_size(a.size(), b.size(), line);
    json out = a;
    out.insert(out.end(), b.begin(), b.end());
    return {out};
  }
  if (op == "*" && a.is_string() && b.is_number_integer()) {
    const size_t piece = a.get_ref<const std::string&>().size();
    if (piece > 0 && b.get<int64_t>() > static_cast<int64_t>(kMaxValueSize / piece)) {
      check_size(kMaxValueSize, 1, line);
    }
    std::string out;
    for (int64_t i = 0; i < b.get<int64_t>(); ++i) out += a.get<std::string>();
    return {out};
  }
  if (a.is_string() && b.is_string()) {
    const auto& x = a.get_ref<const std::string&>();
    const auto& y = b.get_ref<const std::string&>();
    if (op == "<") return {x < y};
    if (op == ">") return {x > y};
    if (op == "<=") return {x <= y};
    if (op == ">=") return {x >= y};
  }
  if (!a.is_number() || !b.is_number()) {
    fail("chat template line {}: operator '{}' is not defined for {} and {}", line, op,
         a.type_name(), b.type_name());
  }
  const bool ints = a.is_number_integer() && b.is_number_integer();
  const double x = a.get<double>(), y = b.get<double>();
  if (op == "<") return {x < y};
  if (op == ">") return {x > y};
  if (op == "<=") return {x <= y};
  if (op == ">=") return {x >= y};
  if (op == "/") return {x / y};
  if ((op == "//" || op == "%") && y == 0) fail("chat template line {}: division by zero", line);
  if (ints) {
    const int64_t i = a.get<int64_t>(), j = b.get<int64_t>();
    int64_t result = 0;
    bool overflowed = false;
    if (op == "+") overflowed = __builtin_add_overflow(i, j, &result);
    if (op == "-") overflowed = __builtin_sub_overflow(i, j, &result);
    if (op == "*") overflowed = __builtin_mul_overflow(i, j, &result);
    if (op == "+" || op == "-" || op == "*") return {checked(overflowed, result, op, line)};
    if (op == "//") return {floor_div(i, j, line)};
    if (op == "%") return {floor_mod(i, j)};
  }
  if (op == "+") return {x + y};
  if (op == "-") return {x - y};
  if (op == "*") return {x * y};
  if (op == "//") return {std::floor(x / y)};
  if (op == "%") return {x - y * std::floor(x / y)};
  fail("chat template line {}: unknown operator '{}'", line, op);
}

Value apply_filter(const std::string& name, const Value& subject, const std::vector<Value>& args,
                   const std::vector<std::string>& keywords, int line) {
  const json& v = subject.data;
  if (name == "default" || name == "d") {
    const bool use_default =
        subject.undefined || (args.size() > 1 && truthy(args[1]) && !truthy(subject));
    return use_default ? (args.empty() ? Value{""} : args[0]) : subject;
  }
  if (subject.undefined) return {json(nullptr), true};
  if (name == "trim")
    return {strip(need_string(subject, "trim", line), true, true, arg_string(args, 0, ""))};
  if (name == "upper" || name == "lower") {
    std::string s = need_string(subject, name.c_str(), line);
    for (char& c : s) c = static_cast<char>(name == "upper" ? std::toupper(c) : std::tolower(c));
    return {s};
  }
  if (name == "capitalize" || name == "title") {
    return {title_case(need_string(subject, name.c_str(), line), name == "capitalize")};
  }
  if (name == "length" || name == "count") {
    return {static_cast<int64_t>(v.is_string() ? v.get<std::string>().size() : v.size())};
  }
  if (name == "first" || name == "last") {
    if (!v.is_array() || v.empty()) return {json(nullptr), true};
    return {name == "first" ? v.front() : v.back()};
  }
  if (name == "join") {
    std::string out;
    const std::string sep = arg_string(args, 0, "");
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += sep;
      out += to_text(v[i]);
    }
    return {out};
  }
  if (name == "tojson") {
    int indent = -1;
    for (size_t i = 0; i < args.size(); ++i) {
      if ((keywords[i] == "indent" || keywords[i].empty()) && args[i].data.is_number_integer()) {
        indent = static_cast<int>(std::clamp<int64_t>(args[i].data.get<int64_t>(), -1, 64));
      }
    }
    return {to_json_text(v, indent)};
  }
  if (name == "string") return {to_text(v)};
  if (name == "int")
    return {v.is_string() ? parse_number(v.get<std::string>(), true, line)
                          : json(to_int64(v.get<double>(), line))};
  if (name == "float")
    return {v.is_string() ? parse_number(v.get<std::string>(), false, line)
                          : json(v.get<double>())};
  if (name == "list") return {v.is_object() ? items_of(v) : v};
  if (name == "reverse") {
    if (v.is_string())
      return {std::string(v.get<std::string>().rbegin(), v.get<std::string>().rend())};
    json out = v;
    std::reverse(out.begin(), out.end());
    return {out};
  }
  if (name == "replace") {
    return {replace_all(need_string(subject, "replace", line), arg_string(args, 0, ""),
                        arg_string(args, 1, ""))};
  }
  if (name == "items" || name == "dictsort") return {items_of(v)};
  if (name == "selectattr" || name == "rejectattr")
    return {select_by_attribute(v, args, name == "selectattr", line)};
  if (name == "map") {
    json out = json::array();
    const std::string attr = arg_string(args, 0, "");
    for (const json& item : v)
      out.push_back(item.is_object() && item.contains(attr) ? item[attr] : json(nullptr));
    return {out};
  }
  if (name == "safe" || name == "e" || name == "escape") return subject;
  if (name == "abs" && v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    int64_t negated = i;
    const bool overflowed = i < 0 && __builtin_sub_overflow(int64_t{0}, i, &negated);
    return {checked(overflowed, negated, "abs", line)};
  }
  if (name == "abs") return {std::fabs(v.get<double>())};
  fail("chat template line {}: unsupported filter '{}'", line, name);
}

bool apply_test(const std::string& name, const Value& subject, const std::vector<Value>& args,
                int line) {
  const json& v = subject.data;
  if (name == "defined") return !subject.undefined;
  if (name == "undefined") return subject.undefined;
  if (name == "none") return !subject.undefined && v.is_null();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_number_integer();
  if (name == "float") return v.is_number_float();
  if (name == "boolean") return v.is_boolean();
  if (name == "true") return v.is_boolean() && v.get<bool>();
  if (name == "false") return v.is_boolean() && !v.get<bool>();
  if (name == "mapping") return v.is_object();
  if (name == "sequence" || name == "iterable")
    return v.is_array() || v.is_string() || v.is_object();
  if (name == "odd" || name == "even") {
    if (!v.is_number_integer())
      fail("chat template line {}: '{}' test needs an integer", line, name);
    return (v.get<int64_t>() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    if (args.empty()) return false;
    const int64_t j = args[0].data.get<int64_t>();
    if (j == 0) fail("chat template line {}: divisibleby(0)", line);
    return floor_mod(v.get<int64_t>(), j) == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas")
    return !args.empty() && v == args[0].data;
  if (name == "ne" || name == "!=") return !args.empty() && v != args[0].data;
  if (name == "in") return !args.empty() && contains(args[0].data, v);
  fail("chat template line {}: unsupported test '{}'", line, name);
}

Value call_method(const std::string& name, const Value& subject, const std::vector<Value>& args,
                  int line) {
  const json& v = subject.data;
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const std::string a0 = arg_string(args, 0, "");
    if (name == "strip") return {strip(s, true, true, a0)};
    if (name == "lstrip") return {strip(s, true, false, a0)};
    if (name == "rstrip") return {strip(s, false, true, a0)};
    if (name == "startswith") return {s.rfind(a0, 0) == 0};
    if (name == "endswith")
      return {s.size() >= a0.size() && s.compare(s.size() - a0.size(), a0.size(), a0) == 0};
    if (name == "split") return {split(s, args)};
    if (name == "replace") return {replace_all(s, a0, arg_string(args, 1, ""))};
    if (name == "find")
      return {s.find(a0) == std::string::npos ? int64_t{-1} : static_cast<int64_t>(s.find(a0))};
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
      return apply_filter(name, subject, {}, {}, line);
    }
  }
  if (v.is_object()) {
    if (name == "items") return {items_of(v)};
    if (name == "keys" || name == "values") {
      json out = json::array();
      for (auto it = v.begin(); it != v.end(); ++it)
        out.push_back(name == "keys" ? json(it.key()) : *it);
      return {out};
    }
    if (name == "get") {
      const std::string key = arg_string(args, 0, "");
      if (v.contains(key)) return {v[key]};
      return args.size() > 1 ? args[1] : Value{json(nullptr)};
    }
  }
  fail("chat template line {}: unsupported method '{}' on {}", line, name,
       subject.undefined ? "undefined" : v.type_name());
}

}  // namespace torchless::jinja
