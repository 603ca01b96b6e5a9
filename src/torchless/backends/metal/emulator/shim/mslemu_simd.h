#pragma once
// Barriers and simdgroup functions. Each is a rendezvous in the runtime (mslemu_runtime.h):
// the lanes of a simdgroup meet at the same call site, and the last to arrive computes every
// lane's result. Lanes are combined in lane order, not in the GPU's tree order. The trailing
// defaulted arguments record the call site (__builtin_FILE works where source_location
// does not: clang 14).
#include <cstddef>
#include <cstdint>

#include "mslemu_math.h"
#include "mslemu_runtime.h"

#define MSLEMU_SITE const char *mslemu_file = __builtin_FILE(), int mslemu_line = __builtin_LINE()

namespace metal {

enum class mem_flags : uint32_t {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4
};
inline mem_flags operator|(mem_flags a, mem_flags b) {
  return static_cast<mem_flags>(static_cast<uint32_t>(a) | static_cast<uint32_t>(b));
}

inline void threadgroup_barrier(mem_flags = mem_flags::mem_none, MSLEMU_SITE) {
  torchless::mslemu::detail::threadgroup_barrier(mslemu_file, mslemu_line);
}
inline void simdgroup_barrier(mem_flags = mem_flags::mem_none, MSLEMU_SITE) {
  torchless::mslemu::detail::simd_collective(
      "simdgroup_barrier", [](torchless::mslemu::detail::SimdCall&) {}, nullptr, nullptr, nullptr,
      mslemu_file, mslemu_line);
}

namespace simd_detail {
using torchless::mslemu::detail::SimdCall;

template <class T>
const T& in(const SimdCall& c, uint32_t lane) {
  return *static_cast<const T*>(c.lanes[lane].in);
}
template <class T>
void out(const SimdCall& c, uint32_t lane, const T& v) {
  *static_cast<T*>(c.lanes[lane].out) = v;
}
template <class P>
const P& param(const SimdCall& c, uint32_t lane) {
  return *static_cast<const P*>(c.lanes[lane].param);
}

// A reduction over the active lanes in lane order, broadcast to all of them.
template <class T, class Op>
void reduce(SimdCall& c, Op op) {
  uint32_t first = c.first();
  T acc = in<T>(c, first);
  for (uint32_t l = first + 1; l < c.width; ++l)
    if (c.has(l)) acc = op(acc, in<T>(c, l));
  for (uint32_t l = 0; l < c.width; ++l)
    if (c.has(l)) out(c, l, acc);
}
template <class T>
void sum(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(a + b); });
}
template <class T>
void product(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(a * b); });
}
template <class T>
void maximum(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(max(a, b)); });
}
template <class T>
void minimum(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(min(a, b)); });
}
template <class T>
void bit_and(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(a & b); });
}
template <class T>
void bit_or(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(a | b); });
}
template <class T>
void bit_xor(SimdCall& c) {
  reduce<T>(c, [](const T& a, const T& b) { return T(a ^ b); });
}
template <class T, bool kInclusive>
void prefix_sum(SimdCall& c) {
  T acc = T(0);
  for (uint32_t l = 0; l < c.width; ++l) {
    if (!c.has(l)) continue;
    if (kInclusive) acc = T(acc + in<T>(c, l));
    out(c, l, acc);
    if (!kInclusive) acc = T(acc + in<T>(c, l));
  }
}
// Lane l reads lane source(l, param); an inactive or out-of-range source gives its own value.
template <class T, class Source>
void permute(SimdCall& c, Source source) {
  for (uint32_t l = 0; l < c.width; ++l) {
    if (!c.has(l)) continue;
    const int64_t s = source(static_cast<int64_t>(l), static_cast<int64_t>(param<uint16_t>(c, l)));
    const bool ok = s >= 0 && c.has(static_cast<uint32_t>(s));
    out(c, l, in<T>(c, ok ? static_cast<uint32_t>(s) : l));
  }
}
template <class T>
void broadcast(SimdCall& c) {
  const uint32_t first = c.first();
  const uint16_t src = param<uint16_t>(c, first);
  for (uint32_t l = first + 1; l < c.width; ++l) {
    if (c.has(l) && param<uint16_t>(c, l) != src) {
      c.error = "simd_broadcast with a non-uniform lane index";
      return;
    }
  }
  if (!c.has(src)) {
    c.error = "simd_broadcast from an inactive lane";
    return;
  }
  for (uint32_t l = 0; l < c.width; ++l)
    if (c.has(l)) out(c, l, in<T>(c, src));
}
template <class T>
void broadcast_first(SimdCall& c) {
  for (uint32_t l = 0; l < c.width; ++l)
    if (c.has(l)) out(c, l, in<T>(c, c.first()));
}

template <class X>
using value_t = std::conditional_t<VecLike<X>, vec_of_t<X>, std::remove_cvref_t<X>>;

template <class X>
value_t<X> run(const char* op, torchless::mslemu::detail::SimdLeader leader, const X& x,
               const void* param, const char* file, int line) {
  const value_t<X> v = x;
  value_t<X> r;
  torchless::mslemu::detail::simd_collective(op, leader, &v, &r, param, file, line);
  return r;
}
}  // namespace simd_detail

#define MSLEMU_SIMD_REDUCTION(name, leader)                                                   \
  template <class X>                                                                          \
  inline simd_detail::value_t<X> name(const X& x, MSLEMU_SITE) {                              \
    return simd_detail::run(#name, &simd_detail::leader<simd_detail::value_t<X>>, x, nullptr, \
                            mslemu_file, mslemu_line);                                        \
  }
MSLEMU_SIMD_REDUCTION(simd_sum, sum)
MSLEMU_SIMD_REDUCTION(simd_product, product)
MSLEMU_SIMD_REDUCTION(simd_max, maximum)
MSLEMU_SIMD_REDUCTION(simd_min, minimum)
MSLEMU_SIMD_REDUCTION(simd_and, bit_and)
MSLEMU_SIMD_REDUCTION(simd_or, bit_or)
MSLEMU_SIMD_REDUCTION(simd_xor, bit_xor)
MSLEMU_SIMD_REDUCTION(simd_broadcast_first, broadcast_first)
#undef MSLEMU_SIMD_REDUCTION

template <class X>
inline simd_detail::value_t<X> simd_prefix_inclusive_sum(const X& x, MSLEMU_SITE) {
  return simd_detail::run("simd_prefix_inclusive_sum",
                          &simd_detail::prefix_sum<simd_detail::value_t<X>, true>, x, nullptr,
                          mslemu_file, mslemu_line);
}
template <class X>
inline simd_detail::value_t<X> simd_prefix_exclusive_sum(const X& x, MSLEMU_SITE) {
  return simd_detail::run("simd_prefix_exclusive_sum",
                          &simd_detail::prefix_sum<simd_detail::value_t<X>, false>, x, nullptr,
                          mslemu_file, mslemu_line);
}

#define MSLEMU_SIMD_PERMUTE(name, expr)                                      \
  template <class X>                                                         \
  inline simd_detail::value_t<X> name(const X& x, uint16_t p, MSLEMU_SITE) { \
    using T = simd_detail::value_t<X>;                                       \
    return simd_detail::run(                                                 \
        #name,                                                               \
        [](torchless::mslemu::detail::SimdCall& c) {                         \
          simd_detail::permute<T>(c, [&c](int64_t l, int64_t p) -> int64_t { \
            (void)c, (void)l, (void)p;                                       \
            return expr;                                                     \
          });                                                                \
        },                                                                   \
        x, &p, mslemu_file, mslemu_line);                                    \
  }
MSLEMU_SIMD_PERMUTE(simd_shuffle, p)
MSLEMU_SIMD_PERMUTE(simd_shuffle_down, l + p < static_cast<int64_t>(c.width) ? l + p : l)
MSLEMU_SIMD_PERMUTE(simd_shuffle_up, l - p >= 0 ? l - p : l)
MSLEMU_SIMD_PERMUTE(simd_shuffle_xor, (l ^ p) < static_cast<int64_t>(c.width) ? (l ^ p) : l)
#undef MSLEMU_SIMD_PERMUTE

template <class X>
inline simd_detail::value_t<X> simd_broadcast(const X& x, uint16_t lane, MSLEMU_SITE) {
  return simd_detail::run("simd_broadcast", &simd_detail::broadcast<simd_detail::value_t<X>>, x,
                          &lane, mslemu_file, mslemu_line);
}

inline bool simd_all(bool b, MSLEMU_SITE) {
  return simd_detail::run("simd_all", &simd_detail::bit_and<bool>, b, nullptr, mslemu_file,
                          mslemu_line);
}
inline bool simd_any(bool b, MSLEMU_SITE) {
  return simd_detail::run("simd_any", &simd_detail::bit_or<bool>, b, nullptr, mslemu_file,
                          mslemu_line);
}

}  // namespace metal
