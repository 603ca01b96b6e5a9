#pragma once
// Value semantics of the Jinja subset over JSON: truthiness, printing and operators as Python
// and jinja2 define them (e.g. True prints as "True", "a" * 3, list + list).
#include <string>

#include <nlohmann/json.hpp>

namespace torchless::jinja {

struct Value {
  nlohmann::json data;
  bool undefined = false;
};

bool truthy(const Value& v);
std::string to_text(const nlohmann::json& v);                   // how {{ v }} prints it
std::string to_json_text(const nlohmann::json& v, int indent);  // the tojson filter
Value binary_op(const std::string& op, const Value& l, const Value& r, int line);
bool contains(const nlohmann::json& haystack, const nlohmann::json& needle);
// Filters, tests and methods (str.strip(), dict.items(), ...): name + evaluated arguments.
Value apply_filter(const std::string& name, const Value& subject, const std::vector<Value>& args,
                   const std::vector<std::string>& keywords, int line);
bool apply_test(const std::string& name, const Value& subject, const std::vector<Value>& args,
                int line);
Value call_method(const std::string& name, const Value& subject, const std::vector<Value>& args,
                  int line);

}  // namespace torchless::jinja
