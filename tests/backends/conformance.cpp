#include "backends/conformance.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "torchless/core/error.h"
#include "torchless/core/quant.h"

namespace torchless::conformance {

void BackendTest::SetUp() {
  try {
    backend_ = init_backend(GetParam());
  } catch (const Error& e) {
    GTEST_SKIP() << "backend " << GetParam() << " is unavailable: " << e.what();
  }
}

std::string backend_test_name(const ::testing::TestParamInfo<std::string_view>& info) {
  std::string name(info.param);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t failures = 0;
  std::string report;
  for (size_t i = 0; i < got.size(); ++i) {
    const double t = tol.size() == 1 ? tol[0] : tol[i];
    // Infinities (masked scores) must match exactly; a relative tolerance of inf would not.
    const bool ok = std::isinf(want[i]) ? static_cast<double>(got[i]) == want[i]
                                        : std::fabs(static_cast<double>(got[i]) - want[i]) <= t;
    if (ok) continue;
    if (++failures <= 5) {
      report += fmt::format("\n  [{}] got {} want {} (tolerance {:.3g})", i, got[i], want[i], t);
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << got.size()
                          << " elements out of tolerance" << report;
}

std::vector<float> run_matmul(Backend& backend, const Tensor& w, const std::vector<float>& x,
                              int64_t n) {
  const int64_t rows = w.rows(), cols = w.cols();
  if (n == 1) {
    Tensor y = backend.alloc(Shape{rows}, DType::F32);
    backend.matmul_vec(w, upload_f32(backend, x, Shape{cols}), y);
    return backend.to_host_f32(y);
  }
  Tensor y = backend.alloc(Shape{n, rows}, DType::F32);
  backend.matmul(w, upload_f32(backend, x, Shape{n, cols}), y);
  return backend.to_host_f32(y);
}

}  // namespace torchless::conformance
