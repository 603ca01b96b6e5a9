#pragma once
// A one-line download progress bar on stderr, drawn only when stderr is a terminal (logs and
// pipes get one line per finished file instead).
#include <chrono>
#include <cstdint>
#include <string>

namespace torchless::hub {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, uint64_t already);
  void update(uint64_t done);  // bytes of the whole file so far; redraws at most 10 times a second
  void finish();               // ends the line (or prints the summary line)

 private:
  void draw(uint64_t done);

  std::string label_;
  uint64_t total_ = 0;
  uint64_t start_bytes_ = 0;
  uint64_t last_done_ = 0;
  bool terminal_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace torchless::hub
