// JsonConstraint and constrained sampling: token pieces are the tokenizer's, mask() refuses
// exactly what allows() refuses (on GPT-2's and Llama's vocabularies), the sampler
// never returns a refused token, and stories260K asked for a JSON object through both
// schedulers writes text that nlohmann (the independent reference) parses as an object, for
// several seeds and temperatures, or a prefix of one when max_tokens cuts it; both schedulers
// give the same tokens.
#include "torchless/engine/json_constraint.h"

#include <cmath>
#include <future>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "torchless/core/error.h"
#include "torchless/engine/batch_scheduler.h"
#include "torchless/engine/sampler.h"
#include "torchless/engine/sequential_scheduler.h"
#include "torchless/engine/session.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

std::filesystem::path shared_path(const std::string& relative) {
  const auto path = std::filesystem::path(TORCHLESS_SOURCE_DIR) / "../shared" / relative;
  if (!std::filesystem::exists(path)) throw std::runtime_error("missing: " + path.string());
  return path;
}

std::unique_ptr<Session> stories_session() {
  SessionOptions o;
  o.model_path = shared_path("models/stories260K.gguf");
  o.backend = "cpu";
  o.n_ctx = 512;
  o.kv_dtype = DType::F16;
  return std::make_unique<Session>(o);
}

std::unique_ptr<Tokenizer> vocab_tokenizer(const std::string& name) {
  return load_tokenizer_from_gguf(*GgufFile::open(shared_path("vocab/" + name)));
}

std::unique_ptr<Tokenizer> gpt2_tokenizer() {
  return vocab_tokenizer("ggml-vocab-gpt-2.gguf");
}

TEST(JsonConstraint, PiecesAreTheTokenizersAndControlTokensAreRefused) {
  auto session = stories_session();
  const Tokenizer& tok = session->tokenizer();
  const auto pieces = std::make_shared<const TokenPieces>(tok);
  ASSERT_EQ(pieces->size(), tok.n_vocab());
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    ASSERT_EQ(pieces->piece(id), tok.token_to_piece(id)) << id;
    ASSERT_EQ(pieces->end_of_generation(id), tok.is_end_of_generation(id)) << id;
  }
  JsonConstraint c(pieces);
  EXPECT_FALSE(c.allows(tok.bos()));
  EXPECT_FALSE(c.allows(tok.eos()));  // not before the object is complete
  EXPECT_FALSE(c.allows(-1));
  EXPECT_FALSE(c.allows(tok.n_vocab()));
  const auto brace = tok.token_id("<0x7B>");  // '{' is a byte token in this vocabulary
  ASSERT_TRUE(brace.has_value());
  EXPECT_TRUE(c.allows(*brace));
  EXPECT_THROW(c.accept(tok.eos()), Error);
}

// GPT-2's byte-level BPE (50k tokens) and Llama's SentencePiece vocabulary (32k, "▁" spaces
// and <0xXX> byte tokens).
TEST(JsonConstraint, MaskRefusesExactlyWhatAllowsRefuses) {
  for (const char* file : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf"}) {
    SCOPED_TRACE(file);
    const auto tok = vocab_tokenizer(file);
    const auto pieces = std::make_shared<const TokenPieces>(*tok);
    JsonConstraint c(pieces);
    // Walk through an object token by token (its own encoding), checking the mask at each step.
    const std::string doc = R"({"name": "Zo\u00eb", "n": [-0.5e+3, true, null], "x": {}})";
    const std::vector<int32_t> ids = tok->encode(doc, EncodeOptions{false, false, false});
    ASSERT_EQ(tok->decode(ids), doc);
    std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
    std::string text;  // the pieces so far (with SentencePiece's leading space)
    for (size_t step = 0; step <= ids.size(); ++step) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      c.mask(logits);
      int allowed = 0;
      for (int32_t id = 0; id < tok->n_vocab(); ++id) {
        const bool kept = logits[static_cast<size_t>(id)] == 0.0f;
        ASSERT_EQ(kept, c.allows(id)) << "step " << step << " token " << id;
        if (!kept) continue;
        ++allowed;
        // An allowed token's bytes continue the object: a fresh recogniser takes the text so
        // far and the piece (the end of generation only once the object is complete).
        JsonRecognizer r;
        ASSERT_TRUE(r.feed(text + tok->token_to_piece(id))) << "step " << step << " token " << id;
        if (tok->is_end_of_generation(id)) {
          ASSERT_TRUE(r.complete());
        }
      }
      EXPECT_GT(allowed, 0) << "step " << step;
      if (step < ids.size()) {
        ASSERT_TRUE(c.allows(ids[step])) << "step " << step;
        c.accept(ids[step]);
        text += tok->token_to_piece(ids[step]);
      }
    }
    EXPECT_TRUE(c.complete());
    EXPECT_TRUE(c.allows(tok->eos()));
  }
}

TEST(JsonConstraint, ConstrainedSamplerReturnsOnlyAllowedTokens) {
  const auto tok = gpt2_tokenizer();
  const auto pieces = std::make_shared<const TokenPieces>(*tok);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
  for (const float temperature : {0.0f, 0.8f, 1.5f}) {
    SamplerOptions o;
    o.temperature = temperature;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    o.seed = 11;
    Sampler sampler(o);
    JsonConstraint c(pieces);
    std::string text;
    for (int i = 0; i < 200 && !c.complete(); ++i) {
      for (float& l : logits) l = normal(rng);
      const int32_t id = sampler.sample(logits, {}, &c);
      ASSERT_TRUE(c.allows(id));
      c.accept(id);
      text += tok->token_to_piece(id);
    }
    JsonRecognizer r;
    EXPECT_TRUE(r.feed(text)) << text;
  }
  // A constraint that allows nothing among the possible tokens is an error, not a crash.
  SamplerOptions o = SamplerOptions::greedy();
  const auto brace = tok->token_id("{");
  ASSERT_TRUE(brace.has_value());
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    if (id != *brace) o.logit_bias.emplace_back(id, -INFINITY);
  }
  Sampler banned(o);
  JsonConstraint c(pieces);
  c.accept(*brace);  // now '{' is no longer allowed and every other token is banned
  std::fill(logits.begin(), logits.end(), 0.0f);
  EXPECT_THROW(banned.sample(logits, {}, &c), Error);
}

struct Result {
  std::vector<int32_t> ids;
  SequenceSummary summary;
};

// Runs every request through `scheduler` at once and waits for their ends.
std::vector<Result> run_all(Scheduler& scheduler, const std::vector<SequenceRequest>& requests) {
  std::vector<Result> results(requests.size());
  std::vector<std::promise<void>> done(requests.size());
  std::vector<std::future<void>> ended;
  for (size_t i = 0; i < requests.size(); ++i) {
    ended.push_back(done[i].get_future());
    SequenceCallbacks cb;
    Result* r = &results[i];
    cb.on_token = [r](const SequenceToken& t) {
      r->ids.push_back(t.id);
      return true;
    };
    std::promise<void>* p = &done[i];
    cb.on_end = [r, p](const SequenceSummary& s) {
      r->summary = s;
      p->set_value();
    };
    scheduler.submit(requests[i], cb);
  }
  for (auto& f : ended) {
    if (f.wait_for(std::chrono::seconds(300)) != std::future_status::ready) {
      throw std::runtime_error("a request did not end");
    }
  }
  return results;
}

// Every output is an object nlohmann parses (Completed) or, cut by max_tokens, a prefix of one.
void check_outputs(const Tokenizer& tok, const std::vector<Result>& results, int max_tokens) {
  int complete = 0;
  for (const Result& r : results) {
    std::string text;
    for (const int32_t id : r.ids) text += tok.token_to_piece(id);
    if (r.summary.end == SequenceEnd::Completed) {
      ++complete;
      ASSERT_TRUE(nlohmann::json::accept(text)) << text;
      EXPECT_TRUE(nlohmann::json::parse(text).is_object()) << text;
    } else {
      ASSERT_EQ(r.summary.end, SequenceEnd::MaxTokens) << r.summary.error;
      EXPECT_EQ(static_cast<int>(r.ids.size()), max_tokens);
      JsonRecognizer prefix;
      EXPECT_TRUE(prefix.feed(text)) << text;
      EXPECT_FALSE(nlohmann::json::accept(text)) << text;
    }
  }
  // The model writes long strings, yet most objects close within the budget.
  EXPECT_GE(complete * 2, static_cast<int>(results.size()));
}

// `bias`: logit biases every request gets.
std::vector<SequenceRequest> json_requests(const std::vector<int32_t>& prompt, int max_tokens,
                                           const std::vector<std::pair<int32_t, float>>& bias) {
  std::vector<SequenceRequest> requests;
  for (const float temperature : {0.0f, 0.7f, 1.0f, 1.5f}) {
    for (const uint64_t seed : {1u, 2u, 3u}) {
      if (temperature == 0.0f && seed > 1) continue;
      SequenceRequest r;
      r.prompt = prompt;
      r.sampling = SamplerOptions();
      r.sampling.temperature = temperature;
      r.sampling.top_k = 0;
      r.sampling.top_p = 1.0f;
      r.sampling.min_p = 0.0f;
      r.sampling.seed = seed;
      r.sampling.logit_bias = bias;
      r.max_tokens = max_tokens;
      r.format = OutputFormat::JsonObject;
      requests.push_back(r);
    }
  }
  return requests;
}

TEST(JsonConstraint, StoriesWritesJsonObjectsThroughBothSchedulers) {
  auto session = stories_session();
  const std::vector<int32_t> prompt = session->tokenize("Once upon a time, {\"name\": \"Lily\"}");
  constexpr int kMaxTokens = 200;
  // The story model knows nothing of JSON: alone it writes strings and whitespace until
  // max_tokens. A bias towards '}' and against whitespace (which the constraint allows only
  // where they fit) lets most objects close within the budget.
  const Tokenizer& tok = session->tokenizer();
  const std::vector<std::pair<int32_t, float>> bias = {{*tok.token_id("<0x7D>"), 6.0f},
                                                       {*tok.token_id("\""), 2.0f},
                                                       {*tok.token_id(","), -8.0f},
                                                       {*tok.token_id("<0x0A>"), -4.0f},
                                                       {*tok.token_id("\u2581"), -2.0f}};
  const auto requests = json_requests(prompt, kMaxTokens, bias);
  SchedulerOptions o;
  o.slots = 4;
  o.n_ctx = session->n_ctx();
  std::vector<Result> batched;
  {
    BatchScheduler batch(session->transformer_for_scheduler(), &tok, o);
    batched = run_all(batch, requests);
  }
  check_outputs(tok, batched, kMaxTokens);
  SequentialScheduler sequential(session->transformer_for_scheduler(), &tok, o);
  const std::vector<Result> one_by_one = run_all(sequential, requests);
  // Both schedulers give a request the same logits, so the same constrained tokens.
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(one_by_one[i].ids, batched[i].ids);
}

TEST(JsonConstraint, JsonOutputWithoutATokenizerIsRefused) {
  auto session = stories_session();
  SchedulerOptions o;
  o.n_ctx = session->n_ctx();
  BatchScheduler batch(session->transformer_for_scheduler(), nullptr, o);
  SequenceRequest r;
  r.prompt = {1, 2, 3};
  r.format = OutputFormat::JsonObject;
  EXPECT_THROW(batch.submit(r, {}), Error);
}

}  // namespace
}  // namespace torchless
