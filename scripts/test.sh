#!/usr/bin/env bash
# Sets up the build dependencies, checks the formatting, builds and runs the whole test suite:
# the release build's tests (every Metal-shader test in three thread orders), the Metal-shader
# and format-parser tests again under ASan+UBSan, and a bounded fuzz smoke run.
# Usage: scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ ! -d ../shared ]]; then
  echo "error: ../shared (models, golden data, vocab vectors) must sit beside the repository" >&2
  exit 1
fi
scripts/check_format.sh
cmake --preset release
cmake --build --preset release
ctest --preset release -j2
if [[ -x scripts/test_asan.sh ]]; then scripts/test_asan.sh; fi
if [[ -x scripts/fuzz_smoke.sh ]]; then scripts/fuzz_smoke.sh; fi
