#include "torchless/app/sampling_options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "torchless/core/error.h"

namespace torchless::app {
namespace {

// NaN fails every comparison, so each check is written as "inside the range", never "outside".
void check_range(std::string_view flag, double value, double lo, double hi,
                 std::string_view range) {
  if (!(value >= lo && value <= hi)) fail("{} must be {}, got {}", flag, range, value);
}

// -1 (random) or a seed; std::nullopt when the text is neither. Parsed by hand because CLI11
// saturates out-of-range integers silently.
std::optional<int64_t> parse_seed(std::string_view text, uint64_t& seed) {
  if (text == "-1") return -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return 0;
}

// "15043+1.5", "15043-inf" (llama.cpp's --logit-bias); std::nullopt when malformed.
std::optional<std::pair<int32_t, float>> parse_logit_bias(const std::string& text) {
  const size_t sign = text.find_first_of("+-", 1);
  if (sign == std::string::npos) return std::nullopt;
  int32_t id = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + sign, id);
  if (error != std::errc() || end != text.data() + sign || id < 0) return std::nullopt;
  const std::string value = text.substr(sign);
  if (value == "-inf") return std::pair{id, -INFINITY};
  char* value_end = nullptr;
  const float bias = std::strtof(value.c_str(), &value_end);
  if (value_end != value.c_str() + value.size() || !std::isfinite(bias)) return std::nullopt;
  return std::pair{id, bias};
}

// llama.cpp's escapes for breaker strings; an unknown escape keeps its backslash.
std::string unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    switch (const char c = text[++i]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '"':
      case '\'':
      case '\\':
        out += c;
        break;
      default:
        out += '\\';
        out += c;
        break;
    }
  }
  return out;
}

}  // namespace

void add_sampling_options(CLI::App& app, SamplingArgs& args) {
  SamplerOptions& s = args.sampler;
  app.add_option("--temp", s.temperature, "temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")
      ->capture_default_str();
  app.add_option("--top-p", s.top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  app.add_option("--min-p", s.min_p, "drop tokens below min-p x the top probability (0: off)")
      ->capture_default_str();
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  app.add_option("--repeat-last-n", s.penalty_last_n,
                 "tokens the penalties look back on (-1: the whole sequence)")
      ->capture_default_str();
  app.add_option("--presence-penalty", s.presence_penalty, "presence penalty (0: off)")
      ->capture_default_str();
  app.add_option("--frequency-penalty", s.frequency_penalty,
                 "subtracted once per earlier occurrence (0: off)")
      ->capture_default_str();
  app.add_option("--typical", s.typical_p, "locally typical sampling mass (1: off)")
      ->capture_default_str();
  app.add_option("--mirostat", s.mirostat,
                 "0: off, 1: mirostat, 2: mirostat v2 (both replace top-k/p, min-p, typical)")
      ->capture_default_str();
  app.add_option("--mirostat-ent", s.mirostat_tau, "mirostat target entropy tau")
      ->capture_default_str();
  app.add_option("--mirostat-lr", s.mirostat_eta, "mirostat learning rate eta")
      ->capture_default_str();
  app.add_option("--dry-multiplier", s.dry_multiplier, "DRY repetition penalty strength (0: off)")
      ->capture_default_str();
  app.add_option("--dry-base", s.dry_base, "DRY penalty growth per repeated token")
      ->capture_default_str();
  app.add_option("--dry-allowed-length", s.dry_allowed_length,
                 "repeats this long or shorter are not DRY-penalised")
      ->capture_default_str();
  app.add_option("--dry-sequence-breaker", args.dry_sequence_breakers,
                 "a string a DRY repeat never crosses (repeatable; the first replaces the "
                 "defaults \\n : \" *; 'none': no breakers)");
  app.add_option("-l,--logit-bias", args.logit_bias,
                 "ID+BIAS or ID-BIAS added to a token's logit; ID-inf bans it (repeatable)");
  app.add_option("-s,--seed", args.seed, "random seed (-1: random)")->capture_default_str();
  app.add_option("-r,--reverse-prompt,--stop", args.reverse_prompts,
                 "stop once the output contains this text (repeatable)");
}

void check_sampling(const SamplingArgs& args) {
  const SamplerOptions& s = args.sampler;
  check_range("--temp", s.temperature, 0, 1e6, "between 0 (greedy) and 1e6");
  check_range("--top-k", s.top_k, 0, 1e9, "0 (off) or more");
  // The sampler's own bounds: top-p above 0, min-p below 1.
  check_range("--top-p", s.top_p, 1e-9, 1, "between 0 and 1 (above 0; 1: off)");
  check_range("--min-p", s.min_p, 0, 1 - 1e-9, "between 0 (off) and 1 (below 1)");
  check_range("--repeat-penalty", s.repeat_penalty, 1e-6, 1e6,
              "a positive number (1: off; above 1 penalises repeats)");
  check_range("--repeat-last-n", s.penalty_last_n, -1, 1e9, "-1 (the whole sequence) or more");
  check_range("--presence-penalty", s.presence_penalty, -1e6, 1e6, "a finite number (0: off)");
  check_range("--frequency-penalty", s.frequency_penalty, -1e6, 1e6, "a finite number (0: off)");
  check_range("--typical", s.typical_p, 1e-9, 1, "between 0 and 1 (above 0; 1: off)");
  if (s.mirostat < 0 || s.mirostat > 2) {
    fail("--mirostat must be 0 (off), 1 or 2, got {}", s.mirostat);
  }
  check_range("--mirostat-ent", s.mirostat_tau, 0, 1e6, "0 or more");
  check_range("--mirostat-lr", s.mirostat_eta, 0, 1e6, "0 or more");
  check_range("--dry-multiplier", s.dry_multiplier, 0, 1e6, "0 (off) or more");
  check_range("--dry-base", s.dry_base, 1, 1e3, "between 1 and 1000");
  check_range("--dry-allowed-length", s.dry_allowed_length, 1, 1e6, "1 or more");
  for (const std::string& bias : args.logit_bias) {
    if (!parse_logit_bias(bias)) {
      fail("--logit-bias must be ID+BIAS, ID-BIAS or ID-inf (e.g. 15043+1.5), got '{}'", bias);
    }
  }
  uint64_t seed = 0;
  if (!parse_seed(args.seed, seed)) {
    fail("--seed must be -1 (random) or a whole number from 0 to {}, got {}",
         std::numeric_limits<uint64_t>::max(), args.seed);
  }
  for (const std::string& r : args.reverse_prompts) {
    if (r.empty()) fail("--reverse-prompt must not be empty");
  }
}

void check_n_predict(int n_predict) {
  if (n_predict < -1) fail("-n must be -1 (no limit) or 0 or more, got {}", n_predict);
}

std::vector<std::string> dry_breaker_strings(const std::vector<std::string>& flags) {
  std::vector<std::string> breakers;
  for (const std::string& flag : flags) {
    if (flag == "none") return {};
    breakers.push_back(unescape(flag));
  }
  return breakers;
}

SamplerOptions resolve_sampling(const SamplingArgs& args, const Tokenizer& tokenizer) {
  SamplerOptions s = args.sampler;
  uint64_t seed = 0;
  const auto parsed = parse_seed(args.seed, seed);
  if (!parsed) fail("--seed: '{}' is not a number", args.seed);
  s.seed = *parsed == -1 ? std::random_device{}() : seed;
  for (const std::string& bias : args.logit_bias) {
    if (const auto parsed_bias = parse_logit_bias(bias)) s.logit_bias.push_back(*parsed_bias);
  }
  if (s.dry_multiplier != 0.0f) {
    s.dry_sequence_breakers =
        dry_breaker_sequences(tokenizer, dry_breaker_strings(args.dry_sequence_breakers));
  }
  return s;
}

size_t find_reverse_prompt(const std::vector<std::string>& prompts, std::string_view text) {
  size_t best = std::string_view::npos;
  for (const std::string& p : prompts) {
    const size_t at = text.find(p);
    if (at != std::string_view::npos) best = std::min(best, at + p.size());
  }
  return best;
}

}  // namespace torchless::app
