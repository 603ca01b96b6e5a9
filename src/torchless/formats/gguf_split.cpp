#include "torchless/formats/gguf_split.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include <fmt/format.h>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

namespace fs = std::filesystem;

struct SplitKeys {
  int no = 0;
  int count = 1;
  int64_t tensors = 0;
};

std::optional<SplitKeys> read_split_keys(const GgufFile& file, const fs::path& path) {
  const GgufValue* count = file.find(kGgufSplitCount);
  if (!count) return std::nullopt;
  SplitKeys keys;
  try {
    keys.count = static_cast<int>(count->as_i64());
    keys.no = static_cast<int>(file.get(kGgufSplitNo).as_i64());
    keys.tensors = file.get(kGgufSplitTensorsCount).as_i64();
  } catch (const Error& e) {
    fail("{}: split metadata: {}", path.string(), e.what());
  }
  if (keys.count < 1 || keys.count > 99999 || keys.no < 0 || keys.no >= keys.count) {
    fail("{}: split.no {} of split.count {} is out of range", path.string(), keys.no, keys.count);
  }
  return keys;
}

// The value of five decimal digits, or -1.
int five_digits(std::string_view s) {
  if (s.size() != 5 || !std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    return -1;
  }
  int value = 0;
  for (char c : s) value = value * 10 + (c - '0');
  return value;
}

}  // namespace

std::optional<GgufSplitName> parse_gguf_split_name(const std::string& path) {
  // PREFIX "-" NNNNN "-of-" NNNNN ".gguf": a fixed 20-character tail after the prefix.
  constexpr std::string_view kOf = "-of-", kExt = ".gguf";
  constexpr size_t kTail = 1 + 5 + kOf.size() + 5 + kExt.size();
  if (path.size() < kTail) return std::nullopt;
  const std::string_view tail = std::string_view(path).substr(path.size() - kTail);
  if (tail[0] != '-' || tail.substr(6, kOf.size()) != kOf || !tail.ends_with(kExt)) {
    return std::nullopt;
  }
  GgufSplitName name{path.substr(0, path.size() - kTail), five_digits(tail.substr(1, 5)),
                     five_digits(tail.substr(6 + kOf.size(), 5))};
  if (name.number < 1 || name.number > name.count) return std::nullopt;
  return name;
}

std::string gguf_split_name(const std::string& prefix, int number, int count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, number, count);
}

std::shared_ptr<GgufFile> open_gguf_model_file(const fs::path& path) {
  std::shared_ptr<GgufFile> first = GgufFile::open(path);
  const std::optional<SplitKeys> keys = read_split_keys(*first, path);
  if (!keys || keys->count == 1) return first;
  const std::optional<GgufSplitName> name = parse_gguf_split_name(path.string());
  if (keys->no != 0) {
    fail("{} is part {} of a split model of {}: give the first part{}", path.string(), keys->no + 1,
         keys->count, name ? " (" + gguf_split_name(name->prefix, 1, name->count) + ")" : "");
  }
  if (!name || name->count != keys->count) {
    fail(
        "{} is the first of {} parts of a split model but is not named like one "
        "(NAME-00001-of-{:05d}.gguf), so its other parts cannot be found",
        path.string(), keys->count, keys->count);
  }
  for (int i = 2; i <= keys->count; ++i) {
    const fs::path part_path = gguf_split_name(name->prefix, i, keys->count);
    if (!fs::exists(part_path)) {
      fail("{}: part {} of {} of this split model is missing ({})", path.string(), i, keys->count,
           part_path.string());
    }
    std::shared_ptr<GgufFile> part = GgufFile::open(part_path);
    const std::optional<SplitKeys> part_keys = read_split_keys(*part, part_path);
    if (!part_keys || part_keys->no != i - 1 || part_keys->count != keys->count) {
      fail("{}: its split metadata does not say part {} of {}", part_path.string(), i, keys->count);
    }
    first->append_split_part(std::move(part));
  }
  if (static_cast<int64_t>(first->tensors().size()) != keys->tensors) {
    fail("{}: the {} parts hold {} tensors, split.tensors.count says {}", path.string(),
         keys->count, first->tensors().size(), keys->tensors);
  }
  return first;
}

}  // namespace torchless
