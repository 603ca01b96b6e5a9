#pragma once
// A shared library opened at run time (dlopen) instead of linked: for optional dependencies
// (cuBLAS, NCCL) that builds and machines without them must still link and start without, and
// that programs not using them never load. Every failure is an Error that names the library and,
// for a symbol, the symbol, so that a user can tell what is missing where.
#include <string>
#include <string_view>
#include <vector>

namespace torchless {

class SharedLibrary {
 public:
  // Opens the first of `file_names` that the dynamic loader finds (in its search path:
  // LD_LIBRARY_PATH, the ld.so cache, ...), so a versioned name can come before a generic one.
  // Throws Error naming `name` (as users know it, e.g. "cuBLAS"), the files tried, the loader's
  // reason and `remedy` (what to do about it; may be empty).
  SharedLibrary(std::string name, const std::vector<std::string>& file_names,
                std::string_view remedy = {});
  // Closes the handle: symbols taken from it must not outlive it. A library whose functions may
  // run during static destruction (cuBLAS, NCCL) is never destroyed, so stays for the process.
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  // The function `symbol` as F (its function pointer type); throws Error naming the library and
  // the symbol where the library has no such symbol.
  template <typename F>
  F symbol(const char* symbol) const {
    return reinterpret_cast<F>(address(symbol));
  }

  // symbol<F>() into `out`: out's declared type gives F, so a table of pointers names each once.
  template <typename F>
  void bind(const char* symbol, F& out) const {
    out = this->symbol<F>(symbol);
  }

  const std::string& name() const { return name_; }
  const std::string& file_name() const { return file_name_; }  // the candidate that opened

 private:
  void* address(const char* symbol) const;

  std::string name_;
  std::string file_name_;
  void* handle_ = nullptr;
};

}  // namespace torchless
