#include "torchless/core/shared_library.h"

#include <dlfcn.h>

#include <utility>

#include <fmt/ranges.h>

#include "torchless/core/error.h"

namespace torchless {
namespace {

// The loader's reason for the last failure, or a placeholder where it gave none.
std::string loader_error() {
  const char* reason = dlerror();
  return reason != nullptr ? reason : "no reason given";
}

}  // namespace

SharedLibrary::SharedLibrary(std::string name, const std::vector<std::string>& file_names,
                             std::string_view remedy)
    : name_(std::move(name)) {
  std::string first_reason;  // the first candidate's: the specific one, the others are fallbacks
  for (const std::string& file : file_names) {
    handle_ = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ != nullptr) {
      file_name_ = file;
      return;
    }
    if (first_reason.empty()) first_reason = loader_error();
  }
  fail("{} could not be opened (tried {}: {}){}{}", name_, fmt::join(file_names, ", "),
       first_reason, remedy.empty() ? "" : "; ", remedy);
}

SharedLibrary::~SharedLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

void* SharedLibrary::address(const char* symbol) const {
  dlerror();  // clears an earlier failure, so that the one reported is this lookup's
  void* address = dlsym(handle_, symbol);
  if (address == nullptr) fail("{} ({}) has no {}: {}", name_, file_name_, symbol, loader_error());
  return address;
}

}  // namespace torchless
