#include "torchless/engine/weight_prefetch.h"

#include "torchless/core/load_progress.h"
#include "torchless/core/mapped_file.h"
#include "torchless/core/system_memory.h"

namespace torchless {

uint64_t prefetch_weights(const WeightStore& weights, const PrefetchOptions& options) {
  auto skipped = [&](const std::string& name, const HostTensorView& view) {
    return options.skip && options.skip(name, view);
  };
  uint64_t total = 0;
  for (const auto& [name, view] : weights.all()) {
    if (!skipped(name, view)) total += view.nbytes;
  }
  const uint64_t ram = physical_memory_bytes();
  if (total == 0 || (ram != 0 && total > ram / 2)) return 0;
  LoadProgress bar(options.show_progress && total >= options.min_bytes_for_progress, total);
  const size_t page = system_page_size();
  uint64_t done = 0;
  volatile unsigned char sink = 0;
  for (const auto& [name, view] : weights.all()) {
    if (skipped(name, view)) continue;
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
