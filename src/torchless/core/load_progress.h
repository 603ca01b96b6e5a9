#pragma once
// The "loading weights" bar on stderr: the page-touching prefetch of mapped weights
// (engine/weight_prefetch.h) draws it, and so does a GPU backend copying the weights into device
// memory instead. Redrawn only when the whole percentage changes.
#include <cstdint>

namespace torchless {

class LoadProgress {
 public:
  LoadProgress(bool enabled, uint64_t total) : enabled_(enabled), total_(total) {}
  ~LoadProgress() { finish(); }
  LoadProgress(const LoadProgress&) = delete;
  LoadProgress& operator=(const LoadProgress&) = delete;

  void update(uint64_t done);
  // Ends the line of a drawn bar (once); later updates draw nothing.
  void finish();

 private:
  bool enabled_;
  uint64_t total_;
  int drawn_ = -1;
};

}  // namespace torchless
