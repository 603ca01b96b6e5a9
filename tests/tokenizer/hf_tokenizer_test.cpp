// Hugging Face tokenizer.json loading. The test writes tokenizer.json files that describe the
// same vocabularies as the llama.cpp GGUF test files (the way HF's converters lay them out) and
// requires both loaders to produce the reference ids.
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_test_util.h"

namespace torchless {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() / ("torchless_hf_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& file, const json& j) const {
    std::ofstream(path_ / file) << j.dump();
  }

 private:
  fs::path path_;
};

struct GgufVocab {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  std::vector<float> scores;
  std::vector<std::string> merges;
};

GgufVocab read_gguf_vocab(const std::string& relative) {
  const auto gguf = GgufFile::open(test::shared_path(relative));
  GgufVocab v;
  v.tokens = gguf->get("tokenizer.ggml.tokens").as_string_list();
  v.types = gguf->get("tokenizer.ggml.token_type").as_i64_list();
  if (gguf->find("tokenizer.ggml.scores"))
    v.scores = gguf->get("tokenizer.ggml.scores").as_f32_list();
  if (gguf->find("tokenizer.ggml.merges"))
    v.merges = gguf->get("tokenizer.ggml.merges").as_string_list();
  return v;
}

json added_tokens(const GgufVocab& v) {
  json added = json::array();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] == 2 || v.types[i] == 3 || v.types[i] == 4) {
      added.push_back({{"id", i},
                       {"content", v.tokens[i]},
                       {"special", v.types[i] != 4},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false}});
    }
  }
  return added;
}

json byte_level_tokenizer_json(const GgufVocab& v, const json& pre_tokenizer) {
  json vocab = json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) vocab[v.tokens[i]] = i;
  return {{"version", "1.0"},
          {"added_tokens", added_tokens(v)},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}}},
          {"model",
           {{"type", "BPE"},
            {"vocab", vocab},
            {"merges", v.merges},
            {"ignore_merges", false},
            {"byte_fallback", false}}}};
}

// Llama 2's layout: merges (no scores), byte fallback, a normalizer that prepends U+2581.
// Merges are made as HF's SentencePieceExtractor makes them: every split of a piece into two
// pieces, ordered by the piece's score.
json sentencepiece_tokenizer_json(const GgufVocab& v) {
  json vocab = json::object();
  std::unordered_map<std::string, size_t> ids;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    vocab[v.tokens[i]] = i;
    ids[v.tokens[i]] = i;
  }
  struct Merge {
    float score;
    size_t id;
    std::string left, right;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& t = v.tokens[i];
    if (v.types[i] != 1) continue;
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;  // inside a character
      const std::string l = t.substr(0, cut), r = t.substr(cut);
      if (ids.contains(l) && ids.contains(r)) merges.push_back({v.scores[i], i, l, r});
    }
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json merge_list = json::array();
  for (const auto& m : merges) merge_list.push_back(json::array({m.left, m.right}));
  const json space = "\xE2\x96\x81";
  return {{"version", "1.0"},
          {"added_tokens", added_tokens(v)},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             json::array(
                 {{{"type", "Prepend"}, {"prepend", space}},
                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}})}}},
          {"pre_tokenizer", nullptr},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             json::array({{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
                          {{"type", "ByteFallback"}},
                          {{"type", "Fuse"}}})}}},
          {"model",
           {{"type", "BPE"},
            {"vocab", vocab},
            {"merges", merge_list},
            {"byte_fallback", true},
            {"unk_token", "<unk>"},
            {"fuse_unk", true}}}};
}

std::vector<std::pair<std::string, std::vector<int32_t>>> vectors(const std::string& name) {
  std::string inp, out;
  const auto base = test::shared_path("vocab/" + name).string();
  EXPECT_TRUE(test::read_file(base + ".inp", inp) && test::read_file(base + ".out", out)) << base;
  std::vector<std::pair<std::string, std::vector<int32_t>>> cases;
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::istringstream lines(out);
  for (size_t pos = 0, next; (next = inp.find(sep, pos)) != std::string::npos;
       pos = next + sep.size()) {
    std::string line;
    std::getline(lines, line);
    std::istringstream ids(line);
    std::vector<int32_t> v;
    for (int32_t id; ids >> id;) v.push_back(id);
    cases.emplace_back(inp.substr(pos, next - pos), v);
  }
  return cases;
}

void expect_vectors(const Tokenizer& hf, const std::string& name) {
  const auto cases = vectors(name);
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& [input, ids] : cases) {
    EXPECT_EQ(hf.encode(input, test::encode_options(false, false)), ids)
        << name << " \"" << test::escaped(input) << "\"";
  }
}

TEST(HfTokenizer, ByteLevelGpt2MatchesTheVectors) {
  TempDir dir("gpt2");
  const json pre = {{"type", "ByteLevel"},
                    {"add_prefix_space", false},
                    {"trim_offsets", true},
                    {"use_regex", true}};
  dir.write("tokenizer.json",
            byte_level_tokenizer_json(read_gguf_vocab("vocab/ggml-vocab-gpt-2.gguf"), pre));
  const auto tokenizer = load_tokenizer_from_hf(dir.path());
  EXPECT_EQ(tokenizer->model_type(), "gpt2");
  EXPECT_EQ(tokenizer->n_vocab(), 50257);
  EXPECT_FALSE(tokenizer->add_bos());
  EXPECT_EQ(tokenizer->eot(), 50256);  // <|endoftext|>, recognised by its text
  expect_vectors(*tokenizer, "ggml-vocab-gpt-2.gguf");
}

TEST(HfTokenizer, DigitsThenByteLevelMatchesStarcoder) {
  TempDir dir("starcoder");
  const json pre = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Digits"}, {"individual_digits", true}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}})}};
  dir.write("tokenizer.json",
            byte_level_tokenizer_json(read_gguf_vocab("vocab/ggml-vocab-starcoder.gguf"), pre));
  expect_vectors(*load_tokenizer_from_hf(dir.path()), "ggml-vocab-starcoder.gguf");
}

TEST(HfTokenizer, SplitRegexesMatchDeepseekCoder) {
  TempDir dir("deepseek");
  const auto split = [](const std::string& regex) {
    return json{{"type", "Split"},
                {"pattern", {{"Regex", regex}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  };
  const json pre = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array(
           {split("[\r\n]"),
            split("\\s?\\p{L}+"),
            split("\\s?\\p{P}+"),
            split("[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+"),
            {{"type", "Digits"}, {"individual_digits", true}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  const auto v = read_gguf_vocab("vocab/ggml-vocab-deepseek-coder.gguf");
  dir.write("tokenizer.json", byte_level_tokenizer_json(v, pre));
  dir.write("tokenizer_config.json",
            {{"add_bos_token", true},
             {"add_eos_token", false},
             {"bos_token", {{"content", v.tokens[32013]}, {"lstrip", false}}},
             {"eos_token", v.tokens[32014]},
             {"chat_template", "{{ messages }}"}});
  const auto tokenizer = load_tokenizer_from_hf(dir.path());
  EXPECT_TRUE(tokenizer->add_bos());
  EXPECT_EQ(tokenizer->bos(), 32013);
  EXPECT_EQ(tokenizer->eos(), 32014);
  EXPECT_EQ(tokenizer->chat_template(), "{{ messages }}");
  EXPECT_EQ(tokenizer->encode("a").front(), 32013);
  expect_vectors(*tokenizer, "ggml-vocab-deepseek-coder.gguf");
}

TEST(HfTokenizer, SentencePieceStyleMatchesLlamaSpm) {
  TempDir dir("llama_spm");
  const auto v = read_gguf_vocab("vocab/ggml-vocab-llama-spm.gguf");
  dir.write("tokenizer.json", sentencepiece_tokenizer_json(v));
  dir.write("tokenizer_config.json", {{"add_bos_token", true},
                                      {"add_eos_token", false},
                                      {"bos_token", "<s>"},
                                      {"eos_token", "</s>"},
                                      {"unk_token", "<unk>"}});
  const auto hf = load_tokenizer_from_hf(dir.path());
  EXPECT_EQ(hf->model_type(), "llama");
  EXPECT_EQ(hf->bos(), 1);
  EXPECT_EQ(hf->eos(), 2);
  EXPECT_EQ(hf->unk(), 0);
  EXPECT_TRUE(hf->add_bos());
  expect_vectors(*hf, "ggml-vocab-llama-spm.gguf");
  const auto gguf = test::load_gguf_tokenizer("vocab/ggml-vocab-llama-spm.gguf");
  std::mt19937 rng(31);
  for (int i = 0; i < 100; ++i) {
    const std::string text = test::random_utf8(rng, 1 + i);
    ASSERT_EQ(hf->encode(text), gguf->encode(text)) << "seed 31 case " << i;
  }
}

// A small hand-written byte-level tokenizer: added tokens (special and not, with lstrip),
// TemplateProcessing for BOS, generation_config's list of EOS ids, named chat templates.
TEST(HfTokenizer, AddedTokensPostProcessorAndGenerationConfig) {
  TempDir dir("small");
  json vocab = json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) {
    // The printable stand-ins of GPT-2's byte mapping for ASCII letters and space ("Ġ").
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) vocab[std::string(1, char(b))] = id++;
  }
  vocab["\xC4\xA0"] = id++;  // Ġ
  vocab["he"] = id++;
  vocab["hel"] = id++;
  vocab["hell"] = id++;
  vocab["hello"] = id++;
  const int bos = id++, eot = id++, tool = id++;
  json tok = {
      {"added_tokens",
       json::array({{{"id", bos}, {"content", "<|begin|>"}, {"special", true}},
                    {{"id", eot}, {"content", "<|eot_id|>"}, {"special", true}},
                    {{"id", tool}, {"content", "[TOOL]"}, {"special", false}, {"lstrip", true}}})},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<|begin|>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", json::array({"h e", "he l", "hel l", "hell o"})}}}};
  dir.write("tokenizer.json", tok);
  dir.write("tokenizer_config.json",
            {{"chat_template", json::array({{{"name", "tool_use"}, {"template", "T"}},
                                            {{"name", "default"}, {"template", "D"}}})}});
  dir.write("generation_config.json", {{"eos_token_id", json::array({eot, tool})}});
  const auto t = load_tokenizer_from_hf(dir.path());
  EXPECT_EQ(t->model_type(), "gpt2");
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->bos(), bos);
  EXPECT_EQ(t->eot(), eot);
  EXPECT_EQ(t->chat_template(), "D");
  EXPECT_TRUE(t->is_end_of_generation(eot));
  EXPECT_TRUE(t->is_end_of_generation(tool));
  EXPECT_EQ(t->token_type(tool), TokenType::UserDefined);
  EXPECT_EQ(t->encode("hello"), (std::vector<int32_t>{bos, vocab["hello"].get<int32_t>()}));
  // The user-defined token is found without parse_special and swallows the space on its left;
  // control-token text stays text unless parse_special is set.
  const auto ids = t->encode("hello [TOOL]<|eot_id|>", test::encode_options(false));
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], vocab["hello"].get<int32_t>());
  EXPECT_EQ(ids[1], tool);
  EXPECT_GT(ids.size(), 3u);
  const auto special =
      t->encode("hello [TOOL]<|eot_id|>", test::encode_options(false, false, true));
  EXPECT_EQ(special, (std::vector<int32_t>{vocab["hello"].get<int32_t>(), tool, eot}));
  EXPECT_EQ(t->decode(special), "hello[TOOL]");
}

TEST(HfTokenizer, BrokenFilesAreErrors) {
  TempDir dir("broken");
  EXPECT_THROW(load_tokenizer_from_hf(dir.path()), Error);  // no tokenizer.json
  std::ofstream(dir.path() / "tokenizer.json") << "{ not json";
  EXPECT_THROW(load_tokenizer_from_hf(dir.path()), Error);
  dir.write("tokenizer.json", {{"model", {{"type", "Unigram"}, {"vocab", json::array()}}}});
  EXPECT_THROW(load_tokenizer_from_hf(dir.path()), Error);
  dir.write("tokenizer.json", {{"model", {{"type", "BPE"}, {"vocab", {{"a", "zero"}}}}}});
  EXPECT_THROW(load_tokenizer_from_hf(dir.path()), Error);
  dir.write("tokenizer.json", {{"model", {{"type", "BPE"}, {"vocab", json::object()}}}});
  EXPECT_THROW(load_tokenizer_from_hf(dir.path()), Error);
}

// Found by hf_tokenizer_fuzz: a huge or negative id made the loader allocate for it.
TEST(HfTokenizer, ImplausibleTokenIdsAreRefused) {
  TempDir dir("bad_ids");
  const auto expect_refused = [&](const json& tok) {
    dir.write("tokenizer.json", tok);
    try {
      load_tokenizer_from_hf(dir.path());
      FAIL() << "expected an error for " << tok.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("token id"), std::string::npos) << e.what();
    }
  };
  for (const char* text : {R"({"model": {"type": "BPE", "vocab": {"a": 100000000000}}})",
                           R"({"model": {"type": "BPE", "vocab": {"a": -1}}})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0.5}}})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0}},
               "added_tokens": [{"id": 4000000000, "content": "x"}]})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0}},
               "added_tokens": [{"id": -2, "content": "x"}]})"}) {
    expect_refused(json::parse(text));
  }
}

}  // namespace
}  // namespace torchless
