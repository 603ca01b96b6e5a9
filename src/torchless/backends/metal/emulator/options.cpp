#include <cstdlib>
#include <string>

#include "torchless/backends/metal/emulator/msl_emulator.h"
#include "torchless/backends/metal/emulator/raise.h"

namespace torchless::mslemu {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

uint64_t env_number(const char* name, const char* text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') detail::raise("{}={}: not a number", name, text);
  return v;
}

}  // namespace

Options default_options() {
  Options o;
  if (const char* v = env("TORCHLESS_MSL_ORDER")) {
    const std::string order = v;
    if (order == "forward")
      o.thread_order = ThreadOrder::Forward;
    else if (order == "reverse")
      o.thread_order = ThreadOrder::Reverse;
    else if (order == "shuffle")
      o.thread_order = ThreadOrder::Shuffle;
    else
      detail::raise("TORCHLESS_MSL_ORDER={}: expected forward, reverse or shuffle", order);
  }
  if (const char* v = env("TORCHLESS_MSL_SEED")) o.seed = env_number("TORCHLESS_MSL_SEED", v);
  if (const char* v = env("TORCHLESS_MSL_SIMD_WIDTH")) {
    o.simd_width = static_cast<int>(env_number("TORCHLESS_MSL_SIMD_WIDTH", v));
    if (o.simd_width != 32 && o.simd_width != 64)
      detail::raise("TORCHLESS_MSL_SIMD_WIDTH={}: expected 32 or 64", v);
  }
  if (const char* v = env("TORCHLESS_MSL_THREADS")) {
    o.os_threads = static_cast<int>(env_number("TORCHLESS_MSL_THREADS", v));
    if (o.os_threads < 1) detail::raise("TORCHLESS_MSL_THREADS={}: expected at least 1", v);
  }
  if (const char* v = env("TORCHLESS_MSL_MATH")) {
    const std::string math = v;
    if (math == "precise")
      o.math_functions = MathFunctions::Precise;
    else if (math == "fast")
      o.math_functions = MathFunctions::Fast;
    else
      detail::raise("TORCHLESS_MSL_MATH={}: expected precise or fast", math);
  }
  if (const char* v = env("TORCHLESS_MSL_REVERSE_GROUPS"))
    o.reverse_threadgroups = env_number("TORCHLESS_MSL_REVERSE_GROUPS", v) != 0;
  return o;
}

}  // namespace torchless::mslemu
