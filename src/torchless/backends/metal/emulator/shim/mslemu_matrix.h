#pragma once
// simdgroup_matrix<T, 8, 8>: one 8x8 tile shared by a simdgroup. Every lane holds its own
// object, but only the lowest active lane's copy is live: load, store and
// multiply_accumulate are rendezvous whose leader works on that copy once (doing the product
// in every lane made a 256^3 GEMM 7x slower). Arguments must be simdgroup-uniform.
// Assumptions to confirm on hardware (metal-selftest): the origin is (column, row), and
// simdgroup_matrix(T) fills only the diagonal. thread_elements() is not supported.
#include <iterator>

#include "mslemu_simd.h"

namespace metal {

template <class T, int Cols, int Rows>
struct simdgroup_matrix {
  T m[Rows][Cols];

  simdgroup_matrix() = default;
  explicit simdgroup_matrix(T diagonal) {
    for (int r = 0; r < Rows; ++r)
      for (int c = 0; c < Cols; ++c) m[r][c] = r == c ? diagonal : T(0);
  }
};
using simdgroup_float8x8 = simdgroup_matrix<float, 8, 8>;
using simdgroup_half8x8 = simdgroup_matrix<half, 8, 8>;

template <class T, int Cols, int Rows>
inline simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, Cols, Rows> r;
  for (auto& row : r.m)
    for (auto& e : row) e = value;
  return r;
}

namespace simd_detail {
struct MatrixAccess {
  const void* memory;
  uint64_t stride;
  uint64_t col;
  uint64_t row;
  bool transpose;
  bool operator==(const MatrixAccess&) const = default;
};

inline bool uniform_access(SimdCall& c, const char* what) {
  const MatrixAccess& a = param<MatrixAccess>(c, c.first());
  for (uint32_t l = 0; l < c.width; ++l) {
    if (c.has(l) && !(param<MatrixAccess>(c, l) == a)) {
      c.error = what;
      return false;
    }
  }
  return true;
}

// Element (r, c) of the tile lives at base[r * stride + c], or base[c * stride + r]
// transposed, with base = memory + row * stride + col.
template <class M, class U>
void load(SimdCall& c) {
  if (!uniform_access(c, "simdgroup_load with non-uniform arguments")) return;
  const MatrixAccess& a = param<MatrixAccess>(c, c.first());
  M& d = *static_cast<M*>(c.lanes[c.first()].out);
  const U* base = static_cast<const U*>(a.memory) + a.row * a.stride + a.col;
  for (uint64_t r = 0; r < std::size(d.m); ++r)
    for (uint64_t k = 0; k < std::size(d.m[0]); ++k)
      d.m[r][k] = static_cast<std::remove_cvref_t<decltype(d.m[r][k])>>(
          a.transpose ? base[k * a.stride + r] : base[r * a.stride + k]);
}
template <class M, class U>
void store(SimdCall& c) {
  if (!uniform_access(c, "simdgroup_store with non-uniform arguments")) return;
  const MatrixAccess& a = param<MatrixAccess>(c, c.first());
  const M& s = *static_cast<const M*>(c.lanes[c.first()].in);
  U* base = const_cast<U*>(static_cast<const U*>(a.memory)) + a.row * a.stride + a.col;
  for (uint64_t r = 0; r < std::size(s.m); ++r)
    for (uint64_t k = 0; k < std::size(s.m[0]); ++k)
      (a.transpose ? base[k * a.stride + r] : base[r * a.stride + k]) = static_cast<U>(s.m[r][k]);
}

template <class D, class A, class B, class C>
struct MmaOperands {
  D* d;
  const A* a;
  const B* b;
  const C* c;
};
// d = a * b + c, accumulated in float, on the leader's copies.
template <class D, class A, class B, class C>
void multiply_accumulate(SimdCall& call) {
  const auto& o = param<MmaOperands<D, A, B, C>>(call, call.first());
  float acc[8][8];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      float s = o.c ? static_cast<float>(o.c->m[i][j]) : 0.0f;
      for (int k = 0; k < 8; ++k)
        s += static_cast<float>(o.a->m[i][k]) * static_cast<float>(o.b->m[k][j]);
      acc[i][j] = s;
    }
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j)
      o.d->m[i][j] = static_cast<std::remove_cvref_t<decltype(o.d->m[i][j])>>(acc[i][j]);
}
}  // namespace simd_detail

template <class T, class U>
inline void simdgroup_load(simdgroup_matrix<T, 8, 8>& d, const U* src, size_t elements_per_row = 8,
                           ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false,
                           MSLEMU_SITE) {
  const simd_detail::MatrixAccess a{src, elements_per_row, matrix_origin.x, matrix_origin.y,
                                    transpose_matrix};
  torchless::mslemu::detail::simd_collective("simdgroup_load",
                                             &simd_detail::load<simdgroup_matrix<T, 8, 8>, U>,
                                             nullptr, &d, &a, mslemu_file, mslemu_line);
}
template <class T, class U>
inline void simdgroup_store(const simdgroup_matrix<T, 8, 8>& s, U* dst, size_t elements_per_row = 8,
                            ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false,
                            MSLEMU_SITE) {
  const simd_detail::MatrixAccess a{dst, elements_per_row, matrix_origin.x, matrix_origin.y,
                                    transpose_matrix};
  torchless::mslemu::detail::simd_collective("simdgroup_store",
                                             &simd_detail::store<simdgroup_matrix<T, 8, 8>, U>, &s,
                                             nullptr, &a, mslemu_file, mslemu_line);
}
template <class D, class A, class B, class C>
inline void simdgroup_multiply_accumulate(simdgroup_matrix<D, 8, 8>& d,
                                          const simdgroup_matrix<A, 8, 8>& a,
                                          const simdgroup_matrix<B, 8, 8>& b,
                                          const simdgroup_matrix<C, 8, 8>& c, MSLEMU_SITE) {
  using M = simd_detail::MmaOperands<simdgroup_matrix<D, 8, 8>, simdgroup_matrix<A, 8, 8>,
                                     simdgroup_matrix<B, 8, 8>, simdgroup_matrix<C, 8, 8>>;
  const M o{&d, &a, &b, &c};
  torchless::mslemu::detail::simd_collective(
      "simdgroup_multiply_accumulate",
      &simd_detail::multiply_accumulate<simdgroup_matrix<D, 8, 8>, simdgroup_matrix<A, 8, 8>,
                                        simdgroup_matrix<B, 8, 8>, simdgroup_matrix<C, 8, 8>>,
      nullptr, nullptr, &o, mslemu_file, mslemu_line);
}
template <class D, class A, class B>
inline void simdgroup_multiply(simdgroup_matrix<D, 8, 8>& d, const simdgroup_matrix<A, 8, 8>& a,
                               const simdgroup_matrix<B, 8, 8>& b, MSLEMU_SITE) {
  using M = simd_detail::MmaOperands<simdgroup_matrix<D, 8, 8>, simdgroup_matrix<A, 8, 8>,
                                     simdgroup_matrix<B, 8, 8>, simdgroup_matrix<D, 8, 8>>;
  const M o{&d, &a, &b, nullptr};
  torchless::mslemu::detail::simd_collective(
      "simdgroup_multiply",
      &simd_detail::multiply_accumulate<simdgroup_matrix<D, 8, 8>, simdgroup_matrix<A, 8, 8>,
                                        simdgroup_matrix<B, 8, 8>, simdgroup_matrix<D, 8, 8>>,
      nullptr, nullptr, &o, mslemu_file, mslemu_line);
}

}  // namespace metal
