#!/usr/bin/env bash
# Sets up the build dependencies, builds and runs the whole test suite: the release build's
# tests, the Metal-emulator tests again under ASan+UBSan, and a bounded fuzz smoke run.
# Usage: scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ ! -d ../shared ]]; then
  echo "error: ../shared (models, golden data, vocab vectors) must sit beside the repository" >&2
  exit 1
fi
cmake --preset release
cmake --build --preset release
ctest --preset release -j2
if [[ -x scripts/test_asan.sh ]]; then scripts/test_asan.sh; fi
if [[ -x scripts/fuzz_smoke.sh ]]; then scripts/fuzz_smoke.sh; fi
