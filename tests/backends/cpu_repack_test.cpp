// Q4_K weight matrices repacked at load by the CPU backend (cpu_repack.h): the kernels that
// read the repacked layout must give the plain layout's bits (the mat-vec and every batch
// size, so batch invariance carries over), stay within the float64 reference's bound at row
// counts that leave a partial group of 16, and to_host must give back the file's bytes. A
// source inside a file mapping is released after repacking and the file stays intact. The
// matrices are repacked on every CPU (repack_matrix): where the VNNI kernels run they read the
// layout in place, elsewhere each target unpacks it per group of 16 rows.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <hwy/targets.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/backends/cpu/cpu_backend.h"
#include "torchless/backends/cpu/cpu_repack.h"
#include "torchless/core/error.h"
#include "torchless/core/half.h"
#include "torchless/core/quant.h"

namespace torchless {
namespace {

// Q4_K blocks of random bytes (every code, 6-bit scale and min), with realistic F16 scales.
std::vector<std::byte> random_q4k(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(1e-4f, 2e-3f);
  std::vector<std::byte> bytes(dtype_row_bytes(DType::Q4_K, cols) * static_cast<size_t>(rows));
  for (std::byte& b : bytes) b = static_cast<std::byte>(byte(rng));
  for (size_t b = 0; b < bytes.size(); b += sizeof(BlockQ4_K)) {
    auto* block = reinterpret_cast<BlockQ4_K*>(bytes.data() + b);
    block->d = fp32_to_fp16(scale(rng));
    block->dmin = fp32_to_fp16(scale(rng));
  }
  return bytes;
}

std::vector<float> dequantized(const std::vector<std::byte>& bytes, int64_t rows, int64_t cols) {
  std::vector<float> values(static_cast<size_t>(rows * cols));
  const size_t row_bytes = dtype_row_bytes(DType::Q4_K, cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(DType::Q4_K, bytes.data() + static_cast<size_t>(r) * row_bytes,
                   values.data() + r * cols, cols);
  }
  return values;
}

// The first output whose bits differ, or "".
std::string first_difference(const std::vector<float>& got, const std::vector<float>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return fmt::format("output {}: repacked {:.9g} vs plain {:.9g}", i, got[i], want[i]);
    }
  }
  return "";
}

#if defined(__linux__)
// The resident kilobytes of the mapping that starts at `start` (/proc/self/smaps).
int64_t mapping_rss_kb(const void* start) {
  std::ifstream in("/proc/self/smaps");
  const std::string head = fmt::format("{:x}-", reinterpret_cast<uintptr_t>(start));
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind(head, 0) == 0) inside = true;
    if (inside && line.rfind("Rss:", 0) == 0) return std::stoll(line.substr(4));
  }
  return -1;
}
#endif

HostTensorView view_of(const std::vector<std::byte>& bytes, int64_t rows, int64_t cols) {
  return HostTensorView{Shape{rows, cols}, DType::Q4_K, bytes.data(), bytes.size()};
}

TEST(CpuRepack, Q4KGivesThePlainLayoutsBitsAndMatchesTheFloat64Reference) {
  for (int threads : {1, 3}) {
    BackendOptions options;
    options.threads = threads;
    CpuBackend backend(options);
    for (int64_t cols : {256, 768, 4352}) {
      for (int64_t rows : {1, 15, 17, 33, 70}) {
        const uint64_t seed = static_cast<uint64_t>(rows * 7919 + cols * 31 + threads);
        const auto bytes = random_q4k(rows, cols, seed);
        const auto values = dequantized(bytes, rows, cols);
        const Tensor plain = backend.to_device(view_of(bytes, rows, cols));
        const Tensor packed = backend.repack_matrix(view_of(bytes, rows, cols), false);
        ASSERT_EQ(packed.layout, WeightLayout::CpuRows16);
        EXPECT_EQ(
            backend.to_device_matrix(view_of(bytes, rows, cols), false).layout,
            cpu::can_repack(DType::Q4_K, cols) ? WeightLayout::CpuRows16 : WeightLayout::Plain);
        for (int64_t n : {1, 2, 3, 4, 5, 7, 9, 33}) {
          const std::string what = fmt::format("Q4_K W[{}, {}] x {} tokens, {} threads (seed {})",
                                               rows, cols, n, threads, seed);
          const auto x = conformance::random_floats(static_cast<size_t>(n * cols), seed + 1);
          const auto got = conformance::run_matmul(backend, packed, x, n);
          EXPECT_EQ(first_difference(got, conformance::run_matmul(backend, plain, x, n)), "")
              << what;
          conformance::expect_close(got, reference::matmul(values, x, rows, cols, n),
                                    conformance::matmul_tolerance(values, x, rows, cols, n, kQK_K),
                                    what);
        }
      }
    }
  }
}

TEST(CpuRepack, ToHostGivesBackThePlainBytes) {
  CpuBackend backend;
  for (int64_t rows : {1, 16, 37}) {
    const auto bytes = random_q4k(rows, 512, 5 + static_cast<uint64_t>(rows));
    const Tensor packed = backend.repack_matrix(view_of(bytes, rows, 512), false);
    ASSERT_EQ(packed.layout, WeightLayout::CpuRows16);
    std::vector<std::byte> back(bytes.size());
    backend.to_host(packed, back);
    EXPECT_EQ(back, bytes) << rows << " rows";
  }
}

// Under every instruction set (also one switched to after loading), a repacked tensor gives
// that target's plain results.
TEST(CpuRepack, EveryInstructionSetReadsTheRepackedLayout) {
  CpuBackend backend;
  const int64_t rows = 21, cols = 512;
  const auto bytes = random_q4k(rows, cols, 77);
  const Tensor plain = backend.to_device(view_of(bytes, rows, cols));
  const Tensor packed = backend.repack_matrix(view_of(bytes, rows, cols), false);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t n : {1, 6}) {
      const auto x = conformance::random_floats(static_cast<size_t>(n * cols), 78);
      EXPECT_EQ(first_difference(conformance::run_matmul(backend, packed, x, n),
                                 conformance::run_matmul(backend, plain, x, n)),
                "")
          << hwy::TargetName(target) << ", " << n << " tokens";
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(CpuRepack, PlainOnlyOperationsRefuseARepackedTensor) {
  CpuBackend backend;
  const auto bytes = random_q4k(32, 256, 3);
  const Tensor packed = backend.repack_matrix(view_of(bytes, 32, 256), false);
  EXPECT_ANY_THROW((void)packed.slice_rows(0, 16));
  EXPECT_ANY_THROW((void)packed.reshape(Shape{16, 512}));
  const std::vector<int32_t> id = {3};
  Tensor ids = backend.alloc(Shape{1}, DType::I32);
  backend.upload(std::as_bytes(std::span(id)), ids);
  Tensor out = backend.alloc(Shape{1, 256}, DType::F32);
  EXPECT_ANY_THROW(backend.embedding(packed, ids, out));
}

TEST(CpuRepack, AnUnknownRepackSettingIsRefused) {
  ASSERT_EQ(::setenv("TORCHLESS_CPU_REPACK", "yes", 1), 0);
  CpuBackend backend;
  const auto bytes = random_q4k(16, 256, 5);
  EXPECT_THROW((void)backend.to_device_matrix(view_of(bytes, 16, 256), false), Error);
  ASSERT_EQ(::unsetenv("TORCHLESS_CPU_REPACK"), 0);
  EXPECT_NO_THROW((void)backend.to_device_matrix(view_of(bytes, 16, 256), false));
}

// A source in a read-only file mapping: after repacking, its pages are released, and both the
// repacked tensor and the mapping (read again from the file) still hold the weights.
TEST(CpuRepack, MappedSourcePagesAreReleasedAndTheFileStaysIntact) {
  const int64_t rows = 64, cols = 2048;
  const auto bytes = random_q4k(rows, cols, 12);
  const auto path = std::filesystem::temp_directory_path() /
                    fmt::format("torchless_repack_{}.bin", static_cast<long>(::getpid()));
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  ASSERT_NE(map, MAP_FAILED);
  const auto* mapped = static_cast<const std::byte*>(map);
  CpuBackend backend;
  const Tensor packed = backend.repack_matrix(
      HostTensorView{Shape{rows, cols}, DType::Q4_K, mapped, bytes.size()}, true);
  ASSERT_EQ(packed.layout, WeightLayout::CpuRows16);
#if defined(__linux__)
  // Repacking read every page; now none is in this process's resident set.
  EXPECT_EQ(mapping_rss_kb(map), 0);
#endif
  EXPECT_EQ(std::memcmp(mapped, bytes.data(), bytes.size()), 0);
  std::vector<std::byte> back(bytes.size());
  backend.to_host(packed, back);
  EXPECT_EQ(back, bytes);
  ::munmap(map, bytes.size());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace torchless
