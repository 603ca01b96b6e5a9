#include "torchless/backends/cuda/cuda_graph.h"

#include "torchless/backends/cuda/cuda_memory.h"

namespace torchless::cuda {
namespace {

// Destroys a captured graph once it has been turned into the executable one.
struct GraphOwner {
  cudaGraph_t graph = nullptr;
  ~GraphOwner() {
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
};

}  // namespace

StepGraph::~StepGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
}

void StepGraph::begin(cudaStream_t stream) {
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture",
        "begin_step");
  capturing_ = true;
}

void StepGraph::end(cudaStream_t stream) {
  capturing_ = false;
  GraphOwner captured;
  check(cudaStreamEndCapture(stream, &captured.graph), "cudaStreamEndCapture", "end_step");
  if (exec_ != nullptr) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec_, captured.graph, &info) != cudaSuccess) {
      // A changed topology (e.g. a kernel whose grid or function differs): instantiate anew.
      // The refusal is an ordinary return, but it also sets the runtime's last error, which
      // the next op's launch check would report.
      cudaGetLastError();
      cudaGraphExecDestroy(exec_);
      exec_ = nullptr;
      ++refused_in_a_row_;
    } else {
      refused_in_a_row_ = 0;
    }
  }
  if (exec_ == nullptr) {
    check(cudaGraphInstantiate(&exec_, captured.graph, 0), "cudaGraphInstantiate", "end_step");
    ++instantiations_;
  }
  check(cudaGraphLaunch(exec_, stream), "cudaGraphLaunch", "end_step");
  ++launches_;
}

void StepGraph::cancel(cudaStream_t stream) noexcept {
  if (!capturing_) return;
  capturing_ = false;
  GraphOwner discarded;
  cudaStreamEndCapture(stream, &discarded.graph);  // fails when the capture was invalidated
  cudaGetLastError();
}

}  // namespace torchless::cuda
