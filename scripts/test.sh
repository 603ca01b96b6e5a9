#!/usr/bin/env bash
# Sets up the build dependencies, checks the formatting and the {fmt} includes, builds, runs
# clang-tidy over src/ (scripts/check_tidy.sh) and runs the whole test suite: the `ci` build's
# tests (every Metal-shader test in three thread orders), the Metal-shader and format-parser
# tests again under ASan+UBSan, a bounded fuzz smoke run, and the tests of a clang + libc++
# build (the standard library of macOS). Every build here treats warnings as errors (the `ci`,
# `asan`, `fuzz` and `libcxx` presets); a user's `release` build does not. What runs where, and
# what each stage costs: docs/testing.md.
# Usage: scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ ! -d ../shared ]]; then
  echo "error: ../shared (models, golden data, vocab vectors) must sit beside the repository" >&2
  exit 1
fi
scripts/check_format.sh
scripts/check_includes.sh
# Two parallel jobs for every build and test run below (CI machines have two cores); the presets
# other than `ci` leave the job count to the user.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export CTEST_PARALLEL_LEVEL="${CTEST_PARALLEL_LEVEL:-2}"
cmake --preset ci
cmake --build --preset ci
scripts/check_tidy.sh build/ci
ctest --preset ci -j2
if [[ -x scripts/test_asan.sh ]]; then scripts/test_asan.sh; fi
if [[ -x scripts/fuzz_smoke.sh ]]; then scripts/fuzz_smoke.sh; fi
if [[ -x scripts/test_libcxx.sh ]]; then scripts/test_libcxx.sh; fi
