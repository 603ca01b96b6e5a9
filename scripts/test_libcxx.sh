#!/usr/bin/env bash
# Builds torchless and its tests with clang and libc++ (the `libcxx` preset: LLVM's standard
# library, the one macOS uses, instead of libstdc++; warnings are errors) and runs the tests
# once: the thread-order, simdgroup-width-64 and fast-math repeats of the Metal tests
# (`reverse.`, `shuffle.`, `simd64.`, `fastmath.`) and the Objective-C++ syntax checks
# (`metal_objc.`, which compile with clang's default library whatever the build uses) are the
# `ci` run's job. Code that only libstdc++ accepts fails here. Called by scripts/test.sh.
# Usage: scripts/test_libcxx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset libcxx >/dev/null
cmake --build --preset libcxx
ctest --preset libcxx -E '^(reverse|shuffle|simd64|fastmath|metal_objc)\.' -j2
