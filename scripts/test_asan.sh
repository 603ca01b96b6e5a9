#!/usr/bin/env bash
# Builds with AddressSanitizer + UBSan the test executables that run Metal shaders (ctest
# label `metal`: the MSL emulator's own tests and the emulated Metal backend's) and the format
# parsers' tests (hostile GGUF, safetensors and llama2.c files), and runs them once: the thread
# orders, the simdgroup width 64 and the fast-math mode are the release run's job
# (scripts/test.sh runs every Metal test in forward, reverse and shuffled orders, and again at
# width 64 and in fast math); they change the order and the math of the same memory accesses,
# so here only the forward instances run. Called by scripts/test.sh.
# Usage: scripts/test_asan.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --preset asan >/dev/null

# The executables holding `metal`-labelled tests (tests/CMakeLists.txt: the emulator's and the
# Metal backend's own, and the backend-parameterised conformance and model suites), plus the
# format parsers'.
known=$(cmake --build --preset asan --target help 2>/dev/null || true)
targets=()
for t in emulator_tests metal_tests metal_objc_tests backends_tests model_tests formats_tests; do
  if grep -q "^${t}:" <<<"$known"; then targets+=("$t"); fi
done
if ((${#targets[@]} < 6)); then
  echo "test_asan.sh: expected six test executables in the asan build, found: ${targets[*]}" >&2
  exit 1
fi
echo "test_asan.sh: building ${targets[*]} with ASan+UBSan"
cmake --build --preset asan --target "${targets[@]}"

if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]]; then
  for s in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$s" >/dev/null; then export ASAN_SYMBOLIZER_PATH="$(command -v "$s")"; break; fi
  done
fi
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
base_options="detect_leaks=1:strict_string_checks=1"
# Every Metal-shader test but the emulator's own, once (metal-selftest, which runs the same
# kernels through the CLI, only in the release run), then the parsers' tests. Use-after-return
# detection is off for the first: ASan then gives each fiber a fake stack of its own, which made
# the emulated backend tests about 40x slower (a small Llama decode step: 6 s without, 270 s
# with).
ASAN_OPTIONS="${ASAN_OPTIONS:-$base_options:detect_stack_use_after_return=0}" \
  ctest --preset asan -L metal -LE emulator -E '^(reverse|shuffle|simd64|fastmath)\.|^metal_selftest\.' -j2
ASAN_OPTIONS="${ASAN_OPTIONS:-$base_options:detect_stack_use_after_return=1}" \
  build/asan/tests/formats_tests --gtest_brief=1
# The emulator's own tests with use-after-return detection on: its fiber switches are annotated
# for ASan, so a kernel that returns a pointer to its stack is caught.
ASAN_OPTIONS="${ASAN_OPTIONS:-$base_options:detect_stack_use_after_return=1}" \
  ctest --preset asan -L emulator -R '^forward\.' -j2
