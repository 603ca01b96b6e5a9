#!/usr/bin/env bash
# torchless serve against llama-server on one GGUF file, in the same run, with
# bench/server_bench.mjs (aggregate tokens/s and time to first token at several concurrencies).
# Rounds alternate the engines. Prints the machine's load before each server.
# Both servers get PARALLEL slots (llama-server's -c is the total context of its slots).
# Usage: bench/server_vs_llama.sh TORCHLESS LLAMA_SERVER MODEL [STREAMS=1,4,16] [TOKENS=32]
#        [ROUNDS=2] [THREADS=2] [PARALLEL=4]
set -euo pipefail
torchless=$1 llama_server=$2 model=$3
streams=${4:-1,4,16} tokens=${5:-32} rounds=${6:-2} threads=${7:-2} parallel=${8:-4}
bench="$(dirname "$0")/server_bench.mjs"
port=18431

wait_ready() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server on port $port did not become ready" >&2
  return 1
}

run_one() {
  local name=$1
  shift
  echo "== $name: $* (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$@" >"/tmp/server_vs_llama.$name.log" 2>&1 &
  local pid=$!
  wait_ready
  # One untimed request faults the weights in, so the 1-stream row measures decoding.
  node "$bench" "http://127.0.0.1:$port" 1 4 1 >/dev/null
  node "$bench" "http://127.0.0.1:$port" "$streams" "$tokens" 1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
  echo "# round $round"
  run_one torchless "$torchless" serve -m "$model" --port "$port" --parallel "$parallel" --ctx 256 \
    --threads "$threads" --backend cpu
  run_one llama-server "$llama_server" -m "$model" --port "$port" --parallel "$parallel" \
    -c $((parallel * 256)) -t "$threads"
done
