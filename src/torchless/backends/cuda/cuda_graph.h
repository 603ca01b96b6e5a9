#pragma once
// The decode step as one CUDA graph (Backend::begin_step/end_step): the step's ops are captured
// from the backend's stream, and the executable graph of the previous step is updated in place
// with cudaGraphExecUpdate (kernel arguments such as the position change every token; the
// topology does not), instantiated afresh only when the update is refused. One launch then
// replays the step, instead of one launch per op.
#include <cstdint>

#include <cuda_runtime.h>

namespace torchless::cuda {

class StepGraph {
 public:
  StepGraph() = default;
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Starts capturing the work enqueued on `stream` (relaxed mode: this thread may still call
  // cudaMalloc, which the scratch growth of a step may need).
  void begin(cudaStream_t stream);
  // Ends the capture, updates or re-instantiates the executable graph, and launches it.
  void end(cudaStream_t stream);
  // Ends a capture that an error interrupted, discarding what was recorded.
  void cancel(cudaStream_t stream) noexcept;
  bool capturing() const { return capturing_; }

  int64_t launches() const { return launches_; }
  int64_t instantiations() const { return instantiations_; }
  // Whether updates keep being refused (the steps' topology changes every time), so that each
  // step pays for a capture and a new executable graph: running op by op is then cheaper.
  bool futile() const { return refused_in_a_row_ >= 3; }

 private:
  cudaGraphExec_t exec_ = nullptr;
  bool capturing_ = false;
  int64_t launches_ = 0;
  int64_t instantiations_ = 0;
  int refused_in_a_row_ = 0;
};

}  // namespace torchless::cuda
