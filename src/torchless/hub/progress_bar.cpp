#include "torchless/hub/progress_bar.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <unistd.h>

#include "torchless/hub/file_selection.h"

namespace torchless::hub {

ProgressBar::ProgressBar(std::string label, uint64_t total, uint64_t already)
    : label_(std::move(label)),
      total_(total),
      start_bytes_(already),
      last_done_(already),
      terminal_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(uint64_t done) {
  last_done_ = done;
  if (!terminal_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::draw(uint64_t done) {
  constexpr int kWidth = 30;
  const double fraction =
      total_ ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 0.0;
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done - start_bytes_) / seconds : 0.0;
  fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {} / {} {}/s\x1b[K", label_, std::string(filled, '='),
             std::string(kWidth - filled, ' '), fraction * 100, format_bytes(done),
             format_bytes(total_), format_bytes(static_cast<uint64_t>(rate)));
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (terminal_) {
    draw(last_done_);
    fmt::print(stderr, "\n");
  } else {
    fmt::print(stderr, "downloaded {} ({})\n", label_, format_bytes(last_done_));
  }
}

}  // namespace torchless::hub
