// Conformance of the decode path: mat-vecs that read activations the op before them may already
// have quantised (RMSNorm, SwiGLU; docs/cuda.md), ops that change those activations in between,
// and decode steps (Backend::begin_step/end_step) against the same ops run one by one.
#include <fmt/format.h>

#include "backends/conformance.h"
#include "backends/reference_ops.h"
#include "torchless/core/error.h"

namespace torchless::conformance {
namespace {

class ConformanceDecode : public BackendTest {
 protected:
  // y = W x for the x the backend holds now, checked against float64 over its own x.
  void expect_matvec(const Weights& w, DType dtype, const Tensor& x, const Tensor& y,
                     const std::string& what) {
    const std::vector<float> xh = backend().to_host_f32(x);
    const int64_t rows = w.tensor.rows(), cols = w.tensor.cols();
    const auto want = reference::matmul(w.values, xh, rows, cols, 1);
    expect_close(backend().to_host_f32(y), want,
                 matmul_tolerance(w.values, xh, rows, cols, 1, activation_block(dtype)), what);
  }
};

// Whole blocks of every weight type, more than 2048 elements but not a multiple of 2048 (CUDA
// stages 64 units of 32 elements of a row at a time: a whole chunk, then a partial one); rows
// not a multiple of a kernel's rows per block.
int64_t width_for(DType dtype) {
  return dtype_block_size(dtype) == 256 ? 2304 : 2144;
}
constexpr int64_t kRows = 33;

TEST_P(ConformanceDecode, RmsnormOutputFeedsSeveralMatvecs) {
  for (DType t : weight_types(backend())) {
    const int64_t cols = width_for(t);
    const uint64_t seed = 1300 + static_cast<uint64_t>(t);
    const std::string what =
        fmt::format("{} rmsnorm then 2 mat-vecs, seed {}", dtype_name(t), seed);
    const Weights w1 = make_weights(backend(), t, kRows, cols, seed);
    const Weights w2 = make_weights(backend(), t, kRows + 8, cols, seed + 1);
    const std::vector<float> xh = random_floats(size_t(cols), seed + 2, -3, 3);
    const std::vector<float> gh = random_floats(size_t(cols), seed + 3, 0.5f, 1.5f);
    const Tensor x = upload_f32(backend(), xh, {1, cols});
    const Tensor g = upload_f32(backend(), gh, {cols});
    Tensor y = backend().alloc(Shape{1, cols}, DType::F32);
    Tensor y1 = backend().alloc(Shape{kRows}, DType::F32);
    Tensor y2 = backend().alloc(Shape{kRows + 8}, DType::F32);
    backend().rmsnorm(x, g, y, 1e-5f);
    const Tensor yv = y.reshape(Shape{cols});
    backend().matmul_vec(w1.tensor, yv, y1);
    backend().matmul_vec(w2.tensor, yv, y2);
    const auto want = reference::rmsnorm(xh, gh, cols, 1e-5);
    expect_close(backend().to_host_f32(y), want, tolerance(want, 1e-7, kRowRel), what);
    expect_matvec(w1, t, yv, y1, what + " (first)");
    expect_matvec(w2, t, yv, y2, what + " (second)");
  }
}

// A few tokens: the normalised rows of all of them feed one batched matmul.
TEST_P(ConformanceDecode, RmsnormOfFewTokensFeedsBatchedMatmul) {
  for (DType t : {DType::Q4_0, DType::Q4_K, DType::BF16}) {
    const int64_t cols = width_for(t), n = 3;
    const uint64_t seed = 1450 + static_cast<uint64_t>(t);
    const Weights w = make_weights(backend(), t, kRows, cols, seed);
    const Tensor x =
        upload_f32(backend(), random_floats(size_t(n * cols), seed + 1, -3, 3), {n, cols});
    const Tensor g =
        upload_f32(backend(), random_floats(size_t(cols), seed + 2, 0.5f, 1.5f), {cols});
    Tensor y = backend().alloc(Shape{n, cols}, DType::F32);
    Tensor out = backend().alloc(Shape{n, kRows}, DType::F32);
    backend().rmsnorm(x, g, y, 1e-5f);
    backend().matmul(w.tensor, y, out);
    const std::vector<float> yh = backend().to_host_f32(y);
    const auto want = reference::matmul(w.values, yh, kRows, cols, n);
    expect_close(backend().to_host_f32(out), want,
                 matmul_tolerance(w.values, yh, kRows, cols, n, activation_block(t)),
                 fmt::format("{} rmsnorm [3, {}] then matmul, seed {}", dtype_name(t), cols, seed));
  }
}

TEST_P(ConformanceDecode, SwigluOutputFeedsMatvec) {
  for (DType t : weight_types(backend())) {
    const int64_t cols = width_for(t);
    const uint64_t seed = 1400 + static_cast<uint64_t>(t);
    const Weights w = make_weights(backend(), t, kRows, cols, seed);
    const std::vector<float> gh = random_floats(size_t(cols), seed + 1, -4, 4);
    const std::vector<float> uh = random_floats(size_t(cols), seed + 2);
    Tensor gate = upload_f32(backend(), gh, {1, cols});
    const Tensor up = upload_f32(backend(), uh, {1, cols});
    Tensor y = backend().alloc(Shape{kRows}, DType::F32);
    backend().fused_silu_mul(gate, up, gate);
    const Tensor gv = gate.reshape(Shape{cols});
    backend().matmul_vec(w.tensor, gv, y);
    const auto want = reference::silu_mul(gh, uh);
    expect_close(backend().to_host_f32(gate), want, tolerance(want, 1e-7, kRowRel),
                 fmt::format("{} swiglu, seed {}", dtype_name(t), seed));
    expect_matvec(w, t, gv, y, fmt::format("{} swiglu then mat-vec, seed {}", dtype_name(t), seed));
  }
}

// An op or an upload that changes the activations between two mat-vecs of them must be seen by
// the second one (a backend that reuses quantised activations must notice).
TEST_P(ConformanceDecode, ActivationsChangedBetweenMatvecsAreSeen) {
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::F16}) {
    const int64_t cols = 96;
    const uint64_t seed = 1500 + static_cast<uint64_t>(t);
    const Weights w = make_weights(backend(), t, kRows, cols, seed);
    const Tensor x = upload_f32(backend(), random_floats(size_t(cols), seed + 1, -3, 3), {1, cols});
    const Tensor g =
        upload_f32(backend(), random_floats(size_t(cols), seed + 2, 0.5f, 1.5f), {cols});
    const Tensor b = upload_f32(backend(), random_floats(size_t(cols), seed + 3, 2, 3), {cols});
    Tensor y = backend().alloc(Shape{1, cols}, DType::F32);
    Tensor out = backend().alloc(Shape{kRows}, DType::F32);
    const Tensor yv = y.reshape(Shape{cols});
    const std::string what = fmt::format("{} seed {}", dtype_name(t), seed);
    backend().rmsnorm(x, g, y, 1e-5f);
    backend().matmul_vec(w.tensor, yv, out);
    backend().add(y, b, y);
    backend().matmul_vec(w.tensor, yv, out);
    expect_matvec(w, t, yv, out, what + " after add");
    backend().rmsnorm(x, g, y, 1e-5f);
    const std::vector<float> fresh = random_floats(size_t(cols), seed + 4);
    backend().upload(std::as_bytes(std::span(fresh)), y);
    backend().matmul_vec(w.tensor, yv, out);
    expect_matvec(w, t, yv, out, what + " after upload");
  }
}

// A small decode step: upload an id, embedding, rmsnorm, a Q4_0 mat-vec, RoPE at the step's
// position, a bias add. Run inside begin_step/end_step it must give exactly what the same ops
// give one by one, step after step (on CUDA: a graph captured, then updated in place).
struct MiniStep {
  static constexpr int kHeads = 2, kHeadDim = 32, kVocab = 11;
  static constexpr int64_t kCols = 64, kWidth = kHeads * kHeadDim;
  Weights table, w;
  Tensor norm, bias, freq, ids, x, xb, q;

  explicit MiniStep(Backend& b)
      : table(make_weights(b, DType::Q8_0, kVocab, kCols, 1600)),
        w(make_weights(b, DType::Q4_0, kWidth, kCols, 1601)),
        norm(upload_f32(b, random_floats(kCols, 1602, 0.5f, 1.5f), {kCols})),
        bias(upload_f32(b, random_floats(kWidth, 1603), {kWidth})),
        freq(upload_f32(b, rope_frequencies(kHeadDim, 10000.0), {kHeadDim / 2})),
        ids(b.alloc(Shape{1}, DType::I32)),
        x(b.alloc(Shape{1, kCols}, DType::F32)),
        xb(b.alloc(Shape{1, kCols}, DType::F32)),
        q(b.alloc(Shape{1, kWidth}, DType::F32)) {}

  std::vector<float> run(Backend& b, int32_t token, int pos, bool as_step) {
    if (as_step) b.begin_step();
    b.upload(std::as_bytes(std::span(&token, 1)), ids);
    b.embedding(table.tensor, ids, x);
    b.rmsnorm(x, norm, xb, 1e-5f);
    Tensor qv = q.reshape(Shape{kWidth});
    b.matmul_vec(w.tensor, xb.reshape(Shape{kCols}), qv);
    b.rope(q, freq, RopeParams{kHeads, kHeadDim, pos, false});
    b.add(q, bias, q);
    if (as_step) b.end_step();
    return b.to_host_f32(q);
  }
};

TEST_P(ConformanceDecode, StepsGiveTheResultsOfTheirOps) {
  MiniStep step(backend());
  const std::pair<int32_t, int> tokens[] = {{3, 0}, {5, 7}, {10, 100}, {0, 101}, {3, 4000}};
  for (const auto& [token, pos] : tokens) {
    const std::vector<float> eager = step.run(backend(), token, pos, false);
    const std::vector<float> stepped = step.run(backend(), token, pos, true);
    EXPECT_EQ(stepped, eager) << "token " << token << " at " << pos;
  }
}

TEST_P(ConformanceDecode, StepBracketsAreChecked) {
  EXPECT_THROW(backend().end_step(), Error);
  backend().begin_step();
  EXPECT_TRUE(backend().in_step());
  EXPECT_THROW(backend().begin_step(), Error);
  backend().end_step();
  EXPECT_FALSE(backend().in_step());
}

// An op that throws inside a step leaves it to StepScope, which cancels it; the backend then
// runs ops as before.
TEST_P(ConformanceDecode, StepInterruptedByAnErrorIsCancelled) {
  MiniStep step(backend());
  const std::vector<float> before = step.run(backend(), 4, 9, false);
  EXPECT_EQ(step.run(backend(), 4, 9, true), before);  // a first step (CUDA: run op by op)
  Tensor wrong = backend().alloc(Shape{MiniStep::kWidth + 1}, DType::F32);
  try {
    StepScope scope(backend());
    backend().rmsnorm(step.x, step.norm, step.xb, 1e-5f);
    backend().matmul_vec(step.w.tensor, step.xb.reshape(Shape{MiniStep::kCols}), wrong);
    scope.finish();
    ADD_FAILURE() << "matmul_vec into a wrong-sized output did not throw";
  } catch (const Error&) {
  }
  EXPECT_FALSE(backend().in_step());
  EXPECT_EQ(step.run(backend(), 4, 9, false), before);
  EXPECT_EQ(step.run(backend(), 4, 9, true), before);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceDecode, ::testing::ValuesIn(kBackends),
                         backend_test_name);

}  // namespace
}  // namespace torchless::conformance
