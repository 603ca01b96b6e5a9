// Whole-file weight views: a mapped weight file becomes one zero-copy buffer when it fits the
// device's maxBufferLength, else overlapping views such that every tensor lies wholly inside
// one. Uses the emulated device with an artificially small maxBufferLength and the real
// system page size.
#include <random>

#include "metal_test_support.h"
#include "torchless/backends/metal/metal_weight_views.h"
#include "torchless/core/error.h"
#include "torchless/core/mapped_file.h"

namespace torchless::metal_test {
namespace {

using metal::plan_weight_views;
using metal::WeightViewRange;

// Page-aligned host memory standing in for a mapped file.
class PageAlignedRegion {
 public:
  explicit PageAlignedRegion(size_t length) : storage_(length + system_page_size()) {
    const size_t page = system_page_size();
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    begin_ = storage_.data() + ((address + page - 1) / page * page - address);
    length_ = length;
    std::mt19937 rng(17);
    for (size_t i = 0; i < length; ++i) begin_[i] = static_cast<std::byte>(rng());
  }
  std::byte* data() { return begin_; }
  std::span<const std::byte> span() const { return {begin_, length_}; }

 private:
  std::vector<std::byte> storage_;
  std::byte* begin_;
  size_t length_;
};

// Tensors laid back to back at awkward sizes (up to `largest`) and 32-byte alignment, as in
// a GGUF file.
std::vector<std::pair<size_t, size_t>> tensor_layout(size_t length, size_t largest, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(1, largest);
  std::vector<std::pair<size_t, size_t>> tensors;
  for (size_t at = 96;;) {  // a header first
    const size_t n = size(rng);
    if (at + n > length) break;
    tensors.emplace_back(at, n);
    at = (at + n + 31) / 32 * 32;
  }
  return tensors;
}

TEST(MetalWeightViewsTest, SmallFileIsOneView) {
  for (const size_t page : {size_t{4096}, size_t{16384}}) {
    const uintptr_t address = 7 * page + 100;
    const auto views = plan_weight_views(address, 5 * page, page, 6 * page, page);
    ASSERT_EQ(views.size(), 1u);
    EXPECT_EQ(views[0].begin, 7 * page);
    EXPECT_EQ(views[0].end, 13 * page);  // rounded out: 100 + 5 pages spills into a 6th
  }
}

TEST(MetalWeightViewsTest, LargeFileViewsOverlapByTheLargestTensor) {
  for (const size_t page : {size_t{4096}, size_t{16384}}) {
    const size_t largest = 2 * page + 777;
    const uint64_t max_length = 9 * page + 123;  // not a whole number of pages
    const uintptr_t address = 3 * page;
    const size_t length = 61 * page + 5;
    const auto views = plan_weight_views(address, length, largest, max_length, page);
    ASSERT_GT(views.size(), 1u);
    EXPECT_EQ(views.front().begin, address);
    EXPECT_EQ(views.back().end, address + 62 * page);
    const uint64_t step = 9 * page - (3 * page + page);
    for (size_t i = 0; i < views.size(); ++i) {
      EXPECT_EQ(views[i].begin % page, 0u);
      EXPECT_EQ(views[i].end % page, 0u);
      EXPECT_LE(views[i].end - views[i].begin, max_length);
      if (i > 0) {
        EXPECT_EQ(views[i].begin - views[i - 1].begin, step);
      }
    }
    EXPECT_THROW(plan_weight_views(address, length, 8 * page, max_length, page), Error);
  }
}

TEST(MetalWeightViewsTest, EveryTensorBindsInsideOneView) {
  const size_t page = system_page_size();
  const size_t length = 47 * page + 311;
  const size_t largest = 2 * page + 555;
  PageAlignedRegion region(length);
  metal::EmulatedMetalOptions options;
  options.max_buffer_length = 8 * page + 64;
  auto device = metal::create_emulated_metal_device(options);
  auto& emulated_device = dynamic_cast<metal::EmulatedMetalDevice&>(*device);
  metal::MetalWeightViews views(*device, region.span(), largest);
  ASSERT_GT(views.ranges().size(), 1u);
  std::vector<std::shared_ptr<metal::MetalBuffer>> keep;
  const auto tensors = tensor_layout(length, largest, 5);
  ASSERT_GT(tensors.size(), 20u);
  for (const auto& [at, n] : tensors) {
    const std::byte* data = region.data() + at;
    ASSERT_TRUE(views.contains(data, n));
    size_t offset = 0;
    auto buffer = views.bind(data, n, offset);
    ASSERT_LE(offset + n, buffer->length()) << "tensor at " << at;
    ASSERT_EQ(buffer->contents() + offset, data) << "tensor at " << at;
    ASSERT_LE(buffer->length(), options.max_buffer_length);
    keep.push_back(std::move(buffer));
  }
  // One wrap per view, however many tensors.
  EXPECT_EQ(emulated_device.counters().buffers_wrapped, views.ranges().size());
  EXPECT_FALSE(views.contains(region.data() + length - 10, 11));
  size_t offset = 0;
  EXPECT_THROW(views.bind(region.data(), largest + 1, offset), Error);
}

TEST(MetalWeightViewsTest, BackendMatmulsFromSplitViewsMatchCopies) {
  const size_t page = system_page_size();
  const int64_t rows = 37, cols = 96;
  const DType dtype = DType::Q8_0;
  const size_t nbytes = dtype_row_bytes(dtype, cols) * rows;
  metal::EmulatedMetalOptions options;
  options.simd_width = 32;
  options.max_buffer_length = ((nbytes + page - 1) / page + 1) * page + 2 * page;
  // Weights back to back at odd offsets, in a "file" over twice maxBufferLength.
  const size_t stride = (nbytes + 77 + 31) / 32 * 32;
  const int n_weights = static_cast<int>(5 * options.max_buffer_length / 2 / stride) + 1;
  const size_t length = 64 + stride * size_t(n_weights);
  ASSERT_GT(length, 2 * options.max_buffer_length);
  PageAlignedRegion region(length);
  std::vector<std::vector<float>> values;
  for (int i = 0; i < n_weights; ++i) {
    values.push_back(random_floats(size_t(rows * cols), 40 + i, 0.3f));
    const auto bytes = encode(values.back(), rows, cols, dtype);
    std::memcpy(region.data() + 64 + stride * size_t(i), bytes.data(), bytes.size());
  }
  MetalBackend mapped(metal::create_emulated_metal_device(options), "metal-emulated");
  mapped.map_host_region(region.span(), nbytes);
  auto reference = make_backend(32);
  const auto x_values = random_floats(size_t(cols), 99);
  const Tensor x_mapped = upload_f32(mapped, x_values, Shape{cols});
  const Tensor x_ref = upload_f32(*reference, x_values, Shape{cols});
  std::vector<Tensor> weights;
  for (int i = 0; i < n_weights; ++i) {
    const std::byte* data = region.data() + 64 + stride * size_t(i);
    weights.push_back(mapped.to_device({Shape{rows, cols}, dtype, data, nbytes}));
    const Tensor w_ref = upload_bytes(*reference, {data, data + nbytes}, Shape{rows, cols}, dtype);
    Tensor y_mapped = mapped.alloc(Shape{rows}, DType::F32);
    Tensor y_ref = reference->alloc(Shape{rows}, DType::F32);
    mapped.matmul_vec(weights.back(), x_mapped, y_mapped);
    reference->matmul_vec(w_ref, x_ref, y_ref);
    const auto a = mapped.to_host_f32(y_mapped);
    const auto b = reference->to_host_f32(y_ref);
    for (size_t r = 0; r < a.size(); ++r) ASSERT_EQ(a[r], b[r]) << "weight " << i << " row " << r;
  }
  const uint64_t wrapped = emulated(mapped).counters().buffers_wrapped;
  EXPECT_GT(wrapped, 1u);
  EXPECT_LT(wrapped, uint64_t(n_weights));
}

}  // namespace
}  // namespace torchless::metal_test
