#include "torchless/backends/metal/metal_command_recorder.h"

#include <charconv>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "torchless/core/error.h"

namespace torchless::metal {
namespace {

uint64_t limit_from_env(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  const std::string_view s(text);
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value == 0) {
    fail("{}='{}' is not a positive integer", name, s);
  }
  return value;
}

uint64_t thread_count(MetalSize groups, MetalSize threads) {
  return uint64_t{groups.x} * groups.y * groups.z * threads.x * threads.y * threads.z;
}

}  // namespace

RecorderLimits RecorderLimits::from_environment() {
  RecorderLimits limits;
  limits.max_dispatches =
      limit_from_env("TORCHLESS_METAL_MAX_DISPATCHES_PER_BUFFER", kDefaultMaxDispatches);
  limits.max_threads = limit_from_env("TORCHLESS_METAL_MAX_THREADS_PER_BUFFER", kDefaultMaxThreads);
  return limits;
}

MetalCommandRecorder::~MetalCommandRecorder() {
  // Submitted work must finish before the buffers it binds can go away.
  if (pending()) {
    try {
      flush();
    } catch (const std::exception&) {
      // Destructors must not throw; the error was the caller's to observe via synchronize().
    }
  }
}

MetalCommandBuffer& MetalCommandRecorder::current() {
  if (!current_) current_ = device_.new_command_buffer();
  return *current_;
}

bool MetalCommandRecorder::needs_barrier(std::span<const BufferArg> buffers) const {
  for (const BufferArg& arg : buffers) {
    const Range range{arg.buffer.get(), arg.offset, arg.offset + arg.length};
    for (const Range& w : writes_) {
      if (w.overlaps(range)) return true;
    }
    if (arg.written) {
      for (const Range& r : reads_) {
        if (r.overlaps(range)) return true;
      }
    }
  }
  return false;
}

void MetalCommandRecorder::split_if_full(uint64_t threads) {
  if (!current_ || current_dispatches_ == 0) return;
  if (current_dispatches_ < limits_.max_dispatches &&
      current_threads_ + threads <= limits_.max_threads) {
    return;
  }
  // Errors of this buffer surface at flush(), which waits for it.
  current_->commit();
  in_flight_.push_back(std::move(current_));
  ++stats_.command_buffers;
  ++stats_.early_commits;
  current_dispatches_ = 0;
  current_threads_ = 0;
  reads_.clear();
  writes_.clear();
}

void MetalCommandRecorder::dispatch(const MetalPipeline& pipeline, const void* args,
                                    size_t args_length, std::span<const BufferArg> buffers,
                                    size_t threadgroup_memory, MetalSize groups,
                                    MetalSize threads) {
  const uint64_t launched = thread_count(groups, threads);
  split_if_full(launched);
  MetalCommandBuffer& cb = current();
  if (needs_barrier(buffers)) {
    cb.memory_barrier();
    ++stats_.barriers;
    reads_.clear();
    writes_.clear();
  }
  cb.set_pipeline(pipeline);
  cb.set_bytes(args, args_length, 0);
  uint32_t index = 1;
  for (const BufferArg& arg : buffers) {
    cb.set_buffer(*arg.buffer, arg.offset, arg.length, index++);
    const Range range{arg.buffer.get(), arg.offset, arg.offset + arg.length};
    (arg.written ? writes_ : reads_).push_back(range);
    if (used_.insert(arg.buffer.get()).second) retained_.push_back(arg.buffer);
    if (arg.written) {
      written_.insert(arg.buffer.get());
      if (!device_.info().unified_memory) host_stale_.insert(arg.buffer.get());
    }
  }
  if (threadgroup_memory != 0) cb.set_threadgroup_memory(threadgroup_memory, 0);
  cb.dispatch_threadgroups(groups, threads);
  ++stats_.dispatches;
  stats_.threads += launched;
  ++current_dispatches_;
  current_threads_ += launched;
}

void MetalCommandRecorder::prepare_host_read(const MetalBuffer& buffer) {
  // The blit must follow the write, so it goes in the newest buffer (a new one if the last
  // was already committed or waited for).
  // With unified memory the CPU already sees the GPU's writes: nothing to record.
  if (host_stale_.erase(&buffer) != 0) current().synchronize_for_host(buffer);
}

void MetalCommandRecorder::flush() {
  if (current_) {
    current_->commit();
    in_flight_.push_back(std::move(current_));
    ++stats_.command_buffers;
  }
  std::vector<std::unique_ptr<MetalCommandBuffer>> committed = std::move(in_flight_);
  in_flight_.clear();
  current_dispatches_ = 0;
  current_threads_ = 0;
  reads_.clear();
  writes_.clear();
  used_.clear();
  written_.clear();
  // Wait for all of them even after a failure: the buffers they bind are released below.
  std::exception_ptr first_error;
  for (const auto& cb : committed) {
    try {
      cb->wait();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  retained_.clear();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace torchless::metal
