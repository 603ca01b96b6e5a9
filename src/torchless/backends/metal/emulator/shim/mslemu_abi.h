#pragma once
// The interface between generated kernel translation units (through mslemu_binder.h) and the
// runtime: how a kernel's parameters are described, bound and called. No MSL macros here.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace torchless::mslemu::detail {

// Every thread-position attribute's value, indexed by mslemu::Builtin.
struct ThreadIds {
  uint32_t v[11][3];
};

// One bound kernel argument: a buffer or threadgroup pointer, or the builtin to pass.
struct ArgSlot {
  void* ptr = nullptr;
  uint32_t builtin = 0;
};

enum class ShapeKind : uint8_t { Pointer, Reference, Value };

// What the C++ type of a parameter says, checked against the role its attribute gives.
struct ParamShape {
  ShapeKind kind = ShapeKind::Value;
  size_t size = 0;  // of the pointee/referee, or of the value
  size_t align = 0;
  bool writable = false;
};

using GenericFn = void (*)();
using Thunk = void (*)(GenericFn fn, const ArgSlot* slots, const ThreadIds& ids);

// Registers the kernels of one .metal file; `source` is its text, parsed for the signatures.
class FileRegistration {
 public:
  FileRegistration(const char* file, const char* source);
  ~FileRegistration();
  FileRegistration(const FileRegistration&) = delete;
  FileRegistration& operator=(const FileRegistration&) = delete;

  // Throws Error if the kernel's parameters do not fit their attributes.
  // `signature` names the kernel (or kernel template) of the source that declares it.
  void add(const char* name, const char* signature, GenericFn fn, Thunk thunk,
           const ParamShape* shapes, size_t count);

 private:
  struct Parsed;
  const char* file_;
  std::unique_ptr<Parsed> parsed_;
};

}  // namespace torchless::mslemu::detail
