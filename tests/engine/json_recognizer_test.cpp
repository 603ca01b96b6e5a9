// JsonRecognizer: valid objects are accepted byte by byte and complete only at their end;
// invalid text is refused at the first byte after which no JSON object can follow; the nesting
// and whitespace limits; and a differential test against nlohmann's parser (the independent
// reference) on random documents and random mutations of them, which also checks that every
// prefix the recogniser accepts can still be completed into an object nlohmann parses.
#include "torchless/engine/json_recognizer.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "torchless/core/error.h"

namespace torchless {
namespace {

using nlohmann::json;

// Whether a number's text is within the recogniser's limits (integer digits, exponent value).
bool number_within_limits(const std::string& number) {
  size_t i = number[0] == '-' ? 1 : 0;
  size_t integer_digits = 0;
  while (i < number.size() && number[i] >= '0' && number[i] <= '9') ++integer_digits, ++i;
  const size_t e = number.find_first_of("eE");
  int exponent = 0;
  if (e != std::string::npos) {
    for (size_t j = e + 1; j < number.size(); ++j) {
      if (number[j] >= '0' && number[j] <= '9') {
        exponent = std::min(exponent * 10 + (number[j] - '0'), 100000);
      }
    }
  }
  return integer_digits <= JsonRecognizer::kMaxIntegerDigits &&
         exponent <= JsonRecognizer::kMaxExponent;
}

// nlohmann's SAX events: is the text one object, and are its numbers within the limits? (Only
// floats carry their text; integers nlohmann reads as such have at most 20 digits.)
class ReferenceSax : public nlohmann::json_sax<json> {
 public:
  bool object = false;
  bool numbers_within_limits = true;

  bool null() override { return first(false); }
  bool boolean(bool) override { return first(false); }
  bool number_integer(number_integer_t) override { return first(false); }
  bool number_unsigned(number_unsigned_t) override { return first(false); }
  bool number_float(number_float_t, const string_t& text) override {
    numbers_within_limits = numbers_within_limits && number_within_limits(text);
    return first(false);
  }
  bool string(string_t&) override { return first(false); }
  bool binary(binary_t&) override { return first(false); }
  bool start_object(std::size_t) override { return first(true); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return first(false); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool first(bool is_object) {
    if (!started_) object = is_object;
    started_ = true;
    return true;
  }
  bool started_ = false;
};

// The independent reference: nlohmann parses `text` as exactly one JSON object whose numbers
// are within the recogniser's limits.
bool reference_object(const std::string& text) {
  ReferenceSax sax;
  return json::sax_parse(text, &sax) && sax.object && sax.numbers_within_limits;
}

// Completes an accepted prefix: takes, again and again, the first byte of a fixed preference
// list the recogniser accepts (a quote first, then closing brackets, an opening brace last;
// whitespace never), which
// closes every open string, number, literal and container in a bounded number of steps.
std::string complete_greedily(JsonRecognizer r) {
  std::string order = "\"}]:0123456789abcdefghijklmnopqrstuvwxyz\\";
  for (const int b : {0x80, 0x90, 0xA0, int{'{'}}) order += static_cast<char>(b);
  std::string out;
  for (int step = 0; step < 4096 && !r.complete(); ++step) {
    bool moved = false;
    for (const char c : order) {
      JsonRecognizer next = r;
      if (next.feed(static_cast<uint8_t>(c))) {
        r = next;
        out += c;
        moved = true;
        break;
      }
    }
    if (!moved) return out + "<stuck>";
  }
  return out;
}

// How many bytes of `text` the recogniser takes before refusing one (text.size() if none).
size_t accepted_length(const std::string& text, int max_depth = JsonRecognizer::kDefaultMaxDepth) {
  JsonRecognizer r(max_depth);
  for (size_t i = 0; i < text.size(); ++i) {
    if (!r.feed(static_cast<uint8_t>(text[i]))) return i;
  }
  return text.size();
}

bool recognises(const std::string& text) {
  JsonRecognizer r;
  return r.feed(text) && r.complete();
}

TEST(JsonRecognizer, AcceptsValidObjectsAndCompletesAtTheirEnd) {
  const std::vector<std::string> docs = {
      "{}",
      " \n\t{ } \r\n",
      R"({"a": -0.5e+3, "b": [1, 2.0, 0, -0, 1E9, 3e-2, 10.25E+07, true, false, null, {}, []]})",
      R"({"key":"value","nested":{"x":[[[]]],"y":{"z":null}}})",
      R"({"esc": "\" \\ \/ \b \f \n \r \t \u0000 \u00e9 \uFFFF \ud83d\ude00"})",
      "{\"utf8\": \"\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 \xed\x9f\xbf "
      "\xf4\x8f\xbf\xbf\"}",
      "{\"\xe2\x82\xac\": \"\x7f\"}",
      R"({"":"", "n": [-12345678901234567890, 0.000001]})",
  };
  for (const std::string& doc : docs) {
    ASSERT_TRUE(reference_object(doc)) << doc;
    JsonRecognizer r;
    const size_t last_brace = doc.rfind('}');
    for (size_t i = 0; i < doc.size(); ++i) {
      ASSERT_TRUE(r.feed(static_cast<uint8_t>(doc[i]))) << doc << " at byte " << i;
      EXPECT_EQ(r.complete(), i >= last_brace) << doc << " at byte " << i;
    }
  }
}

TEST(JsonRecognizer, RefusesAtTheFirstByteNoObjectCanFollow) {
  // (a prefix some object starts with, the rest whose first byte no object continues)
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "[]"},
      {"", "\"a\""},
      {"", "1"},
      {"{", "a:1}"},
      {"{", "'a':1}"},
      {"{", ",}"},
      {"{\"a\" ", "1}"},
      {"{\"a\":0", "1}"},
      {"{\"a\":-", "}"},
      {"{\"a\":-", "a"},
      {"{\"a\":1.", "}"},
      {"{\"a\":1.", "e5}"},
      {"{\"a\":", ".5}"},
      {"{\"a\":", "+1}"},
      {"{\"a\":1e", "}"},
      {"{\"a\":1e+", "}"},
      {"{\"a\":1.5e3", ".}"},
      {"{\"a\":tru", "}"},
      {"{\"a\":", "True}"},
      {"{\"a\":nul", "L}"},
      {"{\"a\":1,", "}"},
      {"{\"a\":[1,", "]}"},
      {"{\"a\":", "]}"},
      {"{\"a\":[", "}}"},
      {"{\"a\":[1", "}}"},
      {"{\"a\":{\"b\":1", "]}"},
      {"{\"a\":1", ":2}"},
      {"{\"a\":\"", "\n\"}"},
      {"{\"a\":\"", "\x1f\"}"},
      {"{\"a\":\"\\", "x\"}"},
      {"{\"a\":\"\\", "U0041\"}"},
      {"{\"a\":\"\\u12", "G4\"}"},
      {"{\"a\":\"", "\xc0\x80\"}"},          // overlong NUL
      {"{\"a\":\"", "\xc1\xbf\"}"},          // overlong
      {"{\"a\":\"\xe0", "\x80\x80\"}"},      // overlong 3-byte
      {"{\"a\":\"\xed", "\xa0\x80\"}"},      // a surrogate in UTF-8
      {"{\"a\":\"\xf0", "\x80\x80\x80\"}"},  // overlong 4-byte
      {"{\"a\":\"\xf4", "\x90\x80\x80\"}"},  // above U+10FFFF
      {"{\"a\":\"", "\xf5\x80\x80\x80\"}"},  // no such lead byte
      {"{\"a\":\"", "\x80\"}"},              // a stray continuation byte
      {"{\"a\":\"\xc3", "\"}"},              // a character cut short
      {"{\"a\":\"\xe6\x97", "a\"}"},         // a character cut short
      {"{\"a\":\"\\ud", "c00\"}"},           // a lone low surrogate
      {"{\"a\":\"\\ud83d", "\"}"},           // a high surrogate alone
      {"{\"a\":\"\\ud83d\\", "n\"}"},        // ... followed by another escape
      {"{\"a\":\"\\ud83d\\u", "0041\"}"},    // ... by a character that is not a low half
      {"{\"a\":\"\\ud83d\\ud", "83d\"}"},    // ... by another high half
      {"{}", "x"},
      {"{} ", "{}"},
      {"{}", ","},
  };
  for (const auto& [prefix, rest] : cases) {
    EXPECT_EQ(accepted_length(prefix + rest), prefix.size()) << prefix << rest;
    EXPECT_FALSE(reference_object(prefix + rest)) << prefix << rest;
  }
  JsonRecognizer r;
  EXPECT_FALSE(r.feed("[]"));
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.feed(static_cast<uint8_t>('{')));  // a failed recogniser stays failed
}

TEST(JsonRecognizer, NestingStopsAtTheDepthLimit) {
  EXPECT_EQ(accepted_length(R"({"a":{"b":[1]}})", 3), 15u);
  EXPECT_EQ(accepted_length(R"({"a":{"b":{"c":1}}})", 3), 19u);
  EXPECT_EQ(accepted_length(R"({"a":{"b":{"c":{)", 3), 15u);
  EXPECT_EQ(accepted_length(R"({"a":[[[1]]]})", 3), 7u);
  EXPECT_EQ(accepted_length("{}", 1), 2u);
  EXPECT_EQ(accepted_length(R"({"a":[]})", 1), 5u);

  std::string deep = "{";
  for (int d = 1; d < JsonRecognizer::kDefaultMaxDepth; ++d) deep += "\"k\":{";
  EXPECT_EQ(accepted_length(deep + "}"), deep.size() + 1);
  EXPECT_EQ(accepted_length(deep + "\"k\":{"), deep.size() + 4);
  JsonRecognizer at_limit;
  ASSERT_TRUE(at_limit.feed(deep));
  EXPECT_EQ(at_limit.depth(), JsonRecognizer::kDefaultMaxDepth);

  const std::string deepest = "{\"k\":" + std::string(JsonRecognizer::kMaxDepthLimit - 1, '[') +
                              std::string(JsonRecognizer::kMaxDepthLimit - 1, ']') + "}";
  EXPECT_EQ(accepted_length(deepest, JsonRecognizer::kMaxDepthLimit), deepest.size());
  EXPECT_TRUE(reference_object(deepest));

  EXPECT_THROW(JsonRecognizer(0), Error);
  EXPECT_THROW(JsonRecognizer(JsonRecognizer::kMaxDepthLimit + 1), Error);
}

TEST(JsonRecognizer, NumbersStayFiniteInADouble) {
  const std::string digits(JsonRecognizer::kMaxIntegerDigits, '7');
  EXPECT_TRUE(recognises("{\"a\": -" + digits + ".5e+200}"));
  EXPECT_TRUE(recognises("{\"a\": 1e-0000200, \"b\": 0.5E200}"));
  EXPECT_EQ(accepted_length("{\"a\": " + digits + "7}"), 6 + digits.size());
  EXPECT_EQ(accepted_length("{\"a\": 1e201}"), 10u);
  EXPECT_EQ(accepted_length("{\"a\": 1.5E-999}"), 13u);
  // Why: nlohmann refuses a number that overflows a double.
  EXPECT_FALSE(json::accept("1e999"));
  EXPECT_TRUE(json::accept("-" + digits + ".5e+200"));
}

TEST(JsonRecognizer, LimitsRunsOfWhitespace) {
  const std::string run(JsonRecognizer::kMaxWhitespaceRun, ' ');
  EXPECT_TRUE(recognises(run + "{" + run + "\"a\"" + run + ":" + run + "1" + run + "}" + run));
  EXPECT_EQ(accepted_length(run + " {}"), run.size());
  EXPECT_EQ(accepted_length("{\"a\":[1," + run + "\n"), 8 + run.size());
  EXPECT_EQ(accepted_length("{}" + run + "\t"), 2 + run.size());
  // Inside strings whitespace is text, not a run.
  EXPECT_TRUE(recognises("{\"a\":\"" + run + run + "\"}"));
}

// Random JSON values (nlohmann), with every kind of string content that needs escaping.
json random_value(std::mt19937& rng, int depth) {
  static const std::vector<std::string> pieces = {"a",
                                                  "Z",
                                                  " ",
                                                  "\"",
                                                  "\\",
                                                  "/",
                                                  "\n",
                                                  "\t",
                                                  "\x01",
                                                  "\x7f",
                                                  "\xc3\xa9",
                                                  "\xe6\x97\xa5",
                                                  "\xf0\x9f\x98\x80",
                                                  "\xef\xbf\xbf",
                                                  "{",
                                                  "]",
                                                  ":",
                                                  ","};
  const int kind = static_cast<int>(rng() % (depth > 0 ? 8 : 6));
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<int64_t>(rng()) - static_cast<int64_t>(rng());
    case 3:
      return std::ldexp(static_cast<double>(rng()) - 2147483648.0,
                        static_cast<int>(rng() % 80) - 40);
    case 4:
    case 5: {
      std::string s;
      for (uint32_t n = rng() % 6; n > 0; --n) s += pieces[rng() % pieces.size()];
      return s;
    }
    case 6: {
      json a = json::array();
      for (uint32_t n = rng() % 4; n > 0; --n) a.push_back(random_value(rng, depth - 1));
      return a;
    }
    default: {
      json o = json::object();
      for (uint32_t n = rng() % 4; n > 0; --n) {
        o[random_value(rng, 0).dump()] = random_value(rng, depth - 1);
      }
      return o;
    }
  }
}

std::string random_document(std::mt19937& rng) {
  json o = json::object();
  for (uint32_t n = 1 + rng() % 4; n > 0; --n)
    o["k" + std::to_string(rng() % 9)] = random_value(rng, 4);
  const int indent = static_cast<int>(rng() % 3) - 1;  // compact, newlines only, indented by 1
  return o.dump(indent, ' ', /*ensure_ascii=*/rng() % 2 == 0);
}

TEST(JsonRecognizer, AgreesWithNlohmannOnRandomDocumentsAndMutations) {
  std::mt19937 rng(20261207);
  const std::string alphabet = "{}[]\",:.-+eE0129tfnrul \n\\/ux\x01\x80\xbf\xc3\xe0\xed\xf4\xff";
  int mutants_accepted = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string doc = random_document(rng);
    ASSERT_TRUE(reference_object(doc)) << doc;
    JsonRecognizer r;
    for (size_t b = 0; b < doc.size(); ++b) {
      ASSERT_TRUE(r.feed(static_cast<uint8_t>(doc[b]))) << doc << " at byte " << b;
      ASSERT_EQ(r.complete(), b + 1 == doc.size()) << doc << " at byte " << b;
    }
    for (int m = 0; m < 20; ++m) {
      std::string mutant = doc;
      const size_t at = rng() % mutant.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          mutant[at] = c;
          break;
        case 1:
          mutant.insert(mutant.begin() + static_cast<ptrdiff_t>(at), c);
          break;
        default:
          mutant.erase(at, 1);
          break;
      }
      const bool expected = reference_object(mutant);
      ASSERT_EQ(recognises(mutant), expected) << mutant;
      mutants_accepted += expected ? 1 : 0;
      // The prefix the recogniser took can always be completed into an object.
      const size_t taken = accepted_length(mutant);
      JsonRecognizer prefix;
      ASSERT_TRUE(prefix.feed(mutant.substr(0, taken)));
      const std::string completed = mutant.substr(0, taken) + complete_greedily(prefix);
      ASSERT_TRUE(reference_object(completed)) << mutant << " -> " << completed;
    }
  }
  // Some mutations keep a valid object (a digit for a digit...): both sides of the comparison
  // were exercised.
  EXPECT_GT(mutants_accepted, 100);
}

}  // namespace
}  // namespace torchless
