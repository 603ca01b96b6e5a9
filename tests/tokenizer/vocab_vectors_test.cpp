// llama.cpp's tokenizer test vectors (../shared/vocab, format in its README): every input,
// encoded without BOS/EOS and without parsing special tokens, must give exactly the listed ids.
#include <sstream>

#include "tokenizer/tokenizer_test_util.h"

namespace torchless {
namespace {

struct VectorCase {
  std::string input;
  std::vector<int32_t> ids;
};

std::vector<VectorCase> read_vectors(const std::string& gguf_name) {
  std::string inp, out;
  const auto base = test::shared_path("vocab/" + gguf_name);
  if (!test::read_file(base.string() + ".inp", inp) ||
      !test::read_file(base.string() + ".out", out)) {
    ADD_FAILURE() << "missing test vectors beside " << base;
    return {};
  }
  std::vector<std::string> inputs;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0;;) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      EXPECT_EQ(pos, inp.size()) << "the .inp file must end with a separator";
      break;
    }
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<VectorCase> cases;
  std::istringstream lines(out);
  std::string line;
  for (const auto& input : inputs) {
    if (!std::getline(lines, line)) {
      ADD_FAILURE() << "fewer .out lines than inputs";
      break;
    }
    VectorCase c{input, {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, EveryVectorEncodesToTheReferenceIds) {
  const std::string name = GetParam();
  auto tokenizer = test::load_gguf_tokenizer("vocab/" + name);
  ASSERT_NE(tokenizer, nullptr);
  const auto cases = read_vectors(name);
  ASSERT_EQ(cases.size(), 46u);
  int failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tokenizer->encode(cases[i].input, test::encode_options(false, false));
    if (ids != cases[i].ids) {
      ++failures;
      ADD_FAILURE() << name << " vector " << i << " input \"" << test::escaped(cases[i].input)
                    << "\"\n  expected " << ::testing::PrintToString(cases[i].ids)
                    << "\n  got      " << ::testing::PrintToString(ids);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST_P(VocabVectors, EveryVectorDecodesBackToItsInput) {
  const std::string name = GetParam();
  auto tokenizer = test::load_gguf_tokenizer("vocab/" + name);
  ASSERT_NE(tokenizer, nullptr);
  for (const auto& c : read_vectors(name)) {
    EXPECT_EQ(tokenizer->decode(c.ids), c.input) << name << " \"" << test::escaped(c.input) << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, VocabVectors,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-starcoder.gguf",
                                           "ggml-vocab-deepseek-coder.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           n = n.substr(11, n.size() - 11 - 5);  // strip ggml-vocab- / .gguf
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace torchless
