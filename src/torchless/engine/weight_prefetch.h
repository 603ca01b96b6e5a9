#pragma once
// Reads a model's mapped weights into memory once at load time, with a progress bar on a
// terminal. Weights are mapped, not read, so without this the first forward pass pays for every
// page fault (seconds for a multi-GiB model on a cold disk) and timings of the first token mix
// disk speed with compute; with it, `load` is where the disk time shows, and the user sees it.
#include <cstdint>
#include <functional>
#include <string>

#include "torchless/formats/weight_store.h"

namespace torchless {

struct PrefetchOptions {
  bool show_progress = false;                     // draw a bar on stderr
  uint64_t min_bytes_for_progress = 64ull << 20;  // small models load too fast to need one
  // Tensors not to touch: those the backend copies into its own layout at load (the CPU's
  // repacked matrices), whose mapped pages it then releases; touching them first would only
  // raise the peak resident memory.
  std::function<bool(const std::string& name, const HostTensorView& view)> skip = nullptr;
};

// Touches one byte per page of every weight but the skipped ones. Skipped when the weights exceed
// half the physical memory (they could not all stay resident; the OS pages them on demand instead).
// Returns the bytes touched.
uint64_t prefetch_weights(const WeightStore& weights, const PrefetchOptions& options);

}  // namespace torchless
