// mslemu_gen: turns one .metal file into an emulator translation unit (see
// docs: msl-emulator.md, section 1), after linting it and the headers it includes with quotes
// twice: for constructs the emulator cannot run faithfully (below), and for Apple's MSL rules
// that the emulator would relax (msl_spec_lint.cpp). A host tool built before the kernels; it
// links nothing but the standard library.
//
//   mslemu_gen [--msl-version=X.Y] <in.metal> <out.cpp> <display-path> <register-function>
//   mslemu_gen [--msl-version=X.Y] --lint <in.metal> [display-path]
//
// --msl-version is the language version the library is compiled for (default 3.0).
// Lint errors are printed as `<display-path>:<line>: error: <why>`; the exit status is 1.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lint_text.h"
#include "msl_spec_lint.h"

namespace {

using namespace torchless::mslemu::lint;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string squeeze(std::string s) {
  s = std::regex_replace(s, std::regex(R"(\b(device|constant|thread|threadgroup)\b)"), " ");
  s = std::regex_replace(s, std::regex(R"(\s+)"), " ");
  return std::regex_replace(s, std::regex(R"(^ | $)"), "");
}

std::string spaces(const std::string& s) {
  return std::regex_replace(s, std::regex(R"(\s+)"), " ");
}

// Two definitions of one function whose parameters differ only in address-space keywords:
// distinct in MSL, duplicates once the keywords are macros.
void find_address_space_overloads(const std::string& code, std::vector<Finding>& out) {
  static const std::regex def(R"(\b([A-Za-z_]\w*)\s*\(([^()]*)\)\s*(const\s*)?\{)");
  static const std::regex keyword(R"(^(if|for|while|switch|return|catch)$)");
  struct Def {
    std::string name, params, squeezed;
  };
  std::vector<Def> seen;
  for (std::sregex_iterator it(code.begin(), code.end(), def), end; it != end; ++it) {
    const std::string name = (*it)[1], params = (*it)[2];
    if (std::regex_match(name, keyword)) continue;
    const std::string squeezed = squeeze(params);
    for (const Def& d : seen) {
      if (d.name == name && d.squeezed == squeezed && spaces(d.params) != spaces(params)) {
        out.push_back({static_cast<size_t>(it->position(1)),
                       "'" + name +
                           "' is overloaded on address space only; after the emulator's "
                           "keyword macros both overloads are the same function: give them "
                           "different names"});
      }
    }
    seen.push_back({name, params, squeezed});
  }
}

// `template [[host_name("name")]] [[kernel]] decltype(f<Args>) f<Args>;` (MLX's idiom; also
// `kernel void f<Args>(parameter types);`): the kernel template f instantiated for Args and
// registered as `name`. C++ does not allow attributes on an explicit instantiation, so the
// generator blanks these statements out of the compiled text and registers &f<Args> instead,
// which instantiates the template the same way.
struct Instantiation {
  std::string host_name, function, arguments;
  size_t offset = 0, length = 0;
};

const std::regex& instantiation_pattern() {
  static const std::regex re(
      R"(\btemplate\s*\[\[\s*host_name\s*\(([^()]*)\)\s*\]\]\s*(?:\[\[\s*kernel\s*\]\]\s*|kernel\s+))"
      R"((?:void|decltype\s*\([^;]*?\))\s*([A-Za-z_]\w*)\s*<([^;]*?)>\s*(?:\([^;]*\))?\s*;)");
  return re;
}

// Found in `code` (code_only(src): the host name's string literal is blanked there), the host
// name read from the same place in `src`.
std::vector<Instantiation> instantiations(const std::string& code, const std::string& src) {
  std::vector<Instantiation> out;
  const std::regex& re = instantiation_pattern();
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it) {
    std::string name = src.substr(static_cast<size_t>(it->position(1)), (*it)[1].length());
    name.erase(0, name.find('"') + 1);
    name.erase(std::min(name.find('"'), name.size()));
    out.push_back({name, (*it)[2], (*it)[3], static_cast<size_t>(it->position(0)),
                   static_cast<size_t>(it->length(0))});
  }
  return out;
}

// Kernel templates: `template <...> kernel void NAME(`.
std::set<std::string> kernel_templates(const std::string& code) {
  static const std::regex re(
      R"(\btemplate\s*<[^;{}]*>\s*(?:\[\[[^\]]*\]\]\s*)*kernel\s+void\s+([A-Za-z_]\w*)\s*\()");
  std::set<std::string> names;
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it)
    names.insert((*it)[1]);
  return names;
}

// Every instantiation names a kernel template of the file, and every kernel template is
// instantiated (an uninstantiated one would never be registered).
void find_instantiation_mistakes(const std::string& code, const std::string& src,
                                 std::vector<Finding>& out) {
  const std::set<std::string> templates = kernel_templates(code);
  std::set<std::string> used;
  for (const Instantiation& i : instantiations(code, src)) {
    used.insert(i.function);
    if (!templates.count(i.function)) {
      out.push_back({i.offset, "`" + i.host_name + "` instantiates '" + i.function +
                                   "', which is not a kernel template of this file"});
    }
  }
  static const std::regex def(
      R"(\btemplate\s*<[^;{}]*>\s*(?:\[\[[^\]]*\]\]\s*)*kernel\s+void\s+([A-Za-z_]\w*)\s*\()");
  for (std::sregex_iterator it(code.begin(), code.end(), def), end; it != end; ++it) {
    if (!used.count((*it)[1])) {
      out.push_back({static_cast<size_t>(it->position(0)),
                     "kernel template '" + (*it)[1].str() +
                         "' has no `template [[host_name(\"...\")]]` instantiation: it would "
                         "never be registered"});
    }
  }
}

// The plain (non-template) kernels, registered under their own names.
std::vector<std::string> kernel_names(const std::string& code) {
  static const std::regex re(R"(\bkernel\s+void\s+([A-Za-z_]\w*)\s*\()");
  const std::set<std::string> templates = kernel_templates(code);
  std::vector<std::string> names;
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it)
    if (!templates.count((*it)[1])) names.push_back((*it)[1]);
  return names;
}

// `text` with each instantiation statement replaced by spaces (newlines kept, so #line holds).
std::string without_instantiations(std::string text, const std::vector<Instantiation>& list) {
  for (const Instantiation& i : list) {
    for (size_t k = i.offset; k < i.offset + i.length; ++k)
      if (text[k] != '\n') text[k] = ' ';
  }
  return text;
}

// The emulator's own limits: constructs that are valid MSL but that it cannot run faithfully.
std::vector<Finding> lint_emulator(const std::string& code, const std::string& src) {
  std::vector<Finding> f;
  find_all(
      code,
      std::regex(
          R"(\.([xyzw]{2,4}|[rgba]{2,4})\s*(=(?!=)|\+=|-=|\*=|/=|%=|&=|\|=|\^=|<<=|>>=|\+\+|--))"),
      1,
      "assignment to a multi-component swizzle: the emulator's swizzles are read-only; "
      "assign the components one by one (v.x = ...; v.y = ...)",
      f);
  find_all(code, std::regex(R"(\bfunction_constant\b)"), 0,
           "function constants are not supported: pass the value in the argument struct, or "
           "write an inline template and one wrapper kernel per value",
           f);
  {
    // At program scope the spec lint reports it (Apple rejects it there too).
    std::vector<Finding> body;
    find_all(
        code,
        std::regex(
            R"(\bthreadgroup\s+(const\s+)?[A-Za-z_][\w:<>,]*(\s*<[^;{}()]*>)?\s+[A-Za-z_]\w*\s*(\[|;|=|\{))"),
        0,
        "threadgroup variable declared in a function body: the emulator would make it "
        "per-thread; take a `threadgroup T* p [[threadgroup(n)]]` kernel parameter instead",
        body);
    const std::vector<bool> scope = program_scope(without_directives(code));
    for (Finding& b : body)
      if (!scope[b.offset]) f.push_back(std::move(b));
  }
  find_all(code, std::regex(R"((^|[^\w.])((\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?[hH])\b)"), 2,
           "half literals like 0.5h are not C++: write half(0.5f)", f);
  find_all(code, std::regex(R"(\b(constant\s+const|const\s+constant)\b)"), 0,
           "`constant const`: constant already means const (and becomes const in the emulator); "
           "drop the const",
           f);
  find_all(code, std::regex(R"(\bthread_elements\s*\()"), 0,
           "thread_elements() depends on Apple's undocumented lane layout of simdgroup "
           "matrices: use simdgroup_load/simdgroup_store",
           f);
  find_all(code, std::regex(R"(\b(atomic_\w+|atomic\s*<)|\bmemory_order_\w+)"), 0,
           "atomics are not supported by the emulator yet: use a two-pass reduction", f);
  find_all(code, std::regex(R"(\b(texture[123]d\w*|depth2d\w*|sampler)\b)"), 0,
           "textures and samplers are not supported by the emulator", f);
  find_all(code, std::regex(R"(\bpacked_(float|half|int|uint|short|ushort|char|uchar)[234]\b)"), 0,
           "packed vector types are not supported by the emulator yet", f);
  find_address_space_overloads(code, f);
  find_instantiation_mistakes(code, src, f);
  return f;
}

int report(const std::string& code, const std::string& display, std::vector<Finding> findings) {
  std::stable_sort(findings.begin(), findings.end(),
                   [](const Finding& a, const Finding& b) { return a.offset < b.offset; });
  for (const Finding& f : findings)
    std::cerr << display << ":" << line_of(code, f.offset) << ": error: " << f.message << "\n";
  return findings.empty() ? 0 : 1;
}

std::string generate(const std::string& src, const std::string& code, const std::string& display,
                     const std::string& out_path, const std::string& function) {
  // code_only() keeps offsets, so the statements found in `code` are at the same place in src.
  const std::vector<Instantiation> list = instantiations(code, src);
  const std::string rewritten =
      std::regex_replace(without_instantiations(src, list),
                         std::regex(R"(\[\[(\s*)threadgroup(\s*)\()"), "[[$1msl_threadgroup$2(");
  std::ostringstream o;
  o << "// Generated by mslemu_gen from " << display << ". Do not edit.\n"
    << "#define TORCHLESS_MSL_EMULATOR 1\n"
    << "#ifndef __METAL_VERSION__\n#define __METAL_VERSION__ 300\n#endif\n"
    << "#include <metal_stdlib>\n"
    << "#pragma GCC diagnostic push\n"
    << "#pragma GCC diagnostic ignored \"-Wattributes\"\n"
    << "#pragma GCC diagnostic ignored \"-Wunused-parameter\"\n"
    << "#pragma GCC diagnostic ignored \"-Wunused-variable\"\n"
    << "#pragma GCC diagnostic ignored \"-Wunused-function\"\n"
    << "#pragma GCC diagnostic ignored \"-Wunused-but-set-variable\"\n"
    << "#pragma GCC diagnostic ignored \"-Wsign-compare\"\n"
    << "#if defined(__clang__)\n#pragma GCC diagnostic ignored \"-Wunknown-attributes\"\n#endif\n"
    << "namespace {\nnamespace mslemu_kernels {\n"
    << "#line 1 \"" << display << "\"\n"
    << rewritten << (rewritten.empty() || rewritten.back() != '\n' ? "\n" : "");
  std::string head = o.str();
  const int out_line = line_of(head, head.size()) + 1;
  o << "#line " << out_line << " \"" << out_path << "\"\n";
  // The instantiations, taken inside the kernels' namespace where their arguments resolve.
  for (size_t k = 0; k < list.size(); ++k) {
    o << "inline constexpr auto mslemu_instance_" << k << " = &" << list[k].function << "<"
      << list[k].arguments << ">;\n";
  }
  o << "}  // namespace mslemu_kernels\n}  // namespace\n"
    << "#pragma GCC diagnostic pop\n"
    << "#include <mslemu_unshim.h>\n#include <mslemu_binder.h>\n\n"
    << "namespace {\nconstexpr char kSource[] = R\"mslemu_src(" << src << ")mslemu_src\";\n}\n\n"
    << "void " << function << "();\n"
    << "void " << function << "() {\n"
    << "  ::torchless::mslemu::detail::FileRegistration file(\"" << display << "\", kSource);\n";
  for (const std::string& name : kernel_names(code))
    o << "  ::torchless::mslemu::detail::add_kernel(file, \"" << name
      << "\", &mslemu_kernels::" << name << ");\n";
  for (size_t k = 0; k < list.size(); ++k) {
    o << "  ::torchless::mslemu::detail::add_kernel(file, \"" << list[k].host_name
      << "\", mslemu_kernels::mslemu_instance_" << k << ", \"" << list[k].function << "\");\n";
  }
  o << "}\n";
  return o.str();
}

// The file and the headers it includes with quotes, each once, each with its display path.
struct Source {
  std::string path, display;
};

std::vector<Source> with_local_includes(const std::string& path, const std::string& display) {
  namespace fs = std::filesystem;
  static const std::regex include(R"re((^|\n)\s*#\s*include\s*"([^"]+)")re");
  std::vector<Source> out = {{path, display}};
  std::set<std::string> seen = {fs::weakly_canonical(path).string()};
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string src = read_file(out[i].path);
    for (std::sregex_iterator it(src.begin(), src.end(), include), end; it != end; ++it) {
      const fs::path header = fs::path(out[i].path).parent_path() / (*it)[2].str();
      if (!fs::exists(header) || !seen.insert(fs::weakly_canonical(header).string()).second)
        continue;
      out.push_back(
          {header.string(), (fs::path(out[i].display).parent_path() / (*it)[2].str()).string()});
    }
  }
  return out;
}

// Both lints over the file and its local headers; 1 if anything was found.
int lint_all(const std::string& path, const std::string& display, int msl_version) {
  int status = 0;
  for (const Source& s : with_local_includes(path, display)) {
    const std::string src = read_file(s.path);
    const std::string code = code_only(src);
    std::vector<Finding> findings = lint_emulator(code, src);
    for (Finding& f : lint_msl_spec(code, msl_version)) findings.push_back(std::move(f));
    status |= report(code, s.display, std::move(findings));
  }
  return status;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The oldest language version the Apple backend compiles for (apple_device.mm:
  // MTLLanguageVersion3_0 before macOS 14); CMake passes TORCHLESS_MSL_LINT_VERSION.
  int msl_version = kMsl30;
  if (!args.empty() && args[0].rfind("--msl-version=", 0) == 0) {
    msl_version = parse_msl_version(args[0].substr(14));
    args.erase(args.begin());
  }
  if (args.size() >= 2 && args[0] == "--lint")
    return lint_all(args[1], args.size() > 2 ? args[2] : args[1], msl_version);
  if (args.size() != 4) {
    std::cerr << "usage: mslemu_gen [--msl-version=X.Y] <in.metal> <out.cpp> <display-path> "
                 "<register-function>\n"
                 "       mslemu_gen [--msl-version=X.Y] --lint <in.metal> [display-path]\n";
    return 2;
  }
  if (lint_all(args[0], args[2], msl_version) != 0) return 1;
  const std::string src = read_file(args[0]);
  const std::string code = code_only(src);
  if (src.find(")mslemu_src\"") != std::string::npos) {
    std::cerr << args[2] << ": error: the source contains the raw-string delimiter )mslemu_src\"\n";
    return 1;
  }
  const std::string out = generate(src, code, args[2], args[1], args[3]);
  std::ofstream f(args[1], std::ios::binary);
  f << out;
  if (!f) {
    std::cerr << "mslemu_gen: cannot write " << args[1] << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mslemu_gen: " << e.what() << "\n";
    return 1;
  }
}
