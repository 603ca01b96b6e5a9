#include "torchless/model/rope_frequencies.h"

#include <cmath>
#include <numbers>

#include "torchless/core/error.h"

namespace torchless {
namespace {

std::vector<double> base_frequencies(double theta, int head_dim) {
  std::vector<double> inv_freq(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / head_dim);
  }
  return inv_freq;
}

// Llama 3.1's scheme (HF `_compute_llama3_parameters`): wavelengths shorter than
// original_context / high_freq_factor are kept, longer than original_context / low_freq_factor
// are divided by `factor`, and the band between is interpolated smoothly.
void apply_llama3_scaling(const ModelConfig& config, std::vector<double>& inv_freq) {
  const double factor = config.rope_scaling_factor;
  const double low = config.rope_low_freq_factor;
  const double high = config.rope_high_freq_factor;
  const double original = config.rope_original_context;
  if (factor <= 0 || high <= low || original <= 0) {
    fail(
        "invalid llama3 rope scaling (factor {}, low_freq_factor {}, high_freq_factor {}, "
        "original context {})",
        factor, low, high, original);
  }
  const double low_freq_wavelen = original / low;
  const double high_freq_wavelen = original / high;
  for (double& f : inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen < high_freq_wavelen) continue;
    if (wavelen > low_freq_wavelen) {
      f /= factor;
      continue;
    }
    const double smooth = (original / wavelen - low) / (high - low);
    f = (1.0 - smooth) * f / factor + smooth * f;
  }
}

}  // namespace

std::vector<float> rope_inverse_frequencies(const ModelConfig& config,
                                            std::optional<std::span<const float>> freq_divisors) {
  if (config.head_dim <= 0 || config.head_dim % 2 != 0) {
    fail("RoPE needs an even head_dim, got {}", config.head_dim);
  }
  if (!(config.rope_theta > 0)) fail("invalid rope theta {}", config.rope_theta);
  std::vector<double> inv_freq = base_frequencies(config.rope_theta, config.head_dim);

  if (freq_divisors) {
    if (freq_divisors->size() != inv_freq.size()) {
      fail("rope_freqs.weight has {} values, expected head_dim / 2 = {}", freq_divisors->size(),
           inv_freq.size());
    }
    for (size_t i = 0; i < inv_freq.size(); ++i) {
      const float d = (*freq_divisors)[i];
      if (!(d > 0)) fail("rope_freqs.weight[{}] = {} is not a positive divisor", i, d);
      inv_freq[i] /= d;
    }
  } else if (config.rope_scaling == RopeScaling::Llama3) {
    apply_llama3_scaling(config, inv_freq);
  }

  if (config.rope_scaling == RopeScaling::Linear) {
    if (!(config.rope_scaling_factor > 0)) {
      fail("invalid linear rope scaling factor {}", config.rope_scaling_factor);
    }
    for (double& f : inv_freq) f /= config.rope_scaling_factor;
  } else if (config.rope_scaling == RopeScaling::Yarn) {
    fail("YaRN rope scaling is not supported yet");
  }
  return {inv_freq.begin(), inv_freq.end()};
}

}  // namespace torchless
