#pragma once
// Shared pieces of the backend conformance suite (conformance_*_test.cpp): the list of
// backends it runs on and the GoogleTest fixture and comparison. The cases themselves (sizes,
// inputs, bounds) are in the library's conformance_cases.h, which metal-selftest runs too.
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "torchless/backends/backend.h"
#include "torchless/backends/conformance_cases.h"

namespace torchless::conformance {

// Every backend named here runs the whole suite; one that this build or machine lacks is
// skipped with the reason. A new backend joins by adding its init_backend name.
inline constexpr std::array<std::string_view, 3> kBackends = {"cpu", "metal-emulated", "cuda"};

class BackendTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override;
  Backend& backend() { return *backend_; }
  const Sizes& sizes() const { return sizes_for(GetParam()); }

 private:
  std::unique_ptr<Backend> backend_;
};

std::string backend_test_name(const ::testing::TestParamInfo<std::string_view>& info);

// Compares element-wise: |got - want| <= tol[i] (or tol[0] when tol has one entry). Reports
// the number of failures and the worst few, prefixed by `what`.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& tol, const std::string& what);

// y = w x for the n rows of x (matmul_vec when n is 1, matmul otherwise), read back as floats.
std::vector<float> run_matmul(Backend& backend, const Tensor& w, const std::vector<float>& x,
                              int64_t n);

}  // namespace torchless::conformance
