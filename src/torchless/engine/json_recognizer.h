#pragma once
// A byte-level recogniser of one JSON object (RFC 8259 with a top-level object), for
// constrained decoding: feed() accepts a byte only when the bytes so far are still the start of
// some valid JSON object, so that every accepted prefix can be completed and a decoder that only
// ever takes accepted bytes cannot get stuck. Strings must be valid UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF) with no raw control characters, and a \u escape of a
// surrogate must be a high one followed at once by a \u escape of a low one, so that every
// parser (JavaScript's, Python's, nlohmann's) reads the text alike.
//
// Limits keep a model from running away in structure it does not need, and every number finite
// in a double (nlohmann refuses 1e999; JavaScript and Python read it as Infinity): objects and
// arrays nest at most max_depth deep; at most kMaxWhitespaceRun whitespace bytes follow each
// other (room for a newline and deep indentation); a number has at most kMaxIntegerDigits
// digits before its point and an exponent of at most kMaxExponent (leading zeros aside), so it
// stays below 1e300. Strings and fractions may be of any length.
//
// The state is a few bytes and trivially copyable: a caller tests a candidate token by copying
// the recogniser and feeding the token's bytes to the copy.
#include <cstdint>
#include <string_view>

namespace torchless {

class JsonRecognizer {
 public:
  static constexpr int kMaxDepthLimit = 64;  // the nesting bit stack is one 64-bit word
  static constexpr int kDefaultMaxDepth = 32;
  static constexpr int kMaxWhitespaceRun = 32;
  static constexpr int kMaxIntegerDigits = 100;
  static constexpr int kMaxExponent = 200;

  // max_depth: 1 (a flat object) .. kMaxDepthLimit; throws Error outside.
  explicit JsonRecognizer(int max_depth = kDefaultMaxDepth);

  // Takes one byte; false when no JSON object starts with the bytes so far plus this one. A
  // refused byte leaves the recogniser failed: every later byte is refused too.
  bool feed(uint8_t byte);
  // Feeds every byte; false at the first refused one.
  bool feed(std::string_view bytes);

  bool failed() const { return mode_ == Mode::Failed; }
  // The top-level object is closed (only whitespace may follow).
  bool complete() const { return mode_ == Mode::Done; }
  int depth() const { return depth_; }

 private:
  enum class Mode : uint8_t {
    Value,           // a value may start here (the top level: only '{')
    ValueOrClose,    // just after '[': a value or ']'
    KeyOrClose,      // just after '{': a key or '}'
    Key,             // after ',' in an object
    Colon,           // after a key
    AfterValue,      // ',' or the closing bracket of the innermost container
    String,          // inside a string (key_ says which kind)
    Escape,          // after a backslash
    Hex,             // in the 4 hex digits of \u (hex_left, code_)
    LowBackslash,    // after a high surrogate's escape: its low half must follow
    LowU,            // after that backslash: 'u'
    Utf8,            // continuation bytes of a character (utf8_left, next in [lo_, hi_])
    Minus,           // '-': a digit must follow
    Zero,            // a leading 0 (no more integer digits)
    Integer,         // integer digits
    Dot,             // '.': a digit must follow
    Fraction,        // fraction digits
    Exponent,        // 'e'/'E': a sign or a digit must follow
    ExponentSign,    // the exponent's sign: a digit must follow
    ExponentDigits,  // exponent digits
    Literal,         // inside true, false or null (literal_, literal_pos_)
    Done,            // the top-level object is closed
    Failed,
  };

  bool structural(uint8_t byte);  // Value .. AfterValue and Done: whitespace and punctuation
  bool start_value(uint8_t byte);
  bool open(bool array);
  bool close(bool array);
  void value_done();  // a value ended: AfterValue, or Done at the top level
  bool string_byte(uint8_t byte);
  bool escape_byte(uint8_t byte);
  bool hex_byte(uint8_t byte);
  bool utf8_byte(uint8_t byte);
  bool number_byte(uint8_t byte);
  bool integer_digit();               // counts a digit before the point
  bool exponent_digit(uint8_t byte);  // adds a digit to the exponent
  bool literal_byte(uint8_t byte);
  bool refuse();  // enters Failed; returns false
  bool innermost_is_array() const;

  uint64_t arrays_ = 0;  // bit d: the container at depth d + 1 is an array (else an object)
  uint8_t max_depth_;
  uint8_t depth_ = 0;
  Mode mode_ = Mode::Value;
  uint8_t whitespace_run_ = 0;
  bool key_ = false;         // the string being read is an object key
  uint8_t literal_ = 0;      // index into the literals (true, false, null)
  uint8_t literal_pos_ = 0;  // bytes of it matched
  uint8_t hex_left_ = 0;
  bool low_half_ = false;  // the \u escape being read must be a low surrogate
  uint16_t code_ = 0;      // the \u escape's digits so far
  uint8_t integer_digits_ = 0;
  uint16_t exponent_ = 0;
  uint8_t utf8_left_ = 0;
  uint8_t lo_ = 0, hi_ = 0;  // the range of the next continuation byte
};

}  // namespace torchless
