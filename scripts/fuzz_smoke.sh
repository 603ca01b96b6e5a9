#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (the `fuzz` CMake preset) and fuzzes each for a bounded
# time: the GGUF reader for SECONDS, seeded with small valid GGUFs generated now plus the first
# 16 KiB of a few real files from ../shared; the other parsers (safetensors/config.json, chat
# templates, tokenizer.json, llama2.c checkpoint and tokenizer.bin, tokenizer encode, the
# server's request bodies) for
# SECONDS/4 each (15 s by default), from small seeds written here. The fuzzers are
# single-threaded, so two run at a time (CI machines have two cores): every target gets the same
# time on a core as one after the other, in about half the wall time. Prints executions per target.
# Usage: scripts/fuzz_smoke.sh [SECONDS]     (default 60; see docs/fuzzing.md for longer runs)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${FUZZ_SECONDS:-60}}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target gguf_reader_fuzz gguf_fuzz_corpus safetensors_reader_fuzz \
  chat_template_fuzz hf_tokenizer_fuzz llama2c_fuzz tokenizer_encode_fuzz server_request_fuzz
bin=build/fuzz/fuzz

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=$work/corpus
"$bin/gguf_fuzz_corpus" "$corpus"
for f in ../shared/models/stories260K.gguf ../shared/golden/qwen2/model-q4_k.gguf \
         ../shared/golden/llama/model-q8_0.gguf ../shared/vocab/ggml-vocab-gpt-2.gguf; do
  if [[ -f $f ]]; then head -c 16384 "$f" > "$corpus/head-$(basename "$f")"; fi
done

# run_fuzzer NAME SECONDS CORPUS_DIR [MAX_LEN]: fuzzes, prints the execution count, keeps
# reproducers; exits non-zero on a finding.
run_fuzzer() {
  local name=$1 secs=$2 dir=$3 max_len=${4:-16384} status=0
  echo "fuzz_smoke: fuzzing ${name} for ${secs} s ($(ls "$dir" | wc -l) seed files)"
  "$bin/$name" "$dir" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
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

# queue NAME SECONDS CORPUS_DIR [MAX_LEN]: a run_fuzzer call for run_queued below.
queued=()
queue() { queued+=("$*"); }

# run_lane JOB...: the runs one after the other; stops at the first failure.
run_lane() {
  local job
  for job in "$@"; do
    # shellcheck disable=SC2086 # a job is NAME SECONDS DIR [MAX_LEN], no spaces inside
    (run_fuzzer $job) || return 1
  done
}

# run_queued: the queued runs in two lanes side by side, each run to the lane with fewer
# seconds so far (by default 60 + 15 s beside 5 x 15 s: 75 s instead of 165 s); fails if any
# run failed.
run_queued() {
  local a=() b=() secs_a=0 secs_b=0 job secs failed=0
  for job in "${queued[@]}"; do
    secs=$(cut -d' ' -f2 <<<"$job")
    if ((secs_a <= secs_b)); then
      a+=("$job")
      secs_a=$((secs_a + secs))
    else
      b+=("$job")
      secs_b=$((secs_b + secs))
    fi
  done
  run_lane ${a[@]+"${a[@]}"} &
  local pid_a=$!
  run_lane ${b[@]+"${b[@]}"} &
  local pid_b=$!
  wait "$pid_a" || failed=1
  wait "$pid_b" || failed=1
  return "$failed"
}

queue gguf_reader_fuzz "$seconds" "$corpus"
share=$(( (seconds + 3) / 4 ))
# The safetensors/config.json parsers start from an empty corpus.
mkdir -p "$work/safetensors"
queue safetensors_reader_fuzz "$share" "$work/safetensors"

# seed DIR NAME: writes stdin (printf escapes expanded by the caller) as seed NAME in DIR.
seed() { mkdir -p "$1" && cat > "$1/$2"; }

# Chat templates: the shapes real templates use (loops, namespace, slicing, filters, tests).
d=$work/chat
printf '%s' "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}" | seed "$d" chatml
printf '%s' "{{ bos_token }}{% set ns = namespace(sys='') %}{%- for m in messages -%}{% if m.role == 'system' %}{% set ns.sys = m.content %}{% elif (m.role == 'user') != (loop.index0 % 2 == 1) %}{{ raise_exception('alternate') }}{% else %}{{ '[INST] ' ~ ns.sys ~ m.content|upper ~ ' [/INST]' if m.role == 'user' else m.content + eos_token }}{% endif %}{%- endfor %}" | seed "$d" llama2
printf '%s' "{{ messages[1:][::-1] | map(attribute='role') | join(',') }}{{ (messages | selectattr('role', 'equalto', 'user') | list | length) * 2 // 3 }}{{ {'a': [1, 2.5, none, true]} | tojson(indent=2) }}{% for k, v in {'x': 1}.items() if v is number %}{{ k }}{% else %}e{% endfor %}{{ 'a b'.split(' ') | first }}{{ range(3) | list | last is odd }}" | seed "$d" expressions
queue chat_template_fuzz "$share" "$d" 4096

# tokenizer.json: a byte-level (GPT-2 style) and a SentencePiece-style BPE with byte fallback.
d=$work/hf
printf '%s' '{"added_tokens":[{"id":6,"content":"<|endoftext|>","special":true},{"id":7,"content":"<x>","lstrip":true}],"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+|\\p{L}+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":true}]},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|endoftext|>"}},{"Sequence":{"id":"A"}}]},"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"H":0,"e":1,"l":2,"o":3,"He":4,"ll":5,"\u0120":8,"w":9},"merges":["H e","l l"]}}' | seed "$d" bytelevel
printf '%s' '{"added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true}],"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\u2581"}]},"decoder":{"type":"ByteFallback"},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}]},"model":{"type":"BPE","unk_token":"<unk>","byte_fallback":true,"vocab":{"<unk>":0,"<s>":1,"<0x0A>":2,"<0xC3>":3,"\u2581":4,"H":5,"e":6,"\u2581H":7,"\u2581He":8},"merges":[["\u2581","H"],"\u2581H e"]}}' | seed "$d" sentencepiece
queue hf_tokenizer_fuzz "$share" "$d"

# llama2.c: the first byte picks the reader (even: checkpoint, odd: tokenizer.bin).
d=$work/llama2c
mkdir -p "$d"
python3 - "$d" <<'PY'
import struct, sys
d = sys.argv[1]
dim, hidden, layers, heads, kv_heads, vocab, seq = 8, 16, 1, 2, 1, 12, 4
kv = dim // heads * kv_heads
blocks = layers * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * hidden * dim)
legacy = vocab * dim + blocks + dim
floats = lambda n: struct.pack(f"<{n}f", *[0.25 * (i % 7 - 3) for i in range(n)])
header = lambda v: struct.pack("<7i", dim, hidden, layers, heads, kv_heads, v, seq)
open(f"{d}/legacy", "wb").write(b"\0" + header(vocab) + floats(legacy + seq * dim // heads))
open(f"{d}/legacy-short", "wb").write(b"\0" + header(vocab) + floats(legacy))
open(f"{d}/unshared", "wb").write(b"\2" + header(-vocab) + floats(legacy + seq * dim // heads + vocab * dim))
v1 = struct.pack("<Ii7iB", 0x616B3432, 1, dim, hidden, layers, heads, kv_heads, vocab, seq, 1)
open(f"{d}/version1", "wb").write(b"\4" + v1.ljust(256, b"\0") + floats(legacy))
pieces = [b"<unk>", b"<s>", b"</s>", b"<0x0A>", b"<0xC3>", b" ", b"e", b" the", b"\xc3\xa9", b"Once"]
tok = struct.pack("<I", 8) + b"".join(struct.pack("<fI", -i, len(p)) + p for i, p in enumerate(pieces))
open(f"{d}/tokenizer-to-end", "wb").write(b"\1" + tok)
open(f"{d}/tokenizer-10", "wb").write(bytes([21]) + tok)
PY
if [[ -f ../shared/models/tok512.bin ]]; then
  { printf '\1'; head -c 4096 ../shared/models/tok512.bin; } > "$d/head-tok512"
fi
queue llama2c_fuzz "$share" "$d"

# Server request bodies: the first byte picks the endpoint (0 chat, 1 completions, 2 tokenize,
# 3 detokenize).
d=$work/server
printf '\0%s' '{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi \u00e9"}]}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,"max_tokens":16,"stop":["\n\n","END"],"seed":-1,"frequency_penalty":0.5,"presence_penalty":-0.5,"logit_bias":{"15":-100,"7":2.5},"logprobs":true,"top_logprobs":3,"response_format":{"type":"text"}}' | seed "$d" chat
printf '\0%s' '{"messages":[{"role":"user","content":"JSON please"}],"response_format":{"type":"json_object"},"max_tokens":64}' | seed "$d" chat-json
printf '\1%s' '{"prompt":"Once upon a time","max_completion_tokens":8,"logprobs":2,"echo":false,"n":1,"stop":null}' | seed "$d" completion
printf '\1%s' '{"prompt":[1,2,3,31999],"max_tokens":1e3,"seed":18446744073709551615}' | seed "$d" completion-ids
printf '\2%s' '{"content":"<s>caf\u00e9","add_special":true,"with_pieces":true}' | seed "$d" tokenize
printf '\3%s' '{"tokens":[1,2,-3,99999999999]}' | seed "$d" detokenize
queue server_request_fuzz "$share" "$d" 4096

# Tokenizer encode: needs the two vocabularies from ../shared (loaded once at start-up).
if [[ -f ../shared/models/stories260K.gguf && -f ../shared/vocab/ggml-vocab-gpt-2.gguf ]]; then
  d=$work/encode
  printf '\0Once upon a time, there was a little girl named Lily.\n' | seed "$d" spm
  printf '\6<s> caf\xc3\xa9 \xe2\x82 \xff\n\n  x' | seed "$d" spm-invalid
  printf '\1Hello world! \xe4\xbd\xa0\xe5\xa5\xbd 123 <|endoftext|>' | seed "$d" gpt2
  printf '\3<|endoftext|>\xff\xfe\xc3 \tok' | seed "$d" gpt2-invalid
  export TORCHLESS_SHARED_DIR=../shared  # read by tokenizer_encode_fuzz alone
  queue tokenizer_encode_fuzz "$share" "$d" 4096
else
  echo "fuzz_smoke: skipping tokenizer_encode_fuzz (no ../shared vocabularies)"
fi

run_queued
