#!/usr/bin/env python3
"""Aggregate generated tokens/s and time to first token of an OpenAI-compatible server.

Streams /v1/completions at several concurrencies (fixed prompt and length, greedy, EOS banned).
Works against `torchless serve` and `llama-server` alike. Tokens are counted from the usage of
the last chunk (stream_options.include_usage) where the server sends it, else as chunks with
text (a chunk can hold several tokens, or none while a UTF-8 character is incomplete).
Python 3 standard library only, so it runs on machines without Node.js or pip.
Prints one JSON line per concurrency and round.

Usage: python3 bench/server_bench.py URL [STREAMS=1,4,16] [TOKENS=64] [ROUNDS=1]
"""

import http.client
import json
import math
import sys
import threading
import time
import urllib.parse

# Seconds one socket read may block; a stuck server fails the run instead of hanging it.
READ_TIMEOUT_S = 600


def connect(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"URL must be http:// or https://, got {url!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return kind(parts.netloc, timeout=READ_TIMEOUT_S), parts.path.rstrip("/")


def sse_events(response):
    """Yields the SSE events of a streamed response as they arrive (split on blank lines)."""
    buffer = b""
    while True:
        # read1 returns what has arrived (at most one chunk) instead of waiting for 64 KiB.
        data = response.read1(65536)
        if not data:
            return
        buffer += data
        cut = buffer.find(b"\n\n")
        while cut >= 0:
            yield buffer[:cut].decode("utf-8")
            buffer = buffer[cut + 2 :]
            cut = buffer.find(b"\n\n")


def one(url, i, tokens):
    """One streamed completion: its time to first text (ms) and generated token count."""
    body = json.dumps(
        {
            "prompt": f"Once upon a time, story {i}:",
            "max_tokens": tokens,
            "temperature": 0,
            "stream": True,
            "logit_bias": {"2": -100},
            "ignore_eos": True,
            "stream_options": {"include_usage": True},
        }
    )
    start = time.perf_counter()
    connection, prefix = connect(url)
    try:
        connection.request(
            "POST", prefix + "/v1/completions", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        if response.status != 200:
            text = response.read().decode("utf-8", "replace")
            raise RuntimeError(f"HTTP {response.status}: {text}")
        ttft = None
        n = 0
        usage = None
        for event in sse_events(response):
            if not event.startswith("data: {"):
                continue
            chunk = json.loads(event[6:])
            completion_tokens = (chunk.get("usage") or {}).get("completion_tokens")
            if completion_tokens:
                usage = completion_tokens
            choices = chunk.get("choices") or []
            if choices and choices[0].get("text"):
                if ttft is None:
                    ttft = (time.perf_counter() - start) * 1000
                n += 1
    finally:
        connection.close()
    if ttft is None:
        raise RuntimeError(f"stream {i} produced no text")
    return {"ttft": ttft, "n": usage if usage is not None else n,
            "counted": "usage" if usage is not None else "chunks"}


def run_streams(url, streams, tokens):
    """Runs `streams` requests at once; returns their results in order, raising the first error."""
    results = [None] * streams
    errors = [None] * streams

    def worker(i):
        try:
            results[i] = one(url, i, tokens)
        except Exception as error:  # re-raised on the main thread below
            errors[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def number(value, digits):
    """Rounds like JavaScript's +x.toFixed(digits): whole values print without a fraction."""
    rounded = round(value, digits)
    return int(rounded) if rounded == math.floor(rounded) else rounded


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: server_bench.py URL [STREAMS] [TOKENS] [ROUNDS]")
    url = argv[1]
    streams_arg = argv[2] if len(argv) > 2 else "1,4,16"
    tokens = int(argv[3]) if len(argv) > 3 else 64
    rounds = int(argv[4]) if len(argv) > 4 else 1
    for _ in range(rounds):
        for streams in (int(s) for s in streams_arg.split(",")):
            start = time.perf_counter()
            results = run_streams(url, streams, tokens)
            seconds = time.perf_counter() - start
            generated = sum(r["n"] for r in results)
            ttfts = sorted(r["ttft"] for r in results)
            row = {
                "streams": streams,
                "tokens": generated,
                "counted": results[0]["counted"],
                "seconds": number(seconds, 2),
                "tokens_per_s": number(generated / seconds, 2),
                "ttft_ms_median": number(ttfts[len(ttfts) // 2], 1),
                "ttft_ms_max": number(ttfts[-1], 1),
            }
            print(json.dumps(row, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main(sys.argv)
