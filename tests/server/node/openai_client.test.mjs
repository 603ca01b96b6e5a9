// `torchless serve` driven by the official openai client: chat and completions, streamed and
// not, 8 concurrent streams, greedy text equal to `torchless generate`'s, errors in OpenAI's
// shapes, the API key, and a graceful SIGTERM.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, generateText, waitIdle, OpenAI } from './harness.mjs';

const server = await startServer(['--parallel', '4']);
const openai = client(server.url);
test.after(() => server.stop());

const greedy = { temperature: 0, max_tokens: 40 };

async function streamText(stream) {
  let text = '';
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta?.content ?? chunk.choices[0]?.text ?? '';
  }
  return { text, chunks };
}

test('lists the model', async () => {
  const models = await openai.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, 'stories260K.gguf');
  assert.equal(models.data[0].object, 'model');
});

test('greedy completion equals torchless generate', async () => {
  const prompt = 'Once upon a time';
  const r = await openai.completions.create({ model: 'x', prompt, ...greedy });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices[0].text, generateText(prompt, 40));
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  const streamed = await streamText(await openai.completions.create(
      { model: 'x', prompt, ...greedy, stream: true }));
  assert.equal(streamed.text, r.choices[0].text);
});

test('chat completion, whole and streamed with usage', async () => {
  const messages = [{ role: 'system', content: 'Tell a story.' }, { role: 'user', content: 'Lily' }];
  const r = await openai.chat.completions.create({ model: 'x', messages, ...greedy });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(r.choices[0].message.content.length > 0);
  const { text, chunks } = await streamText(await openai.chat.completions.create(
      { model: 'x', messages, ...greedy, stream: true, stream_options: { include_usage: true } }));
  assert.equal(text, r.choices[0].message.content);
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, r.usage);
  assert.equal(chunks[chunks.length - 2].choices[0].finish_reason, r.choices[0].finish_reason);
});

test('8 concurrent streams each get the text they get alone', async () => {
  const prompts = ['Once upon a time', 'Lily', 'The dog', 'One day', 'Tom had a', 'The sun',
                   'A little bird', 'Sam and'];
  const alone = [];
  for (const prompt of prompts) {
    alone.push((await openai.completions.create({ model: 'x', prompt, ...greedy })).choices[0].text);
  }
  const together = await Promise.all(prompts.map(async (prompt) => (await streamText(
      await openai.completions.create({ model: 'x', prompt, ...greedy, stream: true }))).text));
  assert.deepEqual(together, alone);
  await waitIdle(server.url);
});

test('the same seed gives the same sample', async () => {
  const req = { model: 'x', prompt: 'Once', max_tokens: 30, temperature: 1, seed: 1234 };
  const a = await openai.completions.create(req);
  const b = await openai.completions.create(req);
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test('a stop string ends the text before it', async () => {
  const prompt = 'Once upon a time';
  const full = generateText(prompt, 40);
  const stop = full.slice(10, 14);
  const r = await openai.completions.create({ model: 'x', prompt, ...greedy, stop: [stop] });
  assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('logprobs in the chat shape', async () => {
  const r = await openai.chat.completions.create({
    model: 'x', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0,
    logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token);  // greedy takes the most likely
    assert.ok(t.logprob <= 0);
  }
});

test('response_format json_object: the content is a JSON object', async () => {
  const messages = [{ role: 'user', content: 'Tell me about Lily as JSON' }];
  // stories260K knows no JSON: alone it writes strings and whitespace until its short context
  // (128) ends. Biases towards '}' and '"', against ',' and whitespace (tokens 128, 436, 432, 13,
  // 410 of its vocabulary) let most objects close in time; the constraint does the rest.
  const logit_bias = { 128: 6, 436: 2, 432: -8, 13: -6, 410: -4 };
  let complete = 0;
  for (const [temperature, seed] of [[0, 1], [0.8, 1], [0.8, 2], [1.2, 3]]) {
    const req = { model: 'x', messages, temperature, seed, max_tokens: 90, logit_bias,
                  response_format: { type: 'json_object' } };
    const r = await openai.chat.completions.create(req);
    const { content } = r.choices[0].message;
    const streamed = await streamText(await openai.chat.completions.create(
        { ...req, stream: true }));
    assert.equal(streamed.text, content);  // the same seed, the same constrained text
    if (r.choices[0].finish_reason === 'stop') {
      ++complete;
      const value = JSON.parse(content);
      assert.equal(typeof value, 'object');
      assert.ok(value !== null && !Array.isArray(value), content);
    } else {
      assert.equal(r.choices[0].finish_reason, 'length');  // cut by max_tokens: not JSON yet
      assert.equal(r.usage.completion_tokens, 90);
      assert.throws(() => JSON.parse(content));
    }
  }
  assert.ok(complete >= 2, `${complete} of 4 objects closed within max_tokens`);
  // max_tokens reached before the object closes: finish_reason length, a prefix of an object.
  const short = await openai.chat.completions.create(
      { model: 'x', messages, temperature: 0, max_tokens: 2,
        response_format: { type: 'json_object' } });
  assert.equal(short.choices[0].finish_reason, 'length');
  assert.match(short.choices[0].message.content, /^\s*(\{[\s\S]*)?$/);
  assert.throws(() => JSON.parse(short.choices[0].message.content));
  await assert.rejects(openai.chat.completions.create(
      { model: 'x', messages, response_format: { type: 'json_schema',
        json_schema: { name: 'x', schema: { type: 'object' } } } }),
  (e) => e.status === 400 && e.param === 'response_format.type' && /not supported/.test(e.message));
  await assert.rejects(openai.completions.create(
      { model: 'x', prompt: 'x', response_format: { type: 'json_object' } }),
  (e) => e.status === 400 && e.param === 'response_format');
});

test('errors come in OpenAI shapes', async () => {
  await assert.rejects(openai.chat.completions.create(
      { model: 'x', messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature' &&
         e.type === 'invalid_request_error');
  await assert.rejects(openai.completions.create(
      { model: 'x', prompt: 'Once '.repeat(400), max_tokens: 5 }),
  (e) => e.status === 400 && e.code === 'context_length_exceeded');
  const raw = async (path, init) => {
    const res = await fetch(server.url + path, init);
    return { status: res.status, body: await res.json() };
  };
  const post = (path, body) => raw(path, { method: 'POST', body });
  for (const [path, body, param] of [
    ['/v1/chat/completions', '{"messages": [', null],
    ['/v1/chat/completions', '{}', 'messages'],
    ['/v1/chat/completions', '{"messages": [{"role": "user", "content": 7}]}', 'messages[0].content'],
    ['/v1/completions', '{"prompt": "x", "max_tokens": -4}', 'max_tokens'],
    ['/v1/completions', '{"prompt": "x", "n": 3}', 'n'],
    ['/tokenize', '{"content": 1}', 'content'],
  ]) {
    const r = await post(path, body);
    assert.equal(r.status, 400, body);
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.equal(r.body.error.param, param);
  }
  const utf8 = await post('/v1/completions', Buffer.from('{"prompt": "\xff"}', 'latin1'));
  assert.equal(utf8.status, 400);
  assert.equal((await raw('/v1/nothing')).status, 404);
  assert.equal((await raw('/v1/completions')).status, 405);
  assert.equal((await raw('/health', { method: 'DELETE' })).status, 405);
  const big = await post('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(5 << 20) }));
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, 'body_too_large');
  await waitIdle(server.url);
});

test('tokenize and detokenize round trip', async () => {
  const post = async (path, body) => (await fetch(server.url + path,
      { method: 'POST', body: JSON.stringify(body) })).json();
  const { tokens } = await post('/tokenize', { content: 'Once upon a time' });
  assert.ok(tokens.length > 0);
  assert.equal((await post('/detokenize', { tokens })).content, 'Once upon a time');
});

test('an API key is required when set', async () => {
  const keyed = await startServer(['--api-key', 'sesame']);
  try {
    await assert.rejects(client(keyed.url, 'wrong').models.list(),
                         (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
    assert.equal((await client(keyed.url, 'sesame').models.list()).data.length, 1);
    assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
  } finally {
    keyed.stop();
  }
});

test('SIGTERM finishes the streams in flight, then exits', async () => {
  const s = await startServer();
  const stream = await client(s.url).completions.create(
      { model: 'x', prompt: 'Once', max_tokens: 100, temperature: 0, stream: true });
  let text = '';
  let finish = null;
  let signalled = false;
  for await (const chunk of stream) {
    if (!signalled) {
      s.proc.kill('SIGTERM');
      signalled = true;
    }
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.ok(['length', 'stop'].includes(finish));
  assert.deepEqual(await s.exited, { code: 0, signal: null });
});
