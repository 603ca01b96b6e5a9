// GgufValue conversions: one accessor per C++ type, each refusing values that do not fit.
#include <cmath>
#include <limits>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UInt8:
      return "u8";
    case GgufType::Int8:
      return "i8";
    case GgufType::UInt16:
      return "u16";
    case GgufType::Int16:
      return "i16";
    case GgufType::UInt32:
      return "u32";
    case GgufType::Int32:
      return "i32";
    case GgufType::Float32:
      return "f32";
    case GgufType::Bool:
      return "bool";
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::UInt64:
      return "u64";
    case GgufType::Int64:
      return "i64";
    case GgufType::Float64:
      return "f64";
  }
  return "unknown";
}

uint64_t GgufValue::as_u64() const {
  if (const auto* u = std::get_if<uint64_t>(&value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&value)) {
    if (*i < 0) fail("GGUF value {} is negative, expected an unsigned integer", *i);
    return static_cast<uint64_t>(*i);
  }
  fail("GGUF value of type {} is not an integer", gguf_type_name(type));
}

int64_t GgufValue::as_i64() const {
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail("GGUF value {} does not fit a signed 64-bit integer", *u);
    }
    return static_cast<int64_t>(*u);
  }
  fail("GGUF value of type {} is not an integer", gguf_type_name(type));
}

double GgufValue::as_f64() const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  fail("GGUF value of type {} is not a number", gguf_type_name(type));
}

bool GgufValue::as_bool() const {
  if (const auto* b = std::get_if<bool>(&value)) return *b;
  fail("GGUF value of type {} is not a bool", gguf_type_name(type));
}

const std::string& GgufValue::as_string() const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  fail("GGUF value of type {} is not a string", gguf_type_name(type));
}

const GgufArray& GgufValue::as_array() const {
  if (const auto* a = std::get_if<GgufArray>(&value)) return *a;
  fail("GGUF value of type {} is not an array", gguf_type_name(type));
}

std::vector<std::string> GgufValue::as_string_list() const {
  const GgufArray& array = as_array();
  std::vector<std::string> out;
  out.reserve(array.items.size());
  for (const GgufValue& item : array.items) out.push_back(item.as_string());
  return out;
}

std::vector<float> GgufValue::as_f32_list() const {
  const GgufArray& array = as_array();
  std::vector<float> out;
  out.reserve(array.items.size());
  for (const GgufValue& item : array.items) out.push_back(static_cast<float>(item.as_f64()));
  return out;
}

std::vector<int64_t> GgufValue::as_i64_list() const {
  const GgufArray& array = as_array();
  std::vector<int64_t> out;
  out.reserve(array.items.size());
  for (const GgufValue& item : array.items) out.push_back(item.as_i64());
  return out;
}

}  // namespace torchless
