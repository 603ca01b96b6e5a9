#pragma once
// Helpers shared by the loader tests: a minimal safetensors writer (independent of the
// parser under test), temporary directories and golden-data paths.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "torchless/core/tensor.h"

namespace torchless::test {

namespace fs = std::filesystem;

inline fs::path shared_dir() {
  return fs::path(TORCHLESS_SOURCE_DIR) / ".." / "shared";
}

// Fails the current test (with the path) when a file of ../shared is missing.
inline fs::path shared_path(const std::string& relative) {
  fs::path p = shared_dir() / relative;
  if (!fs::exists(p))
    ADD_FAILURE() << "missing test data " << p << " (../shared is read-only input)";
  return p;
}

inline void write_bytes(const fs::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<std::byte> read_bytes(const fs::path& path) {
  std::string s = read_text(path);
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

struct StTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "BF16", ...
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

inline std::vector<std::byte> float_bytes(const std::vector<float>& values) {
  std::vector<std::byte> out(values.size() * sizeof(float));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Writes tensors back to back in the given order; `header_pad` extra spaces after the JSON
// (the official writer pads to 8 bytes; 0 or odd values make misaligned data).
inline std::vector<std::byte> make_safetensors(const std::vector<StTensor>& tensors,
                                               size_t header_pad = 0,
                                               const std::string& metadata_json = "") {
  std::string header = "{";
  if (!metadata_json.empty()) header += fmt::format(R"("__metadata__":{},)", metadata_json);
  size_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const StTensor& t = tensors[i];
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); ++d)
      shape += fmt::format("{}{}", d ? "," : "", t.shape[d]);
    header += fmt::format(R"({}"{}":{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}})",
                          i ? "," : "", t.name, t.dtype, shape, offset, offset + t.data.size());
    offset += t.data.size();
  }
  header += "}";
  header.append(header_pad, ' ');
  std::vector<std::byte> out(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  for (const StTensor& t : tensors) out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

// Same bytes with the header replaced by `header` verbatim (for hostile headers).
inline std::vector<std::byte> raw_safetensors(const std::string& header, size_t data_bytes,
                                              uint64_t length_field) {
  std::vector<std::byte> out(8);
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<std::byte>((length_field >> (8 * i)) & 0xff);
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.resize(out.size() + data_bytes, std::byte{0x3f});
  return out;
}
inline std::vector<std::byte> raw_safetensors(const std::string& header, size_t data_bytes) {
  return raw_safetensors(header, data_bytes, header.size());
}

inline std::vector<float> view_floats(const HostTensorView& v) {
  std::vector<float> out(v.nbytes / sizeof(float));
  std::memcpy(out.data(), v.data, out.size() * sizeof(float));
  return out;
}

}  // namespace torchless::test
