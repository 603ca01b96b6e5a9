#pragma once
// GGUF (v2, v3) reader: metadata and tensor infos parsed from a memory-mapped file; tensor data
// are views into the mapping. The parser never reads outside the bytes it was given and throws
// Error naming the problem (and byte offset) for any malformed input.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "torchless/core/mapped_file.h"
#include "torchless/core/tensor.h"

namespace torchless {

enum class GgufType : uint32_t {
  UInt8 = 0,
  Int8 = 1,
  UInt16 = 2,
  Int16 = 3,
  UInt32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  UInt64 = 10,
  Int64 = 11,
  Float64 = 12,
};
std::string_view gguf_type_name(GgufType type);

struct GgufValue;
struct GgufArray {
  GgufType element_type = GgufType::UInt8;
  std::vector<GgufValue> items;
};

struct GgufValue {
  GgufType type = GgufType::UInt8;
  // Integers of every width are held as int64_t/uint64_t, floats as double.
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;

  // Conversions throw Error when the value's type does not fit (e.g. a string as an integer,
  // a negative number as unsigned).
  uint64_t as_u64() const;
  int64_t as_i64() const;
  double as_f64() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const GgufArray& as_array() const;
  std::vector<std::string> as_string_list() const;  // array of strings
  std::vector<float> as_f32_list() const;           // array of numbers
  std::vector<int64_t> as_i64_list() const;         // array of integers
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;          // row-major: reverse of the file's ne[] order
  uint64_t offset = 0;  // relative to the start of the data section
  size_t nbytes = 0;
  const std::byte* data = nullptr;  // inside the mapping
  HostTensorView view() const { return {shape, dtype, data, nbytes}; }
};

class GgufFile {
 public:
  static std::shared_ptr<GgufFile> open(const std::filesystem::path& path);
  // Parses bytes owned by the caller (tests, fuzzing); `bytes` must outlive the GgufFile.
  static std::shared_ptr<GgufFile> parse(std::span<const std::byte> bytes);

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // file offset of the data section
  size_t file_size() const { return bytes_.size(); }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  const GgufValue& get(std::string_view key) const;  // throws Error naming a missing key
  std::string get_string(std::string_view key, std::string_view fallback) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // The mapping the tensor views point into (null for parse()).
  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }

  // A split model (see gguf_split.h): the first part takes the tensors of each later part, so
  // tensors() and find_tensor() see the whole model; the parts stay alive with this file.
  // Throws Error on a tensor name already present.
  void append_split_part(std::shared_ptr<GgufFile> part);
  const std::vector<std::shared_ptr<GgufFile>>& split_parts() const { return parts_; }

 private:
  GgufFile() = default;
  void parse_all();

  std::shared_ptr<MappedFile> mapping_;
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::vector<std::shared_ptr<GgufFile>> parts_;
};

}  // namespace torchless
