#include "torchless/formats/safetensors_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "torchless/core/error.h"

namespace torchless {
namespace {

using nlohmann::json;

struct SafetensorsDType {
  std::string_view name;
  size_t bytes;
  std::optional<DType> dtype;
};

// Every dtype the safetensors format defines, so that a file holding e.g. an I64 buffer still
// parses and only a use of that tensor fails.
constexpr std::array kDTypes = {
    SafetensorsDType{"F32", 4, DType::F32},       SafetensorsDType{"F16", 2, DType::F16},
    SafetensorsDType{"BF16", 2, DType::BF16},     SafetensorsDType{"F64", 8, std::nullopt},
    SafetensorsDType{"I64", 8, std::nullopt},     SafetensorsDType{"U64", 8, std::nullopt},
    SafetensorsDType{"I32", 4, std::nullopt},     SafetensorsDType{"U32", 4, std::nullopt},
    SafetensorsDType{"I16", 2, std::nullopt},     SafetensorsDType{"U16", 2, std::nullopt},
    SafetensorsDType{"I8", 1, std::nullopt},      SafetensorsDType{"U8", 1, std::nullopt},
    SafetensorsDType{"BOOL", 1, std::nullopt},    SafetensorsDType{"F8_E4M3", 1, std::nullopt},
    SafetensorsDType{"F8_E5M2", 1, std::nullopt},
};

const SafetensorsDType* find_dtype(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

Shape make_shape(const std::vector<int64_t>& dims) {
  switch (dims.size()) {
    case 0:
      return Shape{};
    case 1:
      return Shape{dims[0]};
    case 2:
      return Shape{dims[0], dims[1]};
    case 3:
      return Shape{dims[0], dims[1], dims[2]};
    case 4:
      return Shape{dims[0], dims[1], dims[2], dims[3]};
    default:
      fail("rank {} exceeds the maximum {}", dims.size(), Shape::kMaxRank);
  }
}

// Parses the header JSON, rejecting duplicate top-level keys (nlohmann keeps the last one
// silently, which would hide a second tensor of the same name).
json parse_header_json(std::string_view text, const std::string& label) {
  std::set<std::string> keys;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail("{}: the safetensors header is not valid JSON: {}", label, e.what());
  }
  if (!duplicate.empty())
    fail("{}: tensor '{}' appears twice in the safetensors header", label, duplicate);
  if (!header.is_object()) fail("{}: the safetensors header is not a JSON object", label);
  return header;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

std::vector<int64_t> parse_dims(const json& shape, const std::string& where) {
  if (!shape.is_array()) fail("{}: 'shape' is not an array", where);
  std::vector<int64_t> dims;
  int64_t numel = 1;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) fail("{}: shape entries must be non-negative integers", where);
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: dimension {} is too large", where, v);
    const auto dim = static_cast<int64_t>(v);
    if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / 8 / dim) {
      fail("{}: shape {} has too many elements", where, shape.dump());
    }
    numel *= dim;
    dims.push_back(dim);
  }
  return dims;
}

std::pair<uint64_t, uint64_t> parse_offsets(const json& offsets, const std::string& where) {
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    fail("{}: 'data_offsets' must be two non-negative integers", where);
  }
  return {offsets[0].get<uint64_t>(), offsets[1].get<uint64_t>()};
}

SafetensorsTensorInfo parse_tensor(const std::string& name, const json& entry, size_t data_size,
                                   const std::string& label) {
  const std::string where = fmt::format("{}: tensor '{}'", label, name);
  if (!entry.is_object()) fail("{}: entry is not a JSON object", where);
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) fail("{}: missing '{}'", where, key);
  }
  if (!entry["dtype"].is_string()) fail("{}: 'dtype' is not a string", where);
  SafetensorsTensorInfo info;
  info.name = name;
  info.dtype_name = entry["dtype"].get<std::string>();
  const SafetensorsDType* dtype = find_dtype(info.dtype_name);
  if (!dtype) fail("{}: unknown dtype '{}'", where, info.dtype_name);
  info.dtype = dtype->dtype;

  const std::vector<int64_t> dims = parse_dims(entry["shape"], where);
  try {
    info.shape = make_shape(dims);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());
  }
  const auto [begin, end] = parse_offsets(entry["data_offsets"], where);
  if (begin > end) fail("{}: data_offsets [{}, {}] are reversed", where, begin, end);
  if (end > data_size) {
    fail("{}: data_offsets [{}, {}] reach past the end of the data ({} bytes)", where, begin, end,
         data_size);
  }
  const uint64_t expected = static_cast<uint64_t>(info.shape.numel()) * dtype->bytes;
  if (end - begin != expected) {
    fail("{}: shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", where,
         info.shape.str(), info.dtype_name, expected, begin, end, end - begin);
  }
  info.offset = static_cast<size_t>(begin);
  info.nbytes = static_cast<size_t>(end - begin);
  return info;
}

void check_no_overlap(std::vector<SafetensorsTensorInfo> tensors, const std::string& label) {
  std::erase_if(tensors, [](const SafetensorsTensorInfo& t) { return t.nbytes == 0; });
  std::sort(tensors.begin(), tensors.end(),
            [](const auto& a, const auto& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < tensors.size(); ++i) {
    const auto& prev = tensors[i - 1];
    if (tensors[i].offset < prev.offset + prev.nbytes) {
      fail("{}: tensors '{}' and '{}' overlap (bytes [{}, {}) and [{}, {}))", label, prev.name,
           tensors[i].name, prev.offset, prev.offset + prev.nbytes, tensors[i].offset,
           tensors[i].offset + tensors[i].nbytes);
    }
  }
}

}  // namespace

HostTensorView SafetensorsTensorInfo::view() const {
  if (!dtype)
    fail("tensor '{}' has dtype {}; torchless reads F32, F16 and BF16 tensors", name, dtype_name);
  return {shape, *dtype, data, nbytes};
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  auto mapping = MappedFile::open(path);
  auto file = parse(mapping->bytes(), path.string());
  file->mapping_ = std::move(mapping);
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse(std::span<const std::byte> bytes,
                                                        std::string label) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->bytes_ = bytes;
  file->label_ = std::move(label);
  file->parse_all();
  return file;
}

const SafetensorsTensorInfo* SafetensorsFile::find(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void SafetensorsFile::parse_all() {
  if (bytes_.size() < 8)
    fail("{}: file of {} bytes is too short for a safetensors header", label_, bytes_.size());
  const uint64_t header_size = read_u64_le(bytes_.data());
  if (header_size > bytes_.size() - 8) {
    fail("{}: the safetensors header length {} is larger than the file ({} bytes)", label_,
         header_size, bytes_.size());
  }
  data_offset_ = 8 + static_cast<size_t>(header_size);
  const std::string_view text(reinterpret_cast<const char*>(bytes_.data() + 8),
                              static_cast<size_t>(header_size));
  const json header = parse_header_json(text, label_);
  const size_t data_size = bytes_.size() - data_offset_;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: '__metadata__' is not a JSON object", label_);
      for (const auto& [key, value] : entry.items()) {
        metadata_[key] = value.is_string() ? value.get<std::string>() : value.dump();
      }
      continue;
    }
    SafetensorsTensorInfo info = parse_tensor(name, entry, data_size, label_);
    info.data = bytes_.data() + data_offset_ + info.offset;
    tensors_.push_back(std::move(info));
  }
  check_no_overlap(tensors_, label_);
}

}  // namespace torchless
