// mslemu_gen: turns one .metal file into an emulator translation unit (see
// docs: msl-emulator.md, section 1), after linting it for constructs the emulator cannot run
// faithfully. A host tool built before the kernels; it links nothing but the standard library.
//
//   mslemu_gen <in.metal> <out.cpp> <display-path> <register-function>
//   mslemu_gen --lint <in.metal> [display-path]
//
// Lint errors are printed as `<display-path>:<line>: error: <why>`; the exit status is 1.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
// GCC 12 reports false maybe-uninitialized warnings inside <regex> under -fsanitize.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Finding {
  size_t offset;
  std::string message;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Blanks comments and string literals (keeping newlines) so the lint and the kernel scan see
// only code, at the same offsets as the original.
std::string code_only(const std::string& src) {
  std::string out = src;
  enum { kCode, kLine, kBlock, kString } state = kCode;
  for (size_t i = 0; i < src.size(); ++i) {
    const char c = src[i], next = i + 1 < src.size() ? src[i + 1] : '\0';
    switch (state) {
      case kCode:
        if (c == '/' && next == '/')
          state = kLine;
        else if (c == '/' && next == '*')
          state = kBlock;
        else if (c == '"')
          state = kString;
        if (state != kCode) out[i] = ' ';
        continue;
      case kLine:
        if (c == '\n') state = kCode;
        break;
      case kBlock:
        if (c == '*' && next == '/') {
          out[i + 1] = ' ';
          ++i;
          state = kCode;
        }
        break;
      case kString:
        if (c == '\\') {
          out[i] = ' ';
          if (i + 1 < src.size() && src[i + 1] != '\n') out[++i] = ' ';
          continue;
        }
        if (c == '"') state = kCode;
        break;
    }
    if (out[i] != '\n') out[i] = ' ';
  }
  return out;
}

int line_of(const std::string& text, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

void find_all(const std::string& code, const std::regex& re, int group, const std::string& why,
              std::vector<Finding>& out) {
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it)
    out.push_back({static_cast<size_t>(it->position(group)), why});
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

std::vector<Finding> lint(const std::string& code) {
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
  find_all(
      code,
      std::regex(
          R"(\bthreadgroup\s+(const\s+)?[A-Za-z_][\w:<>,]*(\s*<[^;{}()]*>)?\s+[A-Za-z_]\w*\s*(\[|;|=|\{))"),
      0,
      "threadgroup variable declared in a function body: the emulator would make it "
      "per-thread; take a `threadgroup T* p [[threadgroup(n)]]` kernel parameter instead",
      f);
  find_all(code, std::regex(R"(\btemplate\s*\[\[\s*host_name)"), 0,
           "`template [[host_name(...)]]` instantiations are not portable C++ (clang rejects "
           "them): write wrapper kernels that call an inline template",
           f);
  find_all(code, std::regex(R"(\btemplate\s*<[^;{}]*>\s*(\[\[[^\]]*\]\]\s*)*kernel\b)"), 0,
           "kernel templates cannot be registered: write wrapper kernels that call an inline "
           "template",
           f);
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
  return f;
}

int report(const std::string& code, const std::string& display, std::vector<Finding> findings) {
  std::stable_sort(findings.begin(), findings.end(),
                   [](const Finding& a, const Finding& b) { return a.offset < b.offset; });
  for (const Finding& f : findings)
    std::cerr << display << ":" << line_of(code, f.offset) << ": error: " << f.message << "\n";
  return findings.empty() ? 0 : 1;
}

std::vector<std::string> kernel_names(const std::string& code) {
  static const std::regex re(R"(\bkernel\s+void\s+([A-Za-z_]\w*)\s*\()");
  std::vector<std::string> names;
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it)
    names.push_back((*it)[1]);
  return names;
}

std::string generate(const std::string& src, const std::string& code, const std::string& display,
                     const std::string& out_path, const std::string& function) {
  const std::string rewritten = std::regex_replace(
      src, std::regex(R"(\[\[(\s*)threadgroup(\s*)\()"), "[[$1msl_threadgroup$2(");
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
  o << "#line " << out_line << " \"" << out_path << "\"\n"
    << "}  // namespace mslemu_kernels\n}  // namespace\n"
    << "#pragma GCC diagnostic pop\n"
    << "#include <mslemu_unshim.h>\n#include <mslemu_binder.h>\n\n"
    << "namespace {\nconstexpr char kSource[] = R\"mslemu_src(" << src << ")mslemu_src\";\n}\n\n"
    << "void " << function << "();\n"
    << "void " << function << "() {\n"
    << "  ::torchless::mslemu::detail::FileRegistration file(\"" << display << "\", kSource);\n";
  for (const std::string& name : kernel_names(code))
    o << "  ::torchless::mslemu::detail::add_kernel(file, \"" << name
      << "\", &mslemu_kernels::" << name << ");\n";
  o << "}\n";
  return o.str();
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 2 && args[0] == "--lint") {
    const std::string src = read_file(args[1]);
    return report(code_only(src), args.size() > 2 ? args[2] : args[1], lint(code_only(src)));
  }
  if (args.size() != 4) {
    std::cerr << "usage: mslemu_gen <in.metal> <out.cpp> <display-path> <register-function>\n"
                 "       mslemu_gen --lint <in.metal> [display-path]\n";
    return 2;
  }
  const std::string src = read_file(args[0]);
  const std::string code = code_only(src);
  if (report(code, args[2], lint(code)) != 0) return 1;
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
