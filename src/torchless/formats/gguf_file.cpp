// GGUF parser. Layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
// kv_count x (string key, u32 type, value), tensor_count x (string name, u32 n_dims, u64
// ne[n_dims], u32 ggml_type, u64 offset), padding to general.alignment, the data section. Strings
// are a u64 length and that many bytes (no terminator). Every read is bounds-checked against the
// span, and every count is checked against the bytes left before anything is allocated for it.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <variant>

#include "torchless/core/error.h"
#include "torchless/formats/gguf_file.h"

namespace torchless {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;
// Each item costs ~48 bytes in memory however small it is in the file; real vocabularies stay
// below a million entries, so this only stops hostile files from exhausting memory.
constexpr uint64_t kMaxArrayLength = uint64_t{1} << 26;
constexpr int kMaxDims = 4;

// The fewest bytes a value of each type can take in the file; bounds element counts.
uint64_t min_encoded_size(GgufType type) {
  switch (type) {
    case GgufType::UInt8:
    case GgufType::Int8:
    case GgufType::Bool:
      return 1;
    case GgufType::UInt16:
    case GgufType::Int16:
      return 2;
    case GgufType::UInt32:
    case GgufType::Int32:
    case GgufType::Float32:
      return 4;
    case GgufType::UInt64:
    case GgufType::Int64:
    case GgufType::Float64:
    case GgufType::String:  // its 8-byte length
      return 8;
    case GgufType::Array:
      return 12;
  }
  return 1;
}

class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  T read(std::string_view what) {
    require(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const size_t at = pos_;
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      fail("GGUF: {} length {} at byte offset {} exceeds the {} bytes left in the file", what, len,
           at, remaining());
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  // Checks that `count` items of at least `min_size` bytes each can fit in what is left.
  void check_count(uint64_t count, uint64_t min_size, std::string_view what, size_t at) const {
    if (count > remaining() / min_size) {
      fail("GGUF: {} {} at byte offset {} is larger than the {} bytes left in the file allow", what,
           count, at, remaining());
    }
  }

 private:
  void require(size_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(
          "GGUF: file truncated or incomplete download: reading {} at byte offset {} needs {} "
          "bytes, {} left",
          what, pos_, n, remaining());
    }
  }

  std::span<const std::byte> bytes_;
  size_t pos_ = 0;
};

GgufType read_type(Cursor& in, std::string_view what) {
  const size_t at = in.pos();
  const uint32_t raw = in.read<uint32_t>(what);
  if (raw > static_cast<uint32_t>(GgufType::Float64)) {
    fail("GGUF: unknown value type {} for {} at byte offset {}", raw, what, at);
  }
  return static_cast<GgufType>(raw);
}

GgufValue read_value(Cursor& in, GgufType type, int depth);

GgufArray read_array(Cursor& in, int depth) {
  const size_t at = in.pos();
  if (depth >= kMaxArrayDepth) {
    fail("GGUF: arrays nested deeper than {} levels at byte offset {}", kMaxArrayDepth, at);
  }
  GgufArray array;
  array.element_type = read_type(in, "array element type");
  const size_t count_at = in.pos();
  const uint64_t count = in.read<uint64_t>("array length");
  in.check_count(count, min_encoded_size(array.element_type), "array length", count_at);
  if (count > kMaxArrayLength) {
    fail("GGUF: array length {} at byte offset {} exceeds the supported maximum {}", count,
         count_at, kMaxArrayLength);
  }
  array.items.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i)
    array.items.push_back(read_value(in, array.element_type, depth + 1));
  return array;
}

template <typename T, typename Wide>
GgufValue scalar(Cursor& in, GgufType type) {
  return GgufValue{type, static_cast<Wide>(in.read<T>(gguf_type_name(type)))};
}

GgufValue read_value(Cursor& in, GgufType type, int depth) {
  switch (type) {
    case GgufType::UInt8:
      return scalar<uint8_t, uint64_t>(in, type);
    case GgufType::Int8:
      return scalar<int8_t, int64_t>(in, type);
    case GgufType::UInt16:
      return scalar<uint16_t, uint64_t>(in, type);
    case GgufType::Int16:
      return scalar<int16_t, int64_t>(in, type);
    case GgufType::UInt32:
      return scalar<uint32_t, uint64_t>(in, type);
    case GgufType::Int32:
      return scalar<int32_t, int64_t>(in, type);
    case GgufType::UInt64:
      return scalar<uint64_t, uint64_t>(in, type);
    case GgufType::Int64:
      return scalar<int64_t, int64_t>(in, type);
    case GgufType::Float32:
      return scalar<float, double>(in, type);
    case GgufType::Float64:
      return scalar<double, double>(in, type);
    case GgufType::Bool: {
      const size_t at = in.pos();
      const uint8_t b = in.read<uint8_t>("bool");
      if (b > 1) fail("GGUF: bool value {} at byte offset {} is neither 0 nor 1", b, at);
      return GgufValue{type, b == 1};
    }
    case GgufType::String:
      return GgufValue{type, in.read_string("string")};
    case GgufType::Array:
      return GgufValue{type, read_array(in, depth)};
  }
  fail("GGUF: unknown value type {}", static_cast<uint32_t>(type));
}

// a * b, or an Error naming `what` when it does not fit in int64.
int64_t checked_mul(int64_t a, int64_t b, std::string_view what, size_t at) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    fail("GGUF: {} at byte offset {} overflows 64 bits", what, at);
  }
  return r;
}

Shape shape_from_ne(const int64_t* ne, uint32_t n_dims) {
  switch (n_dims) {
    case 0:
      return Shape{};
    case 1:
      return Shape{ne[0]};
    case 2:
      return Shape{ne[1], ne[0]};
    case 3:
      return Shape{ne[2], ne[1], ne[0]};
    default:
      return Shape{ne[3], ne[2], ne[1], ne[0]};
  }
}

GgufTensorInfo read_tensor_info(Cursor& in) {
  const size_t at = in.pos();
  GgufTensorInfo info;
  info.name = in.read_string("tensor name");
  const uint32_t n_dims = in.read<uint32_t>("tensor rank");
  if (n_dims > kMaxDims) {
    fail("GGUF: tensor '{}' at byte offset {} has {} dimensions (at most {} supported)", info.name,
         at, n_dims, kMaxDims);
  }
  int64_t ne[kMaxDims] = {1, 1, 1, 1};
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const size_t dim_at = in.pos();
    const uint64_t v = in.read<uint64_t>("tensor dimension");
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail("GGUF: tensor '{}' dimension {} = {} at byte offset {} is too large", info.name, d, v,
           dim_at);
    }
    ne[d] = static_cast<int64_t>(v);
    numel = checked_mul(numel, ne[d], fmt::format("element count of tensor '{}'", info.name), at);
  }
  const size_t type_at = in.pos();
  const uint32_t type_id = in.read<uint32_t>("tensor type");
  const std::optional<DType> dtype = dtype_from_ggml(type_id);
  if (!dtype) {
    fail("GGUF: tensor '{}' has unknown type id {} at byte offset {}", info.name, type_id, type_at);
  }
  info.dtype = *dtype;
  const DTypeTraits& traits = dtype_traits(info.dtype);
  if (ne[0] % traits.block_size != 0) {
    fail(
        "GGUF: tensor '{}' (byte offset {}) has {} elements per row, not a multiple of the {} "
        "block size {}",
        info.name, at, ne[0], traits.name, traits.block_size);
  }
  const int64_t blocks = numel / traits.block_size;
  const int64_t nbytes = checked_mul(blocks, static_cast<int64_t>(traits.block_bytes),
                                     fmt::format("byte size of tensor '{}'", info.name), at);
  info.nbytes = static_cast<size_t>(nbytes);
  info.offset = in.read<uint64_t>("tensor offset");
  info.shape = shape_from_ne(ne, n_dims);
  return info;
}

}  // namespace

std::shared_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  std::shared_ptr<MappedFile> mapping = MappedFile::open(path);
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->mapping_ = mapping;
  file->bytes_ = mapping->bytes();
  try {
    file->parse_all();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path.string(), e.what()));
  }
  return file;
}

std::shared_ptr<GgufFile> GgufFile::parse(std::span<const std::byte> bytes) {
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->bytes_ = bytes;
  file->parse_all();
  return file;
}

void GgufFile::parse_all() {
  Cursor in(bytes_);
  const uint32_t magic = in.read<uint32_t>("magic");
  if (magic != kMagic) fail("GGUF: bad magic 0x{:08x} at byte offset 0 (not a GGUF file)", magic);
  version_ = in.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    const char* hint = version_ == 1                      ? " (GGUF v1 predates 64-bit counts)"
                       : __builtin_bswap32(version_) <= 3 ? " (big-endian file?)"
                                                          : "";
    fail("GGUF: unsupported version {} at byte offset 4{}; versions 2 and 3 are supported",
         version_, hint);
  }
  const size_t tensor_count_at = in.pos();
  const uint64_t tensor_count = in.read<uint64_t>("tensor count");
  const size_t kv_count_at = in.pos();
  const uint64_t kv_count = in.read<uint64_t>("metadata count");
  in.check_count(kv_count, 8 + 4 + 1, "metadata count", kv_count_at);
  in.check_count(tensor_count, 8 + 4 + 4 + 8, "tensor count", tensor_count_at);

  std::unordered_set<std::string> keys;
  metadata_.reserve(std::min<uint64_t>(kv_count, 4096));  // counts are only upper bounds
  for (uint64_t i = 0; i < kv_count; ++i) {
    const size_t at = in.pos();
    std::string key = in.read_string("metadata key");
    if (!keys.insert(key).second)
      fail("GGUF: duplicate metadata key '{}' at byte offset {}", key, at);
    const GgufType type = read_type(in, "metadata value type");
    metadata_.emplace_back(std::move(key), read_value(in, type, 0));
  }

  if (const GgufValue* align = find("general.alignment")) {
    if (!std::holds_alternative<uint64_t>(align->value) &&
        !std::holds_alternative<int64_t>(align->value)) {
      fail("GGUF: general.alignment has type {}, expected an unsigned integer",
           gguf_type_name(align->type));
    }
    const uint64_t a = align->as_u64();
    if (a == 0 || !std::has_single_bit(a) || a > (uint64_t{1} << 30)) {
      fail("GGUF: general.alignment {} is not a power of two between 1 and 2^30", a);
    }
    alignment_ = static_cast<size_t>(a);
  }

  std::unordered_set<std::string> names;
  tensors_.reserve(std::min<uint64_t>(tensor_count, 4096));
  std::vector<size_t> info_offsets;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    info_offsets.push_back(in.pos());
    GgufTensorInfo info = read_tensor_info(in);
    if (!names.insert(info.name).second) {
      fail("GGUF: duplicate tensor name '{}' at byte offset {}", info.name, info_offsets.back());
    }
    tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment. Files without tensors may
  // end before it (nothing is read from there).
  const size_t end_of_infos = in.pos();
  data_offset_ = end_of_infos + (alignment_ - end_of_infos % alignment_) % alignment_;
  if (data_offset_ > bytes_.size()) {
    if (!tensors_.empty()) {
      fail(
          "GGUF: file truncated or incomplete download: the data section would start at byte "
          "offset {} but the file "
          "has {} bytes",
          data_offset_, bytes_.size());
    }
    data_offset_ = bytes_.size();
  }
  const size_t data_size = bytes_.size() - data_offset_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensorInfo& t = tensors_[i];
    if (t.offset % alignment_ != 0) {
      fail(
          "GGUF: tensor '{}' (info at byte offset {}) has data offset {}, not a multiple of the "
          "alignment {}",
          t.name, info_offsets[i], t.offset, alignment_);
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail(
          "GGUF: tensor '{}' (info at byte offset {}) spans data bytes [{}, {}+{}) outside the "
          "{}-byte data section at file offset {} (file truncated or incomplete download?)",
          t.name, info_offsets[i], t.offset, t.offset, t.nbytes, data_size, data_offset_);
    }
    t.data = bytes_.data() + data_offset_ + t.offset;
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail("GGUF: metadata key '{}' is missing", key);
  return *v;
}

std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
  const GgufValue* v = find(key);
  return v ? v->as_string() : std::string(fallback);
}

int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const {
  const GgufValue* v = find(key);
  return v ? v->as_i64() : fallback;
}

double GgufFile::get_float(std::string_view key, double fallback) const {
  const GgufValue* v = find(key);
  return v ? v->as_f64() : fallback;
}

void GgufFile::append_split_part(std::shared_ptr<GgufFile> part) {
  for (const GgufTensorInfo& t : part->tensors()) {
    if (find_tensor(t.name))
      fail("GGUF: tensor '{}' appears in two parts of a split model", t.name);
    tensors_.push_back(t);
  }
  parts_.push_back(std::move(part));
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace torchless
