#include "torchless/backends/metal/metal_command_recorder.h"

#include <exception>

namespace torchless::metal {

MetalCommandRecorder::~MetalCommandRecorder() {
  // Recorded work never submitted is dropped; submitted work must finish before the buffers
  // it binds can go away.
  if (current_) {
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

void MetalCommandRecorder::dispatch(const MetalPipeline& pipeline, const void* args,
                                    size_t args_length, std::span<const BufferArg> buffers,
                                    size_t threadgroup_memory, MetalSize groups,
                                    MetalSize threads) {
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
    if (arg.written) written_.insert(arg.buffer.get());
  }
  if (threadgroup_memory != 0) cb.set_threadgroup_memory(threadgroup_memory, 0);
  cb.dispatch_threadgroups(groups, threads);
  ++stats_.dispatches;
}

void MetalCommandRecorder::prepare_host_read(const MetalBuffer& buffer) {
  if (current_ && uses(buffer)) current_->synchronize_for_host(buffer);
}

void MetalCommandRecorder::flush() {
  if (!current_) return;
  std::unique_ptr<MetalCommandBuffer> cb = std::move(current_);
  reads_.clear();
  writes_.clear();
  used_.clear();
  written_.clear();
  ++stats_.command_buffers;
  cb->commit();
  try {
    cb->wait();
  } catch (...) {
    retained_.clear();
    throw;
  }
  retained_.clear();
}

}  // namespace torchless::metal
