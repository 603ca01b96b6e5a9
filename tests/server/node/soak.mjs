// A bounded load and soak test of `torchless serve` from loopback: CLIENTS loops for SECONDS
// send a mix of valid requests (chat and completions, streamed or not), malformed ones, ones
// cancelled mid-way and oversized ones. Afterwards the server answers, every slot is free,
// every accepted request ended, its memory is back near its plateau, and every request got a
// complete answer or a clean error. Usage: node soak.mjs [SECONDS] [CLIENTS]
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startServer, waitIdle, metrics } from './harness.mjs';

const seconds = Number(process.argv[2] ?? 20);
const clients = Number(process.argv[3] ?? 12);
const server = await startServer(['--parallel', '4', '--max-queue', '6', '--ctx', '256',
                                  '--max-body-kib', '64']);
const rssKiB = () => Number(fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8')
  .match(/VmRSS:\s+(\d+)/)[1]);

const tally = {};
const count = (kind) => { tally[kind] = (tally[kind] ?? 0) + 1; };
const random = (n) => Math.floor(Math.random() * n);
const prompts = ['Once upon a time', 'Lily', 'The dog ran', 'One day, a big'];

function post(path, body, signal) {
  return fetch(server.url + path, { method: 'POST', body, signal,
                                    headers: { 'Content-Type': 'application/json' } });
}

// A clean error: a 4xx or 503 (with Retry-After) and an OpenAI error body.
async function expectError(res, what) {
  const body = await res.json();
  assert.ok(res.status >= 400 && res.status < 500 || res.status === 503, `${what}: ${res.status}`);
  if (res.status === 503) assert.ok(res.headers.get('retry-after'), what);
  assert.equal(typeof body.error.message, 'string', what);
  count(`error ${res.status}`);
}

async function valid() {
  const stream = random(2) === 0;
  const chat = random(2) === 0;
  const body = { max_tokens: 1 + random(60), temperature: random(2), stream, seed: random(1000) };
  if (chat) body.messages = [{ role: 'user', content: prompts[random(prompts.length)] }];
  else body.prompt = prompts[random(prompts.length)];
  const res = await post(chat ? '/v1/chat/completions' : '/v1/completions', JSON.stringify(body));
  if (res.status !== 200) return expectError(res, 'valid request');
  const text = await res.text();
  if (stream) {
    assert.ok(text.endsWith('data: [DONE]\n\n'), 'a stream ends with [DONE]');
    const events = text.split('\n\n').filter((e) => e.startsWith('data: {'));
    const last = JSON.parse(events[events.length - 1].slice(6));
    assert.ok(['stop', 'length'].includes(last.choices[0].finish_reason), text.slice(-300));
  } else {
    const r = JSON.parse(text);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason), text);
    assert.ok(r.usage.completion_tokens <= body.max_tokens);
  }
  count(`ok ${chat ? 'chat' : 'completion'}${stream ? ' stream' : ''}`);
}

async function malformed() {
  const bodies = ['{"messages": [', '[]', '{"messages": [{"role": 3}]}', '{"prompt": "x", "top_p": 9}',
                  '{"prompt": {"a": 1}}', Buffer.from('{"prompt": "\xc3\x28"}', 'latin1'),
                  '{"prompt": "x", "logit_bias": {"99999999": 1}}', '{"prompt": [1, 99999999]}'];
  await expectError(await post(random(2) ? '/v1/completions' : '/v1/chat/completions',
                               bodies[random(bodies.length)]), 'malformed');
}

async function oversized() {
  const res = random(2) === 0
      ? await post('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(100 << 10) }))
      : await post('/v1/completions', JSON.stringify({ prompt: 'Once upon a time '.repeat(100) }));
  await expectError(res, 'oversized');
}

// Closes the connection mid-request (node:http rather than fetch, whose abort can leave a
// promise unsettled once the body is being read).
function cancelled() {
  const body = JSON.stringify({ prompt: 'Once', max_tokens: 200, stream: random(2) === 0,
                                logit_bias: { 2: -100 } });
  return new Promise((resolve) => {
    const req = http.request(`${server.url}/v1/completions`, { method: 'POST' }, (res) => {
      res.on('data', () => {});
      res.on('end', () => count('finished before the cancel'));
    });
    req.on('error', () => {});
    req.on('close', resolve);
    setTimeout(() => {
      if (!req.destroyed) count('cancelled');
      req.destroy();
    }, 5 + random(200));
    req.end(body);
  });
}

const kinds = [valid, valid, valid, malformed, oversized, cancelled, cancelled];
// Names what each client is doing, so that a request that never ends is reported.
const busy = new Array(clients).fill('');
const watchdog = setTimeout(async () => {
  console.error(`stuck: ${JSON.stringify(busy)}\n${(await metrics(server.url)).text}`);
  server.stop();
  process.exit(1);
}, (seconds + 20) * 1000);
await valid();
const plateau = rssKiB();
const end = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: clients }, async (_, i) => {
  while (Date.now() < end) {
    const kind = kinds[random(kinds.length)];
    busy[i] = kind.name;
    await kind();
  }
  busy[i] = '';
}));
clearTimeout(watchdog);

const idle = await waitIdle(server.url);
assert.equal((await fetch(`${server.url}/health`)).status, 200);
await valid();
const rss = rssKiB();
console.log(JSON.stringify({ tally, plateau_kib: plateau, rss_kib: rss,
                             accepted: idle.value('torchless_requests_accepted_total'),
                             cancelled: idle.value('torchless_requests_cancelled_total') }));
// The KV caches are allocated up front, so what grows is per-request garbage only.
assert.ok(rss < plateau + 64 * 1024, `memory grew from ${plateau} KiB to ${rss} KiB`);
server.stop();
