#pragma once
// Reading ../shared reference data (float32 logits, JSON) and comparing logits the way
// ../shared/golden/README.md measures them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace torchless::testing {

inline std::filesystem::path shared_path(const std::string& relative) {
  return std::filesystem::path(TORCHLESS_SOURCE_DIR) / ".." / "shared" / relative;
}

// Throws (failing the test with a clear message) when a reference file is missing.
inline std::filesystem::path require_shared(const std::string& relative) {
  const auto path = shared_path(relative);
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("reference data missing: " + path.string() +
                             " (the tests read ../shared relative to the repository root)");
  }
  return path;
}

inline std::vector<float> read_f32_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<float> values(size / sizeof(float));
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(size));
  return values;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return nlohmann::json::parse(in);
}

inline int argmax(std::span<const float> row) {
  return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

// The README's measures, over rows of n_vocab: rel = max over rows of max|a-b| / max|b_row|,
// rel_l2 = ||a - b|| / ||b||, and the number of rows whose argmax differs.
struct LogitsDiff {
  double max_abs = 0;
  double rel = 0;
  double rel_l2 = 0;
  int argmax_diff = 0;
};

inline LogitsDiff compare_logits(std::span<const float> actual, std::span<const float> expected,
                                 size_t n_vocab) {
  LogitsDiff d;
  double diff2 = 0, ref2 = 0;
  for (size_t row = 0; row * n_vocab < expected.size(); ++row) {
    const auto a = actual.subspan(row * n_vocab, n_vocab);
    const auto b = expected.subspan(row * n_vocab, n_vocab);
    double row_abs = 0, row_max = 0;
    for (size_t i = 0; i < n_vocab; ++i) {
      const double e = std::abs(static_cast<double>(a[i]) - b[i]);
      row_abs = std::max(row_abs, e);
      row_max = std::max(row_max, std::abs(static_cast<double>(b[i])));
      diff2 += e * e;
      ref2 += static_cast<double>(b[i]) * b[i];
    }
    d.max_abs = std::max(d.max_abs, row_abs);
    d.rel = std::max(d.rel, row_abs / row_max);
    if (argmax(a) != argmax(b)) ++d.argmax_diff;
  }
  d.rel_l2 = std::sqrt(diff2 / ref2);
  return d;
}

inline std::string describe(const LogitsDiff& d) {
  return "max_abs " + std::to_string(d.max_abs) + ", rel " + std::to_string(d.rel) + ", rel_l2 " +
         std::to_string(d.rel_l2) + ", argmax differs at " + std::to_string(d.argmax_diff) +
         " rows";
}

}  // namespace torchless::testing
