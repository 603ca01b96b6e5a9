#include "torchless/engine/weight_prefetch.h"

#include <algorithm>
#include <cstdio>

#include "torchless/core/mapped_file.h"
#include "torchless/core/system_memory.h"

namespace torchless {
namespace {

class ProgressBar {
 public:
  ProgressBar(bool enabled, uint64_t total) : enabled_(enabled), total_(total) {}
  ~ProgressBar() {
    if (enabled_ && drawn_ >= 0) std::fprintf(stderr, "\n");
  }

  void update(uint64_t done) {
    if (!enabled_ || total_ == 0) return;
    const int percent = static_cast<int>(done * 100 / total_);
    if (percent == drawn_) return;
    drawn_ = percent;
    constexpr int kWidth = 40;
    char bar[kWidth + 1];
    const int filled = percent * kWidth / 100;
    for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
    bar[kWidth] = '\0';
    std::fprintf(stderr, "\rloading weights [%s] %3d%% %.2f/%.2f GiB", bar, percent,
                 static_cast<double>(done) / (1u << 30), static_cast<double>(total_) / (1u << 30));
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  uint64_t total_;
  int drawn_ = -1;
};

}  // namespace

uint64_t prefetch_weights(const WeightStore& weights, const PrefetchOptions& options) {
  uint64_t total = 0;
  for (const auto& [name, view] : weights.all()) total += view.nbytes;
  const uint64_t ram = physical_memory_bytes();
  if (total == 0 || (ram != 0 && total > ram / 2)) return 0;
  ProgressBar bar(options.show_progress && total >= options.min_bytes_for_progress, total);
  const size_t page = system_page_size();
  uint64_t done = 0;
  volatile unsigned char sink = 0;
  for (const auto& [name, view] : weights.all()) {
    const auto* bytes = reinterpret_cast<const volatile unsigned char*>(view.data);
    for (size_t offset = 0; offset < view.nbytes; offset += page) {
      sink = static_cast<unsigned char>(sink + bytes[offset]);
      if ((offset & ((size_t{64} << 20) - 1)) == 0) bar.update(done + offset);
    }
    done += view.nbytes;
    bar.update(done);
  }
  (void)sink;
  return done;
}

}  // namespace torchless
