#pragma once
// A read-only memory mapping of a whole file. Weights are views into these bytes, never copies.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>

namespace torchless {

class MappedFile {
 public:
  // Throws Error naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, const std::byte* data, size_t size);
  std::filesystem::path path_;
  const std::byte* data_;
  size_t size_;
};

// The system page size (16 KiB on Apple Silicon, usually 4 KiB on x86-64); never assume it.
size_t system_page_size();

}  // namespace torchless
