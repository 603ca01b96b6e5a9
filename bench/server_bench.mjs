// Aggregate generated tokens/s and time to first token of an OpenAI-compatible server at several
// concurrencies (streamed /v1/completions, fixed prompt and length, greedy, EOS banned).
// Works against `torchless serve` and `llama-server` alike. Tokens are counted from the usage
// of the last chunk (stream_options.include_usage) where the server sends it, else as chunks
// with text (a chunk can hold several tokens, or none while a UTF-8 character is incomplete).
// Usage: node bench/server_bench.mjs URL [STREAMS=1,4,16] [TOKENS=64] [ROUNDS=1]
const [url, streamsArg = '1,4,16', tokensArg = '64', roundsArg = '1'] = process.argv.slice(2);
if (!url) throw new Error('usage: server_bench.mjs URL [STREAMS] [TOKENS] [ROUNDS]');
const tokens = Number(tokensArg);

async function one(i) {
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: `Once upon a time, story ${i}:`, max_tokens: tokens,
                           temperature: 0, stream: true, logit_bias: { 2: -100 },
                           ignore_eos: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttft = null;
  let n = 0;
  let usage = null;
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: {')) continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.usage?.completion_tokens) usage = chunk.usage.completion_tokens;
      if (chunk.choices?.[0]?.text) {
        ttft ??= performance.now() - start;
        ++n;
      }
    }
  }
  return { ttft, n: usage ?? n, counted: usage !== null ? 'usage' : 'chunks' };
}

for (let round = 0; round < Number(roundsArg); ++round) {
  for (const streams of streamsArg.split(',').map(Number)) {
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: streams }, (_, i) => one(i)));
    const seconds = (performance.now() - start) / 1000;
    const generated = results.reduce((a, r) => a + r.n, 0);
    const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
    console.log(JSON.stringify({
      streams, tokens: generated, counted: results[0].counted, seconds: +seconds.toFixed(2),
      tokens_per_s: +(generated / seconds).toFixed(2),
      ttft_ms_median: +ttfts[Math.floor(ttfts.length / 2)].toFixed(1),
      ttft_ms_max: +ttfts[ttfts.length - 1].toFixed(1),
    }));
  }
}
