#!/usr/bin/env bash
# Builds the test executables that run Metal shaders (ctest label `metal`: the MSL emulator's
# own tests and the emulated Metal backend's) with AddressSanitizer + UBSan, and runs them in
# forward, reverse and shuffled thread orders. Called by scripts/test.sh after the release run.
# Usage: scripts/test_asan.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --preset asan >/dev/null

# The executables registered with `LABELS metal` (tests/metal_tests.cmake and what it includes).
mapfile -t dirs < <(grep -hoE 'torchless_add_test_dir\(\s*[A-Za-z0-9_]+[^)]*LABELS[^)]*metal' \
                      tests/metal_tests.cmake tests/*/*.cmake 2>/dev/null |
                    sed -E 's/torchless_add_test_dir\(\s*([A-Za-z0-9_]+).*/\1/' | sort -u)
known=$(cmake --build --preset asan --target help 2>/dev/null || true)
targets=()
for d in "${dirs[@]}"; do
  if grep -q "^${d}_tests:" <<<"$known"; then targets+=("${d}_tests"); fi
done
if ((${#targets[@]} == 0)); then
  echo "test_asan.sh: no metal-labelled test executables found" >&2
  exit 1
fi
echo "test_asan.sh: building ${targets[*]} with ASan+UBSan"
cmake --build --preset asan --target "${targets[@]}"

# The emulator annotates its fiber switches for ASan, so use-after-return detection and
# leak checking work inside kernels too.
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]]; then
  for s in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$s" >/dev/null; then export ASAN_SYMBOLIZER_PATH="$(command -v "$s")"; break; fi
  done
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --preset asan -L metal -j2
