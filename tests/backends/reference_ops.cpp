#include "backends/reference_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace torchless::reference {
namespace {

size_t at(int64_t i) {
  return static_cast<size_t>(i);
}

int64_t first_visible(int64_t pos, int window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

double dot_head(const float* a, const float* b, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

}  // namespace

std::vector<double> matmul(const std::vector<float>& w, const std::vector<float>& x, int64_t rows,
                           int64_t cols, int64_t n) {
  std::vector<double> y(at(rows * n));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) {
        s += static_cast<double>(w[at(r * cols + c)]) * x[at(t * cols + c)];
      }
      y[at(t * rows + r)] = s;
    }
  }
  return y;
}

std::vector<double> rmsnorm(const std::vector<float>& x, const std::vector<float>& weight,
                            int64_t cols, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / at(cols); ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c)
      ss += static_cast<double>(x[r * at(cols) + at(c)]) * x[r * at(cols) + at(c)];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      y[r * at(cols) + at(c)] = x[r * at(cols) + at(c)] * inv * weight[at(c)];
    }
  }
  return y;
}

std::vector<double> softmax(const std::vector<float>& x, int64_t cols) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / at(cols); ++r) {
    const float* row = x.data() + r * at(cols);
    const double m = *std::max_element(row, row + cols);
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(row[c] - m);
    for (int64_t c = 0; c < cols; ++c) y[r * at(cols) + at(c)] = std::exp(row[c] - m) / sum;
  }
  return y;
}

std::vector<double> silu(const std::vector<float>& x) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] / (1.0 + std::exp(-static_cast<double>(x[i])));
  return y;
}

std::vector<double> silu_mul(const std::vector<float>& gate, const std::vector<float>& up) {
  std::vector<double> y = silu(gate);
  for (size_t i = 0; i < y.size(); ++i) y[i] *= up[i];
  return y;
}

std::vector<double> add(const std::vector<float>& a, const std::vector<float>& b, int64_t cols) {
  std::vector<double> y(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const float bv = b.size() == a.size() ? b[i] : b[i % at(cols)];
    y[i] = static_cast<double>(a[i]) + bv;
  }
  return y;
}

std::vector<double> rope(const std::vector<float>& x, const std::vector<float>& inv_freq,
                         int n_heads, int head_dim, int pos0, bool neox) {
  std::vector<double> y(x.begin(), x.end());
  const size_t width = at(n_heads) * at(head_dim);
  const int half = head_dim / 2;
  for (size_t t = 0; t < x.size() / width; ++t) {
    const double pos = pos0 + static_cast<double>(t);
    for (int h = 0; h < n_heads; ++h) {
      double* v = y.data() + t * width + at(h) * at(head_dim);
      for (int i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[at(i)];
        const size_t a = neox ? at(i) : at(2 * i);
        const size_t b = neox ? at(i + half) : at(2 * i + 1);
        const double x0 = v[a], x1 = v[b];
        v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
        v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
      }
    }
  }
  return y;
}

std::vector<double> attention(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, const Attention& p) {
  const int width = p.n_heads * p.head_dim;
  const int kv_width = p.n_kv_heads * p.head_dim;
  const int group = p.n_heads / p.n_kv_heads;
  std::vector<double> out(at(p.n_tokens) * at(width), 0.0);
  for (int t = 0; t < p.n_tokens; ++t) {
    const int64_t pos = p.pos0 + t;
    const int64_t lo = first_visible(pos, p.window);
    for (int h = 0; h < p.n_heads; ++h) {
      const float* qh = q.data() + at(t) * at(width) + at(h) * at(p.head_dim);
      const size_t kv_off = at(h / group) * at(p.head_dim);
      std::vector<double> s;
      for (int64_t j = lo; j <= pos; ++j) {
        s.push_back(p.scale * dot_head(qh, k.data() + at(j) * at(kv_width) + kv_off, p.head_dim));
      }
      const double m = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - m));
      double* o = out.data() + at(t) * at(width) + at(h) * at(p.head_dim);
      for (int64_t j = lo; j <= pos; ++j) {
        const float* vj = v.data() + at(j) * at(kv_width) + kv_off;
        for (int d = 0; d < p.head_dim; ++d) o[d] += s[at(j - lo)] / sum * vj[d];
      }
    }
  }
  return out;
}

std::vector<double> attention_scores(const std::vector<float>& q, const std::vector<float>& k,
                                     const Attention& p) {
  const int64_t len = p.pos0 + 1;
  const int kv_width = p.n_kv_heads * p.head_dim;
  const int group = p.n_heads / p.n_kv_heads;
  const int64_t lo = first_visible(p.pos0, p.window);
  std::vector<double> s(at(p.n_heads) * at(len), -std::numeric_limits<double>::infinity());
  for (int h = 0; h < p.n_heads; ++h) {
    for (int64_t j = lo; j < len; ++j) {
      s[at(h) * at(len) + at(j)] =
          p.scale * dot_head(q.data() + at(h) * at(p.head_dim),
                             k.data() + at(j) * at(kv_width) + at(h / group) * at(p.head_dim),
                             p.head_dim);
    }
  }
  return s;
}

std::vector<double> weighted_sum(const std::vector<float>& scores, const std::vector<float>& v,
                                 const Attention& p) {
  const int64_t len = p.pos0 + 1;
  const int kv_width = p.n_kv_heads * p.head_dim;
  const int group = p.n_heads / p.n_kv_heads;
  std::vector<double> out(at(p.n_heads) * at(p.head_dim), 0.0);
  for (int h = 0; h < p.n_heads; ++h) {
    for (int64_t j = 0; j < len; ++j) {
      const double w = scores[at(h) * at(len) + at(j)];
      const float* vj = v.data() + at(j) * at(kv_width) + at(h / group) * at(p.head_dim);
      for (int d = 0; d < p.head_dim; ++d) out[at(h) * at(p.head_dim) + at(d)] += w * vj[d];
    }
  }
  return out;
}

}  // namespace torchless::reference
