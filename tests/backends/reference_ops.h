#pragma once
// Float64 reference implementations of the backend ops, written from the definitions in
// backend.h and independent of any backend's code. Inputs are the values the backend sees
// (e.g. weights already dequantised, caches already rounded to F16), so the references measure
// only the backend's arithmetic.
#include <cstdint>
#include <vector>

namespace torchless::reference {

// y[t * rows + r] = sum_c w[r * cols + c] * x[t * cols + c].
std::vector<double> matmul(const std::vector<float>& w, const std::vector<float>& x, int64_t rows,
                           int64_t cols, int64_t n);
std::vector<double> rmsnorm(const std::vector<float>& x, const std::vector<float>& weight,
                            int64_t cols, double eps);
std::vector<double> softmax(const std::vector<float>& x, int64_t cols);
std::vector<double> silu(const std::vector<float>& x);
std::vector<double> silu_mul(const std::vector<float>& gate, const std::vector<float>& up);
// b has x's size or one row of `cols` broadcast.
std::vector<double> add(const std::vector<float>& a, const std::vector<float>& b, int64_t cols);
std::vector<double> rope(const std::vector<float>& x, const std::vector<float>& inv_freq,
                         int n_heads, int head_dim, int pos0, bool neox);

struct Attention {
  int n_tokens = 1, pos0 = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, window = 0;
  double scale = 1.0;
};
// q: [n_tokens, n_heads * head_dim]; k, v: [>= pos0 + n_tokens, n_kv_heads * head_dim].
std::vector<double> attention(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, const Attention& p);
// Decode primitives (n_tokens = 1): scores [n_heads, pos0 + 1], -inf outside the window.
std::vector<double> attention_scores(const std::vector<float>& q, const std::vector<float>& k,
                                     const Attention& p);
std::vector<double> weighted_sum(const std::vector<float>& scores, const std::vector<float>& v,
                                 const Attention& p);

}  // namespace torchless::reference
