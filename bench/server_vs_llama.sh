#!/usr/bin/env bash
# torchless serve against llama-server on one GGUF file, in the same run, with
# bench/server_bench.py (aggregate tokens/s and time to first token at several concurrencies).
# Rounds alternate the engines. Prints the machine's load before each server.
# Both servers get PARALLEL slots of CTX tokens each (llama-server's -c is the total context of
# its slots). Needs only bash and Python 3 (no Node.js, no curl).
# Usage: bench/server_vs_llama.sh [OPTIONS] TORCHLESS LLAMA_SERVER MODEL [STREAMS=1,4,16]
#        [TOKENS=32] [ROUNDS=2] [THREADS=2] [PARALLEL=4]
# Options (before the positional arguments; the defaults are the CPU setup):
#   --backend NAME       torchless serve --backend (cpu; e.g. cuda)
#   --llama-args "ARGS"  extra llama-server arguments, split on spaces (none; e.g. "-ngl 99 -fa on")
#   --ctx N              context per slot, both servers (256)
#   --python PATH        interpreter for the client and the readiness check (python3)
#   --port N             port both servers listen on, one at a time (18431)
# Example (GPU): bench/server_vs_llama.sh --backend cuda --llama-args "-ngl 99 -fa on" \
#   build/release/torchless llama.cpp/build/bin/llama-server model.gguf 1,4,16 64 2 8 16
set -euo pipefail

backend=cpu llama_args="" ctx=256 python=python3 port=18431
usage() {
  sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [[ $# -gt 0 && $1 == --* ]]; do
  [[ $# -ge 2 ]] || usage
  case $1 in
    --backend) backend=$2 ;;
    --llama-args) llama_args=$2 ;;
    --ctx) ctx=$2 ;;
    --python) python=$2 ;;
    --port) port=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[[ $# -ge 3 ]] || usage
torchless=$1 llama_server=$2 model=$3
streams=${4:-1,4,16} tokens=${5:-32} rounds=${6:-2} threads=${7:-2} parallel=${8:-4}
bench="$(dirname "$0")/server_bench.py"
read -r -a llama_extra <<<"$llama_args"

server_pid=""
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

# Polls /health (200 once the model is loaded) with Python, so curl is not needed.
wait_ready() {
  local log=$1
  for _ in $(seq 1200); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "server exited before becoming ready; its log ($log):" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server on port $port did not become ready in 10 minutes" >&2
  return 1
}

run_one() {
  local name=$1
  shift
  local log="/tmp/server_vs_llama.$name.log"
  echo "== $name: $* (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$@" >"$log" 2>&1 &
  server_pid=$!
  wait_ready "$log"
  # One untimed request faults the weights in, so the 1-stream row measures decoding.
  "$python" "$bench" "http://127.0.0.1:$port" 1 4 1 >/dev/null
  "$python" "$bench" "http://127.0.0.1:$port" "$streams" "$tokens" 1
  stop_server
}

for round in $(seq "$rounds"); do
  echo "# round $round"
  run_one torchless "$torchless" serve -m "$model" --port "$port" --parallel "$parallel" \
    --ctx "$ctx" --threads "$threads" --backend "$backend"
  run_one llama-server "$llama_server" -m "$model" --port "$port" --parallel "$parallel" \
    -c $((parallel * ctx)) -t "$threads" ${llama_extra[@]+"${llama_extra[@]}"}
done
