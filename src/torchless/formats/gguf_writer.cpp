#include "torchless/formats/gguf_writer.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <limits>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr size_t kDefaultAlignment = 32;

class ByteSink {
 public:
  template <typename T>
  void put(T v) {
    append(&v, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  void put_bytes(std::span<const std::byte> b) { append(b.data(), b.size()); }
  void pad_to(size_t alignment) {
    out_.resize((out_.size() + alignment - 1) / alignment * alignment);
  }
  std::vector<std::byte> take() { return std::move(out_); }

 private:
  // resize + memcpy rather than insert(): g++ 12 reports a false stringop-overflow for the latter.
  void append(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }
  std::vector<std::byte> out_;
};

// The integer of `value` as T, or an Error when it is not an integer in T's range.
template <typename T>
T integer_as(const GgufValue& value) {
  if constexpr (std::is_signed_v<T>) {
    const int64_t v = value.as_i64();
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      fail("GGUF writer: value {} does not fit type {}", v, gguf_type_name(value.type));
    }
    return static_cast<T>(v);
  } else {
    const uint64_t v = value.as_u64();
    if (v > std::numeric_limits<T>::max()) {
      fail("GGUF writer: value {} does not fit type {}", v, gguf_type_name(value.type));
    }
    return static_cast<T>(v);
  }
}

void put_payload(ByteSink& out, const GgufValue& value) {
  switch (value.type) {
    case GgufType::UInt8:
      out.put(integer_as<uint8_t>(value));
      return;
    case GgufType::Int8:
      out.put(integer_as<int8_t>(value));
      return;
    case GgufType::UInt16:
      out.put(integer_as<uint16_t>(value));
      return;
    case GgufType::Int16:
      out.put(integer_as<int16_t>(value));
      return;
    case GgufType::UInt32:
      out.put(integer_as<uint32_t>(value));
      return;
    case GgufType::Int32:
      out.put(integer_as<int32_t>(value));
      return;
    case GgufType::UInt64:
      out.put(integer_as<uint64_t>(value));
      return;
    case GgufType::Int64:
      out.put(integer_as<int64_t>(value));
      return;
    case GgufType::Float32:
      out.put(static_cast<float>(value.as_f64()));
      return;
    case GgufType::Float64:
      out.put(value.as_f64());
      return;
    case GgufType::Bool:
      out.put(static_cast<uint8_t>(value.as_bool() ? 1 : 0));
      return;
    case GgufType::String:
      out.put_string(value.as_string());
      return;
    case GgufType::Array: {
      const GgufArray& array = value.as_array();
      out.put(static_cast<uint32_t>(array.element_type));
      out.put<uint64_t>(array.items.size());
      for (const GgufValue& item : array.items) {
        if (item.type != array.element_type) {
          fail("GGUF writer: array of {} holds an item of type {}",
               gguf_type_name(array.element_type), gguf_type_name(item.type));
        }
        put_payload(out, item);
      }
      return;
    }
  }
  fail("GGUF writer: unknown value type {}", static_cast<uint32_t>(value.type));
}

template <typename T>
GgufValue make(GgufType type, T v) {
  GgufValue value;
  value.type = type;
  value.value = v;
  return value;
}

template <typename T>
GgufValue make_array(GgufType element_type, const std::vector<T>& items, GgufValue (*one)(T)) {
  std::vector<GgufValue> values;
  values.reserve(items.size());
  for (const T& item : items) values.push_back(one(item));
  return gguf_array(element_type, std::move(values));
}

}  // namespace

GgufValue gguf_u8(uint8_t v) {
  return make(GgufType::UInt8, uint64_t{v});
}
GgufValue gguf_i8(int8_t v) {
  return make(GgufType::Int8, int64_t{v});
}
GgufValue gguf_u16(uint16_t v) {
  return make(GgufType::UInt16, uint64_t{v});
}
GgufValue gguf_i16(int16_t v) {
  return make(GgufType::Int16, int64_t{v});
}
GgufValue gguf_u32(uint32_t v) {
  return make(GgufType::UInt32, uint64_t{v});
}
GgufValue gguf_i32(int32_t v) {
  return make(GgufType::Int32, int64_t{v});
}
GgufValue gguf_u64(uint64_t v) {
  return make(GgufType::UInt64, v);
}
GgufValue gguf_i64(int64_t v) {
  return make(GgufType::Int64, v);
}
GgufValue gguf_f32(float v) {
  return make(GgufType::Float32, double{v});
}
GgufValue gguf_f64(double v) {
  return make(GgufType::Float64, v);
}
GgufValue gguf_bool(bool v) {
  return make(GgufType::Bool, v);
}
GgufValue gguf_string(std::string v) {
  return make(GgufType::String, std::move(v));
}

GgufValue gguf_array(GgufType element_type, std::vector<GgufValue> items) {
  return make(GgufType::Array, GgufArray{element_type, std::move(items)});
}

GgufValue gguf_string_array(const std::vector<std::string>& items) {
  return make_array<std::string>(GgufType::String, items, gguf_string);
}
GgufValue gguf_f32_array(const std::vector<float>& items) {
  return make_array<float>(GgufType::Float32, items, gguf_f32);
}
GgufValue gguf_i32_array(const std::vector<int32_t>& items) {
  return make_array<int32_t>(GgufType::Int32, items, gguf_i32);
}

void GgufWriter::set_alignment(size_t alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment) || alignment > (size_t{1} << 30)) {
    fail("GGUF writer: alignment {} is not a power of two between 1 and 2^30", alignment);
  }
  alignment_ = alignment;
}

void GgufWriter::add(std::string key, GgufValue value) {
  if (key == kAlignmentKey) {
    set_alignment(static_cast<size_t>(value.as_u64()));
    return;
  }
  for (const auto& [k, v] : metadata_) {
    if (k == key) fail("GGUF writer: duplicate metadata key '{}'", key);
  }
  ByteSink check;  // validates the value now rather than at write time
  put_payload(check, value);
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, DType dtype, const Shape& shape,
                            std::span<const std::byte> data) {
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) fail("GGUF writer: duplicate tensor name '{}'", name);
  }
  const size_t expected = dtype_row_bytes(dtype, shape.cols()) * static_cast<size_t>(shape.rows());
  if (data.size() != expected) {
    fail("GGUF writer: tensor '{}' {} {} needs {} bytes, got {}", name, dtype_name(dtype),
         shape.str(), expected, data.size());
  }
  tensors_.push_back({std::move(name), dtype, shape, {data.begin(), data.end()}});
}

void GgufWriter::add_tensor_from_f32(std::string name, DType dtype, const Shape& shape,
                                     std::span<const float> values) {
  if (static_cast<int64_t>(values.size()) != shape.numel()) {
    fail("GGUF writer: tensor '{}' {} needs {} values, got {}", name, shape.str(), shape.numel(),
         values.size());
  }
  const int64_t cols = shape.cols();
  const size_t row_bytes = dtype_row_bytes(dtype, cols);
  std::vector<std::byte> data(row_bytes * static_cast<size_t>(shape.rows()));
  for (int64_t r = 0; r < shape.rows(); ++r) {
    quantize_row(dtype, values.data() + r * cols, data.data() + static_cast<size_t>(r) * row_bytes,
                 cols);
  }
  add_tensor(std::move(name), dtype, shape, data);
}

std::vector<std::byte> GgufWriter::to_bytes() const {
  ByteSink out;
  out.put<uint32_t>(0x46554747);  // "GGUF"
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors_.size());
  const bool write_alignment = alignment_ != kDefaultAlignment;
  out.put<uint64_t>(metadata_.size() + (write_alignment ? 1 : 0));
  if (write_alignment) {
    out.put_string(kAlignmentKey);
    out.put(static_cast<uint32_t>(GgufType::UInt32));
    out.put(static_cast<uint32_t>(alignment_));
  }
  for (const auto& [key, value] : metadata_) {
    out.put_string(key);
    out.put(static_cast<uint32_t>(value.type));
    put_payload(out, value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    out.put_string(t.name);
    out.put(static_cast<uint32_t>(t.shape.rank()));
    for (int d = t.shape.rank() - 1; d >= 0; --d) out.put(static_cast<uint64_t>(t.shape[d]));
    out.put(static_cast<uint32_t>(t.dtype));
    out.put(offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad_to(alignment_);
  for (const PendingTensor& t : tensors_) {
    out.put_bytes(t.data);
    out.pad_to(alignment_);
  }
  return out.take();
}

void GgufWriter::write_file(const std::filesystem::path& path) const {
  const std::vector<std::byte> bytes = to_bytes();
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) fail("cannot create '{}'", path.string());
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  if (!file.flush()) fail("cannot write '{}'", path.string());
}

}  // namespace torchless
