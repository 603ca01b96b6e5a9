#include "torchless/model/rope_frequencies.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "model/reference_data.h"
#include "torchless/core/error.h"
#include "torchless/formats/model_loader.h"

namespace torchless {
namespace {

ModelConfig llama3_golden_config() {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 500000.0f;
  c.rope_scaling = RopeScaling::Llama3;
  c.rope_scaling_factor = 8.0f;
  c.rope_low_freq_factor = 1.0f;
  c.rope_high_freq_factor = 4.0f;
  c.rope_original_context = 64;
  return c;
}

TEST(RopeFrequencies, UnscaledAreThetaPowers) {
  ModelConfig c;
  c.head_dim = 10;
  c.rope_theta = 12345.0f;
  const auto f = rope_inverse_frequencies(c, std::nullopt);
  ASSERT_EQ(f.size(), 5u);
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_FLOAT_EQ(f[i], static_cast<float>(std::pow(12345.0, -2.0 * i / 10.0))) << i;
  }
}

// The divisors llama.cpp's converter stores in rope_freqs (../shared/golden/README.md).
TEST(RopeFrequencies, Llama3ScalingMatchesPublishedDivisors) {
  const ModelConfig c = llama3_golden_config();
  ModelConfig unscaled = c;
  unscaled.rope_scaling = RopeScaling::None;
  const auto scaled = rope_inverse_frequencies(c, std::nullopt);
  const auto base = rope_inverse_frequencies(unscaled, std::nullopt);
  std::vector<double> divisors = {1, 1, 1, 1.425495, 2.442259, 4.637151};
  divisors.resize(32, 8.0);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_NEAR(base[i] / scaled[i], divisors[i], 2e-6 * divisors[i]) << "frequency " << i;
  }
}

TEST(RopeFrequencies, GgufRopeFreqsTensorEqualsConfigScaling) {
  const LoadedModel gguf =
      load_model(testing::require_shared("golden/llama3-ropescaling/model-f32.gguf"));
  const HostTensorView& view = gguf.weights.get("rope_freqs.weight");
  ASSERT_EQ(view.dtype, DType::F32);
  const std::span<const float> divisors(reinterpret_cast<const float*>(view.data), 32);
  ModelConfig c = gguf.config;
  const auto from_tensor = rope_inverse_frequencies(c, divisors);
  const auto from_config = rope_inverse_frequencies(llama3_golden_config(), std::nullopt);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_NEAR(from_tensor[i], from_config[i], 1e-6 * from_config[i]) << i;
  }
}

TEST(RopeFrequencies, LinearScalingDividesEveryFrequency) {
  ModelConfig c;
  c.head_dim = 6;
  c.rope_scaling = RopeScaling::Linear;
  c.rope_scaling_factor = 4.0f;
  const auto f = rope_inverse_frequencies(c, std::nullopt);
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_FLOAT_EQ(f[i], static_cast<float>(std::pow(10000.0, -2.0 * i / 6.0) / 4.0));
  }
}

TEST(RopeFrequencies, RejectsOddHeadDimAndWrongDivisorCount) {
  ModelConfig c;
  c.head_dim = 7;
  EXPECT_THROW(rope_inverse_frequencies(c, std::nullopt), Error);
  c.head_dim = 8;
  const std::vector<float> three = {1, 2, 3};
  EXPECT_THROW(rope_inverse_frequencies(c, std::span<const float>(three)), Error);
}

}  // namespace
}  // namespace torchless
