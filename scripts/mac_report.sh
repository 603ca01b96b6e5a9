#!/usr/bin/env bash
# On a Mac: builds torchless with the Metal backend, checks it on this GPU and writes one report
# file to attach to a bug report. Nothing fails half-way: every step's output and exit status
# goes into the report, and the script says at the end which steps failed.
# Usage: scripts/mac_report.sh [report-file]   (default: torchless-metal-report.txt)
# Steps: system and toolchain versions; build (release preset, TORCHLESS_METAL=ON);
# `metal-selftest --compile-only`; `metal-selftest` with Metal API validation and shader
# validation on (MTL_DEBUG_LAYER=1, MTL_SHADER_VALIDATION=1); `ctest -L metal`; and a short
# greedy `generate` with stories260K (../shared/models) on --backend metal and --backend cpu,
# whose token ids must be equal.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
report="${1:-torchless-metal-report.txt}"
[[ "$report" = /* ]] || report="$PWD/$report"
: >"$report"
failed=()
cli=./build/release/torchless
model=../shared/models/stories260K.gguf

section() { printf '\n===== %s =====\n' "$1" | tee -a "$report"; }
# Runs a step, appending its output and exit status to the report; records a failure.
step() {
  local name="$1"
  shift
  section "$name: $*"
  "$@" >>"$report" 2>&1
  local status=$?
  echo "exit status: $status" | tee -a "$report"
  ((status == 0)) || failed+=("$name")
  return "$status"
}

if [[ "$(uname)" != "Darwin" ]]; then
  echo "mac_report.sh is for macOS; on Linux use ctest -L metal (emulated)" >&2
  exit 2
fi

section "system"
{
  date -u
  sw_vers
  uname -a
  sysctl -n machdep.cpu.brand_string hw.memsize 2>/dev/null
  xcode-select -p
  xcodebuild -version 2>&1
  xcrun --show-sdk-version 2>&1
  clang --version 2>&1
  cmake --version 2>&1 | head -n 1
  xcrun -sdk macosx metal --version 2>&1 || echo "no offline Metal compiler (not needed)"
  system_profiler SPDisplaysDataType 2>&1
  git log -1 --format='torchless commit %H (%cd)' 2>&1
  git status --short 2>&1 | head -n 20
} >>"$report" 2>&1

step setup scripts/setup.sh
step configure cmake --preset release -DTORCHLESS_METAL=ON
step build cmake --build --preset release --target torchless_cli
if [[ ! -x "$cli" ]]; then
  echo "the build failed: see $report" >&2
  exit 1
fi
# Test executables, built after the CLI so that a test build error still leaves a report.
step build-tests cmake --build --preset release

step backends "$cli" backends
step compile-only "$cli" metal-selftest --compile-only
step selftest env MTL_DEBUG_LAYER=1 MTL_SHADER_VALIDATION=1 "$cli" metal-selftest
step ctest-metal ctest --preset release -L metal --output-on-failure

if [[ -f "$model" ]]; then
  tokens() {  # greedy token ids of a short generation on backend $1
    "$cli" generate -m "$model" -p "Once upon a time" -n 48 --temp 0 --backend "$1" \
      --output-format json 2>>"$report" |
      python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[-1])["tokens"])'
  }
  section "generate: greedy tokens, metal vs cpu"
  metal_tokens=$(tokens metal)
  cpu_tokens=$(tokens cpu)
  printf 'metal: %s\ncpu:   %s\n' "$metal_tokens" "$cpu_tokens" | tee -a "$report"
  if [[ -n "$metal_tokens" && "$metal_tokens" == "$cpu_tokens" ]]; then
    echo "generate: equal" | tee -a "$report"
  else
    echo "generate: DIFFERENT (or a backend failed)" | tee -a "$report"
    failed+=(generate)
  fi
else
  section "generate"
  echo "skipped: $model not found (scripts/download_models.sh fetches it)" | tee -a "$report"
fi

section "summary"
if ((${#failed[@]})); then
  echo "failed steps: ${failed[*]}" | tee -a "$report"
else
  echo "every step passed" | tee -a "$report"
fi
echo "report written to $report: please attach it to the bug report"
((${#failed[@]} == 0))
