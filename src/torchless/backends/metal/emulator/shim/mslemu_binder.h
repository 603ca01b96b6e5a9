#pragma once
// Type-erases kernels for the runtime: a thunk per signature builds each argument from its
// slot (buffer pointer or reference, threadgroup pointer, or builtin value) and calls the
// kernel. Included by generated translation units after mslemu_unshim.h.
#include <cstddef>
#include <type_traits>
#include <utility>

#include "mslemu_abi.h"
#include "mslemu_vec.h"

namespace torchless::mslemu::detail {

// A builtin of type P from its uint3 value: scalars take .x, uintN/ushortN the first N.
template <class P>
P builtin_value(const uint32_t (&v)[3]) {
  if constexpr (::metal::VecLike<P>) {
    static_assert(::metal::size_v<P> <= 3, "thread-position builtins have at most 3 components");
    P r;
    for (int i = 0; i < ::metal::size_v<P>; ++i) r.e[i] = static_cast<::metal::elem_t<P>>(v[i]);
    return r;
  } else {
    static_assert(std::is_integral_v<P>, "a thread-position builtin must be an integer type");
    return static_cast<P>(v[0]);
  }
}

template <class P>
P make_arg(const ArgSlot& slot, const ThreadIds& ids) {
  if constexpr (std::is_pointer_v<P>) {
    return static_cast<P>(slot.ptr);
  } else if constexpr (std::is_reference_v<P>) {
    return *static_cast<std::remove_reference_t<P>*>(slot.ptr);
  } else {
    return builtin_value<P>(ids.v[slot.builtin]);
  }
}

template <class T>
constexpr ParamShape pointee_shape(ShapeKind kind) {
  if constexpr (std::is_void_v<T>) {
    return {kind, 1, 1, !std::is_const_v<T>};
  } else {
    return {kind, sizeof(T), alignof(T), !std::is_const_v<T>};
  }
}

template <class P>
constexpr ParamShape shape_of() {
  if constexpr (std::is_pointer_v<P>) {
    return pointee_shape<std::remove_pointer_t<P>>(ShapeKind::Pointer);
  } else if constexpr (std::is_reference_v<P>) {
    return pointee_shape<std::remove_reference_t<P>>(ShapeKind::Reference);
  } else {
    return {ShapeKind::Value, sizeof(P), alignof(P), false};
  }
}

template <class... P, size_t... I>
void call_kernel(GenericFn fn, const ArgSlot* slots, const ThreadIds& ids,
                 std::index_sequence<I...>) {
  reinterpret_cast<void (*)(P...)>(fn)(make_arg<P>(slots[I], ids)...);
}

template <class... P>
void thunk(GenericFn fn, const ArgSlot* slots, const ThreadIds& ids) {
  call_kernel<P...>(fn, slots, ids, std::index_sequence_for<P...>{});
}

// `signature`: the kernel whose text gives the parameters' attributes; the kernel template for
// an instantiation registered under its host name, else `name` itself.
template <class... P>
void add_kernel(FileRegistration& file, const char* name, void (*fn)(P...),
                const char* signature = nullptr) {
  static constexpr ParamShape kShapes[sizeof...(P) + 1] = {shape_of<P>()..., ParamShape{}};
  file.add(name, signature != nullptr ? signature : name, reinterpret_cast<GenericFn>(fn),
           &thunk<P...>, kShapes, sizeof...(P));
}

}  // namespace torchless::mslemu::detail
