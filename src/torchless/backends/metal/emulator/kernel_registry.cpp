#include "torchless/backends/metal/emulator/kernel_registry.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "torchless/backends/metal/emulator/raise.h"
#include "torchless/backends/metal/emulator/signature_parser.h"

namespace torchless::mslemu {
namespace detail {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<Kernel>, std::less<>> kernels;
};

Registry& registry() {
  static Registry r;
  return r;
}

ParamKind to_kind(ShapeKind k) {
  switch (k) {
    case ShapeKind::Pointer:
      return ParamKind::Pointer;
    case ShapeKind::Reference:
      return ParamKind::Reference;
    case ShapeKind::Value:
      break;
  }
  return ParamKind::Value;
}

// The C++ type must fit the role the attribute gives: buffers are pointers or references,
// threadgroup memory a pointer, builtins values.
void check_param(const KernelInfo& k, const ParamInfo& p) {
  const auto where = [&] {
    return fmt::format("{}:{}: kernel {} parameter '{}'", k.file, k.line, k.name, p.name);
  };
  switch (p.role) {
    case ParamRole::Buffer:
      if (p.kind == ParamKind::Value)
        raise("{}: [[buffer({})]] must be a device or constant pointer or reference", where(),
              p.index);
      break;
    case ParamRole::Threadgroup:
      if (p.kind != ParamKind::Pointer)
        raise("{}: [[threadgroup({})]] must be a threadgroup pointer", where(), p.index);
      break;
    case ParamRole::Builtin:
      if (p.kind != ParamKind::Value)
        raise("{}: a thread-position attribute needs a value type", where());
      break;
  }
}

}  // namespace

const Kernel* find_registered(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.kernels.find(name);
  return it == r.kernels.end() ? nullptr : it->second.get();
}

struct FileRegistration::Parsed {
  std::vector<KernelInfo> kernels;
};

FileRegistration::FileRegistration(const char* file, const char* source)
    : file_(file), parsed_(std::make_unique<Parsed>()) {
  parsed_->kernels = parse_kernel_signatures(source, file);
}

FileRegistration::~FileRegistration() = default;

void FileRegistration::add(const char* name, const char* signature, GenericFn fn, Thunk thunk,
                           const ParamShape* shapes, size_t count) {
  const KernelInfo* parsed = nullptr;
  for (const KernelInfo& k : parsed_->kernels)
    if (k.name == signature) parsed = &k;
  if (!parsed) raise("{}: kernel {} not found by the signature parser", file_, signature);
  if (parsed->params.size() != count)
    raise("{}:{}: kernel {}: the parser read {} parameters, the compiler {}", file_, parsed->line,
          name, parsed->params.size(), count);
  auto kernel = std::make_unique<Kernel>();
  kernel->info = *parsed;
  kernel->info.name = name;  // the host name of an instantiation
  kernel->fn = fn;
  kernel->thunk = thunk;
  for (size_t i = 0; i < count; ++i) {
    ParamInfo& p = kernel->info.params[i];
    p.kind = to_kind(shapes[i].kind);
    p.pointee_size = shapes[i].size;
    p.pointee_align = shapes[i].align;
    p.writable = shapes[i].writable && p.kind != ParamKind::Value;
    check_param(kernel->info, p);
  }
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.kernels.find(name);
  if (it != r.kernels.end()) {
    if (it->second->fn == fn) return;  // registered again: idempotent
    raise("mslemu: kernel {} is defined in both {} and {}", name, it->second->info.file, file_);
  }
  r.kernels.emplace(name, std::move(kernel));
}

}  // namespace detail

const KernelInfo* find_kernel(std::string_view name) {
  const detail::Kernel* k = detail::find_registered(name);
  return k ? &k->info : nullptr;
}

std::vector<std::string> kernel_names() {
  detail::Registry& r = detail::registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, kernel] : r.kernels) names.push_back(name);
  return names;
}

}  // namespace torchless::mslemu
