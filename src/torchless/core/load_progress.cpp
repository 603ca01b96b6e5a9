#include "torchless/core/load_progress.h"

#include <algorithm>
#include <cstdio>

namespace torchless {

void LoadProgress::update(uint64_t done) {
  if (!enabled_ || total_ == 0) return;
  done = std::min(done, total_);
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

void LoadProgress::finish() {
  if (enabled_ && drawn_ >= 0) std::fprintf(stderr, "\n");
  enabled_ = false;
}

}  // namespace torchless
