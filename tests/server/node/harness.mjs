// Starts `torchless serve` on a free port and loads the openai client from the build directory
// (TORCHLESS_NODE_MODULES), for the server tests. Environment: TORCHLESS_CLI (the executable),
// TORCHLESS_MODEL (stories260K.gguf), TORCHLESS_NODE_MODULES.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

export const cli = process.env.TORCHLESS_CLI;
export const model = process.env.TORCHLESS_MODEL;
if (!cli || !model || !process.env.TORCHLESS_NODE_MODULES) {
  throw new Error('set TORCHLESS_CLI, TORCHLESS_MODEL and TORCHLESS_NODE_MODULES');
}
const require = createRequire(path.join(process.env.TORCHLESS_NODE_MODULES, 'index.js'));
export const OpenAI = require('openai');

// Resolves to { url, proc, stderr(), stop() } once the server listens.
export function startServer(args = []) {
  const proc = spawn(cli, ['serve', '-m', model, '--port', '0', '--backend', 'cpu', '--threads',
                           '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    let listening = false;
    exited.then(({ code }) => {
      if (!listening) reject(new Error(`serve exited with ${code}: ${log}`));
    });
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/on (http:\/\/[0-9.]+:\d+)/);
      if (m && !listening) {
        listening = true;
        resolve({
          url: m[1],
          proc,
          stderr: () => log,
          exited,
          stop() { proc.kill('SIGKILL'); },
        });
      }
    });
  });
}

export function client(url, apiKey = 'none') {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 60000 });
}

// What `torchless generate` prints after the prompt (greedy, the same settings as the server).
export function generateText(prompt, n) {
  const out = execFileSync(cli, ['generate', '-m', model, '-p', prompt, '-n', String(n), '--temp',
                                 '0', '--backend', 'cpu', '--threads', '1'],
                           { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  if (!out.startsWith(prompt)) throw new Error(`generate printed ${JSON.stringify(out)}`);
  return out.slice(prompt.length, -1);  // the prompt echo, then the text and one newline
}

export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);
  return { text, value };
}

// Polls until no slot is busy and nothing waits (cancellations land on the scheduler's thread).
export async function waitIdle(url, tries = 100) {
  for (let i = 0; i < tries; ++i) {
    const m = await metrics(url);
    if (m.value('torchless_slots_busy') === 0 && m.value('torchless_queue_depth') === 0 &&
        m.value('torchless_requests_accepted_total') === m.value('torchless_requests_finished_total')) {
      return m;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not become idle:\n${(await metrics(url)).text}`);
}
