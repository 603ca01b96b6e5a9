#pragma once
// One safetensors file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
// The file is memory-mapped and tensors are views into the mapping. Every header is checked
// before anything is read: bad JSON, lengths or offsets outside the file, reversed or
// overlapping ranges, sizes that disagree with shape x dtype, duplicate names -> Error.
// Spec: https://github.com/huggingface/safetensors (README, "Format").
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "torchless/core/mapped_file.h"
#include "torchless/core/tensor.h"

namespace torchless {

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype_name;      // as the header writes it: "F32", "BF16", "I64", ...
  std::optional<DType> dtype;  // set for the types torchless computes with (F32, F16, BF16)
  Shape shape;
  size_t offset = 0;  // from the start of the data section
  size_t nbytes = 0;
  const std::byte* data = nullptr;  // inside the mapping
  // Throws Error naming the tensor when its dtype is not F32, F16 or BF16.
  HostTensorView view() const;
};

class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  // Parses bytes owned by the caller (tests, fuzzing); `bytes` must outlive the object.
  // `label` names the source in error messages.
  static std::shared_ptr<SafetensorsFile> parse(std::span<const std::byte> bytes,
                                                std::string label = "<memory>");

  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  const SafetensorsTensorInfo* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t data_offset() const { return data_offset_; }
  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }
  const std::string& label() const { return label_; }

 private:
  SafetensorsFile() = default;
  void parse_all();

  std::shared_ptr<MappedFile> mapping_;
  std::span<const std::byte> bytes_;
  std::string label_;
  size_t data_offset_ = 0;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace torchless
