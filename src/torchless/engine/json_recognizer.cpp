#include "torchless/engine/json_recognizer.h"

#include <array>

#include "torchless/core/error.h"

namespace torchless {
namespace {

constexpr std::array<std::string_view, 3> kLiterals = {"true", "false", "null"};

bool is_whitespace(uint8_t b) {
  return b == ' ' || b == '\t' || b == '\n' || b == '\r';
}

bool is_digit(uint8_t b) {
  return b >= '0' && b <= '9';
}

// The value of a hex digit, or -1.
int hex_value(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

}  // namespace

JsonRecognizer::JsonRecognizer(int max_depth) {
  if (max_depth < 1 || max_depth > kMaxDepthLimit) {
    fail("the JSON nesting limit must be between 1 and {}, got {}", kMaxDepthLimit, max_depth);
  }
  max_depth_ = static_cast<uint8_t>(max_depth);
}

bool JsonRecognizer::feed(std::string_view bytes) {
  for (const char c : bytes) {
    if (!feed(static_cast<uint8_t>(c))) return false;
  }
  return true;
}

bool JsonRecognizer::feed(uint8_t byte) {
  switch (mode_) {
    case Mode::Failed:
      return false;
    case Mode::String:
      return string_byte(byte);
    case Mode::Escape:
      return escape_byte(byte);
    case Mode::Hex:
      return hex_byte(byte);
    case Mode::LowBackslash:
      if (byte != '\\') return refuse();
      mode_ = Mode::LowU;
      return true;
    case Mode::LowU:
      if (byte != 'u') return refuse();
      mode_ = Mode::Hex;
      hex_left_ = 4;
      code_ = 0;
      low_half_ = true;
      return true;
    case Mode::Utf8:
      return utf8_byte(byte);
    case Mode::Minus:
    case Mode::Zero:
    case Mode::Integer:
    case Mode::Dot:
    case Mode::Fraction:
    case Mode::Exponent:
    case Mode::ExponentSign:
    case Mode::ExponentDigits:
      return number_byte(byte);
    case Mode::Literal:
      return literal_byte(byte);
    case Mode::Value:
    case Mode::ValueOrClose:
    case Mode::KeyOrClose:
    case Mode::Key:
    case Mode::Colon:
    case Mode::AfterValue:
    case Mode::Done:
      return structural(byte);
  }
  return refuse();
}

bool JsonRecognizer::refuse() {
  mode_ = Mode::Failed;
  return false;
}

bool JsonRecognizer::structural(uint8_t byte) {
  if (is_whitespace(byte)) {
    if (whitespace_run_ >= kMaxWhitespaceRun) return refuse();
    ++whitespace_run_;
    return true;
  }
  whitespace_run_ = 0;
  switch (mode_) {
    case Mode::Value:
      return start_value(byte);
    case Mode::ValueOrClose:
      return byte == ']' ? close(true) : start_value(byte);
    case Mode::KeyOrClose:
      if (byte == '}') return close(false);
      [[fallthrough]];
    case Mode::Key:
      if (byte != '"') return refuse();
      mode_ = Mode::String;
      key_ = true;
      return true;
    case Mode::Colon:
      if (byte != ':') return refuse();
      mode_ = Mode::Value;
      return true;
    case Mode::AfterValue:
      if (byte == ',') {
        mode_ = innermost_is_array() ? Mode::Value : Mode::Key;
        return true;
      }
      if (byte == ']' || byte == '}') return close(byte == ']');
      return refuse();
    default:  // Done: only whitespace may follow the object
      return refuse();
  }
}

bool JsonRecognizer::start_value(uint8_t byte) {
  if (depth_ == 0) return byte == '{' ? open(false) : refuse();  // the top level is an object
  switch (byte) {
    case '{':
      return open(false);
    case '[':
      return open(true);
    case '"':
      mode_ = Mode::String;
      key_ = false;
      return true;
    case '-':
      mode_ = Mode::Minus;
      return true;
    case '0':
      mode_ = Mode::Zero;
      return true;
    default:
      break;
  }
  if (is_digit(byte)) {
    mode_ = Mode::Integer;
    integer_digits_ = 1;
    return true;
  }
  for (size_t i = 0; i < kLiterals.size(); ++i) {
    if (byte == static_cast<uint8_t>(kLiterals[i][0])) {
      mode_ = Mode::Literal;
      literal_ = static_cast<uint8_t>(i);
      literal_pos_ = 1;
      return true;
    }
  }
  return refuse();
}

bool JsonRecognizer::open(bool array) {
  if (depth_ >= max_depth_) return refuse();
  const uint64_t bit = uint64_t{1} << depth_;
  arrays_ = array ? (arrays_ | bit) : (arrays_ & ~bit);
  ++depth_;
  mode_ = array ? Mode::ValueOrClose : Mode::KeyOrClose;
  return true;
}

bool JsonRecognizer::close(bool array) {
  if (depth_ == 0 || innermost_is_array() != array) return refuse();
  --depth_;
  value_done();
  return true;
}

bool JsonRecognizer::innermost_is_array() const {
  return depth_ > 0 && ((arrays_ >> (depth_ - 1)) & 1) != 0;
}

void JsonRecognizer::value_done() {
  mode_ = depth_ == 0 ? Mode::Done : Mode::AfterValue;
}

bool JsonRecognizer::string_byte(uint8_t byte) {
  if (byte == '"') {
    if (key_) {
      mode_ = Mode::Colon;
    } else {
      value_done();
    }
    return true;
  }
  if (byte == '\\') {
    mode_ = Mode::Escape;
    return true;
  }
  if (byte < 0x20) return refuse();  // control characters must be escaped
  if (byte < 0x80) return true;
  // A UTF-8 lead byte: how many continuation bytes follow and the range of the first one,
  // which rules out overlong forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
  if (byte < 0xC2 || byte > 0xF4) return refuse();
  lo_ = 0x80;
  hi_ = 0xBF;
  if (byte < 0xE0) {
    utf8_left_ = 1;
  } else if (byte < 0xF0) {
    utf8_left_ = 2;
    if (byte == 0xE0) lo_ = 0xA0;
    if (byte == 0xED) hi_ = 0x9F;
  } else {
    utf8_left_ = 3;
    if (byte == 0xF0) lo_ = 0x90;
    if (byte == 0xF4) hi_ = 0x8F;
  }
  mode_ = Mode::Utf8;
  return true;
}

bool JsonRecognizer::utf8_byte(uint8_t byte) {
  if (byte < lo_ || byte > hi_) return refuse();
  lo_ = 0x80;
  hi_ = 0xBF;
  if (--utf8_left_ == 0) mode_ = Mode::String;
  return true;
}

bool JsonRecognizer::escape_byte(uint8_t byte) {
  switch (byte) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      mode_ = Mode::String;
      return true;
    case 'u':
      mode_ = Mode::Hex;
      hex_left_ = 4;
      code_ = 0;
      low_half_ = false;
      return true;
    default:
      return refuse();
  }
}

// The surrogate rules are checked on the first two digits, as soon as they decide: a low half
// (DC00-DFFF) is refused unless it answers a high half (D800-DBFF), which must be answered.
bool JsonRecognizer::hex_byte(uint8_t byte) {
  const int v = hex_value(byte);
  if (v < 0) return refuse();
  code_ = static_cast<uint16_t>((code_ << 4) | v);
  --hex_left_;
  if (hex_left_ == 3 && low_half_ && code_ != 0xD) return refuse();
  if (hex_left_ == 2) {
    const bool low = code_ >= 0xDC && code_ <= 0xDF;
    if (low != low_half_) return refuse();
  }
  if (hex_left_ > 0) return true;
  const bool high = code_ >= 0xD800 && code_ <= 0xDBFF;
  mode_ = !low_half_ && high ? Mode::LowBackslash : Mode::String;
  return true;
}

bool JsonRecognizer::number_byte(uint8_t byte) {
  const bool digit = is_digit(byte);
  const bool exponent = byte == 'e' || byte == 'E';
  switch (mode_) {
    case Mode::Minus:
      if (!digit) return refuse();
      mode_ = byte == '0' ? Mode::Zero : Mode::Integer;
      integer_digits_ = 1;
      return true;
    case Mode::Zero:
    case Mode::Integer:
      if (digit && mode_ == Mode::Integer) return integer_digit();
      if (byte == '.') {
        mode_ = Mode::Dot;
        return true;
      }
      if (exponent) {
        mode_ = Mode::Exponent;
        exponent_ = 0;
        return true;
      }
      break;  // a leading zero takes no more digits: "01" ends the number at '1' (refused)
    case Mode::Dot:
      if (!digit) return refuse();
      mode_ = Mode::Fraction;
      return true;
    case Mode::Fraction:
      if (digit) return true;
      if (exponent) {
        mode_ = Mode::Exponent;
        exponent_ = 0;
        return true;
      }
      break;
    case Mode::Exponent:
      if (byte == '+' || byte == '-') {
        mode_ = Mode::ExponentSign;
        return true;
      }
      [[fallthrough]];
    case Mode::ExponentSign:
      if (!digit) return refuse();
      mode_ = Mode::ExponentDigits;
      return exponent_digit(byte);
    case Mode::ExponentDigits:
      if (digit) return exponent_digit(byte);
      break;
    default:
      return refuse();
  }
  // The number is complete and ended before this byte, which follows it as structure. Numbers
  // are never at the top level, so a container is open.
  value_done();
  return structural(byte);
}

bool JsonRecognizer::integer_digit() {
  if (integer_digits_ >= kMaxIntegerDigits) return refuse();
  ++integer_digits_;
  return true;
}

bool JsonRecognizer::exponent_digit(uint8_t byte) {
  const int value = exponent_ * 10 + (byte - '0');
  if (value > kMaxExponent) return refuse();
  exponent_ = static_cast<uint16_t>(value);
  return true;
}

bool JsonRecognizer::literal_byte(uint8_t byte) {
  const std::string_view literal = kLiterals[literal_];
  if (byte != static_cast<uint8_t>(literal[literal_pos_])) return refuse();
  if (++literal_pos_ == literal.size()) value_done();
  return true;
}

}  // namespace torchless
