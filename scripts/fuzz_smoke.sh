#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (the `fuzz` CMake preset) and fuzzes the GGUF reader
# for a bounded time, seeded with small valid GGUFs generated now plus the first 16 KiB of a few
# real files from ../shared when present. Prints the number of executions.
# Usage: scripts/fuzz_smoke.sh [SECONDS]     (default 60; see docs/fuzzing.md for longer runs)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${FUZZ_SECONDS:-60}}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target gguf_reader_fuzz gguf_fuzz_corpus safetensors_reader_fuzz
bin=build/fuzz/fuzz

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=$work/corpus
"$bin/gguf_fuzz_corpus" "$corpus"
for f in ../shared/models/stories260K.gguf ../shared/golden/qwen2/model-q4_k.gguf \
         ../shared/golden/llama/model-q8_0.gguf ../shared/vocab/ggml-vocab-gpt-2.gguf; do
  if [[ -f $f ]]; then head -c 16384 "$f" > "$corpus/head-$(basename "$f")"; fi
done

# run_fuzzer NAME SECONDS CORPUS_DIR: fuzzes, prints the execution count, keeps reproducers.
run_fuzzer() {
  local name=$1 secs=$2 dir=$3 status=0
  echo "fuzz_smoke: fuzzing ${name} for ${secs} s ($(ls "$dir" | wc -l) seed files)"
  "$bin/$name" "$dir" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" >"$work/$name.log" 2>&1 || status=$?
  if [[ $status -ne 0 ]]; then
    tail -n 60 "$work/$name.log"
    mkdir -p build/fuzz/crashes
    cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* build/fuzz/crashes/ 2>/dev/null || true
    echo "fuzz_smoke: ${name} FAILED (exit $status); reproducer(s) in build/fuzz/crashes/" >&2
    exit "$status"
  fi
  local runs new
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
  new=$(sed -n 's/^stat::new_units_added: *//p' "$work/$name.log")
  echo "fuzz_smoke: ${name} OK, ${runs} executions in ${secs} s, ${new} new corpus units, no crash"
}

run_fuzzer gguf_reader_fuzz "$seconds" "$corpus"
# The safetensors/config.json parsers get a third of the time, starting from an empty corpus.
mkdir -p "$work/safetensors"
run_fuzzer safetensors_reader_fuzz $(( (seconds + 2) / 3 )) "$work/safetensors"
