// Budgets and rate limits across replicas: two `sluice serve` processes, each with its own
// SQLite store, count in one real redis-server started here (govern.backend: redis://).
// 200 concurrent requests split across both against a tag budget that allows 20 spend at
// most 20 requests' worth over both ledgers (summed here from the sim's token formulas and
// the configured prices); an rpm of 3 holds over both (the 4th is a 429 with OpenAI's
// x-ratelimit-* headers); so do a tpm (real tokens over both ledgers) and a concurrency
// cap; a replica killed mid-request holds its slot only until its lease ends; with Redis
// gone a deny replica answers 503 and an allow replica lets the request through; when
// Redis comes back the deny replica reconnects.
// The budget is a tag budget from the config, so neither store needs a shared key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSluice, runSluice, sanitizerReports, sleep } from '../cases/lib/proc.mjs';
import { simUsage } from './harness.mjs';

const PRICE = { input: 1000, output: 2000 }; // micro-USD per token
const MSGS = [{ role: 'user', content: 'hello replicas' }];
const one = (() => { const u = simUsage(MSGS); return u.prompt_tokens * PRICE.input + u.completion_tokens * PRICE.output; })();
const LIMIT = 20 * one;
const PER = (() => { const u = simUsage(MSGS); return u.prompt_tokens + u.completion_tokens; })();
const TPM = 20 * PER;
let tmp, sim, redis, redisPort, replicas = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (up) return { child, exited };
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

async function stopRedis() {
  if (!redis) return;
  const r = redis;
  redis = null;
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
  await r.exited;
}

function config(name, onError, lease = '10m') {
  return [
    'server: { workers: 4 }',
    `store: "sqlite://${path.join(tmp, `${name}.db`)}"`,
    'sim: false',
    `govern: { backend: "redis://127.0.0.1:${redisPort}/0", on_error: ${onError}, lease: ${lease} }`,
    'budgets:',
    `  - { tag: team=replicas, limit: ${(LIMIT / 1e6).toFixed(6)}usd/total }`,
    'pricing:',
    '  overrides:',
    `    - { model: sim-small, input: ${PRICE.input}, output: ${PRICE.output} }`,
    'providers:',
    `  - { name: s, kind: openai, base_url: "${sim.url}/v1" }`,
    'models:',
    '  - { name: sim-budget, provider: s, model: sim-small }',
    '  - { name: sim-rpm, provider: s, model: sim-small, limits: { rpm: 3 } }',
    '  - { name: sim-free, provider: s, model: sim-small }',
    `  - { name: sim-tpm, provider: s, model: sim-small, limits: { tpm: ${TPM} } }`,
    '  - { name: sim-conc, provider: s, model: sim-small, limits: { concurrency: 2 } }',
    '  - { name: sim-conc1, provider: s, model: sim-small, limits: { concurrency: 1 } }',
    '',
  ].join('\n');
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-govern-redis-'));
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  sim = await startSluice(['sim', '--listen', '127.0.0.1:0', '--quiet', '--threads', '2'], { name: 'sim' });
  for (const [name, onError] of [['a', 'deny'], ['b', 'allow']]) {
    const file = path.join(tmp, `${name}.yaml`);
    writeFileSync(file, config(name, onError));
    const s = await startSluice(['serve', '--config', file, '--listen', '127.0.0.1:0'], { name: `sluice serve ${name}` });
    replicas.push({ name, s, store: `sqlite://${path.join(tmp, `${name}.db`)}` });
  }
});

after(async () => {
  const exits = [];
  for (const r of replicas) exits.push([r, await r.s.stop(15000)]);
  await sim?.stop(5000);
  await stopRedis();
  for (const [r, e] of exits) {
    assert.equal(e.code, 0, `sluice serve ${r.name} exit ${JSON.stringify(e)}`);
    assert.deepEqual(sanitizerReports(r.s.stderr()), [], `sluice serve ${r.name}`);
  }
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

const client = (r, headers = {}) => new OpenAI({ baseURL: `${r.s.url}/v1`, apiKey: 'none', maxRetries: 0,
  timeout: 20000, defaultHeaders: headers });

// The ledger row of model in a replica's own store, read by `sluice cost report`.
async function ledger(r, model) {
  const out = await runSluice(['cost', 'report', '--store', r.store, '--by', 'model', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout).find((x) => x.model === model) ?? { requests: 0, cost_micros: 0 };
}

async function settledLedgers(model, requests) {
  for (let i = 0; i < 100; i++) {
    const rows = await Promise.all(replicas.map((r) => ledger(r, model)));
    if (rows.reduce((n, x) => n + x.requests, 0) >= requests) return rows;
    await sleep(100);
  }
  throw new Error(`the ledgers never held ${requests} rows for ${model}`);
}

test('200 concurrent requests over two replicas against one budget of 20: at most 20 are spent over both ledgers', async () => {
  const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) =>
    client(replicas[i % 2], { 'x-sluice-tag': 'team=replicas' })
      .chat.completions.create({ model: 'sim-budget', messages: MSGS, max_tokens: 16 })));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r) => r.status === 'rejected');
  for (const r of ok) assert.equal(r.value.choices[0].message.content, 'This is a simulated reply to: hello replicas');
  for (const r of refused) {
    assert.ok(r.reason instanceof OpenAI.RateLimitError, String(r.reason));
    assert.equal(r.reason.code, 'budget_exceeded');
    assert.match(r.reason.message, /tag:team=replicas/);
  }
  // each replica alone would admit 20: together they must not pass 20
  assert.ok(ok.length >= 10 && ok.length <= 20, `${ok.length} admitted over both replicas`);
  const rows = await settledLedgers('sim-budget', 200);
  const spent = rows.reduce((n, x) => n + x.cost_micros, 0);
  assert.equal(spent, ok.length * one, `both ledgers bill exactly the admitted requests: ${JSON.stringify(rows)}`);
  assert.ok(spent <= LIMIT, `${spent} spent of ${LIMIT}`);
  assert.ok(rows[0].cost_micros > 0 && rows[1].cost_micros > 0, 'both replicas served some');
  // the next request on either replica is refused: the spend is shared
  for (const r of replicas) {
    const e = await client(r, { 'x-sluice-tag': 'team=replicas' })
      .chat.completions.create({ model: 'sim-budget', messages: MSGS, max_tokens: 16 }).catch((x) => x);
    if (spent + one > LIMIT) assert.equal(e.code, 'budget_exceeded', String(e));
  }
});

test('requests per minute over two replicas: the 4th over both is a 429 with the x-ratelimit-* headers', async () => {
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const { response } = await client(replicas[i % 2]).chat.completions.create({ model: 'sim-rpm', messages: MSGS }).withResponse();
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
    assert.match(response.headers.get('x-ratelimit-reset-requests'), /^\d+(ms|s|m\d+s)$/);
    seen.push(response.headers.get('x-ratelimit-remaining-requests'));
  }
  assert.deepEqual(seen, ['2', '1', '0']);
  const e = await client(replicas[1]).chat.completions.create({ model: 'sim-rpm', messages: MSGS }).catch((x) => x);
  assert.ok(e instanceof OpenAI.RateLimitError, String(e));
  assert.equal(e.code, 'rate_limit_exceeded');
  assert.equal(e.type, 'requests');
  const retry = Number(e.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  assert.equal(e.headers.get('x-ratelimit-limit-requests'), '3');
  assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
  const e2 = await client(replicas[0]).chat.completions.create({ model: 'sim-rpm', messages: MSGS }).catch((x) => x);
  assert.equal(e2.code, 'rate_limit_exceeded', String(e2));
});

test('tokens per minute over two replicas under 200 concurrent requests: the real tokens over both stay within one limit', async () => {
  const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) =>
    client(replicas[i % 2]).chat.completions.create({ model: 'sim-tpm', messages: MSGS, max_tokens: 8 }).withResponse()));
  const ok = results.filter((r) => r.status === 'fulfilled');
  for (const r of results.filter((x) => x.status === 'rejected')) {
    assert.equal(r.reason.status, 429, String(r.reason));
    assert.equal(r.reason.code, 'rate_limit_exceeded');
    assert.equal(r.reason.type, 'tokens');
    assert.equal(r.reason.headers.get('x-ratelimit-limit-tokens'), String(TPM));
  }
  assert.ok(ok.length >= 5 && ok.length * PER <= TPM, `${ok.length} admitted over both, ${ok.length * PER} tokens of ${TPM}`);
  const rows = await settledLedgers('sim-tpm', 200);
  assert.equal(rows.reduce((n, x) => n + x.prompt_tokens + x.completion_tokens, 0), ok.length * PER,
    `both ledgers: ${JSON.stringify(rows)}`);
});

test('concurrency over two replicas: a cap of 2 takes two at a time over both', async () => {
  const slow = [{ role: 'user', content: 'hello @sim:ttft=800' }];
  const held = [0, 1].map((i) => client(replicas[i]).chat.completions.create({ model: 'sim-conc', messages: slow }));
  await sleep(300);
  for (const r of replicas) {
    const e = await client(r).chat.completions.create({ model: 'sim-conc', messages: MSGS }).catch((x) => x);
    assert.equal(e.status, 429, String(e));
    assert.equal(e.code, 'concurrency_limit_exceeded');
  }
  for (const h of await Promise.all(held)) assert.ok(h.choices[0].message.content);
  const again = await client(replicas[1]).chat.completions.create({ model: 'sim-conc', messages: MSGS });
  assert.ok(again.choices[0].message.content, 'settled slots come back to every replica');
});

test('a replica killed mid-request: its slot is held until its lease ends, then freed', async () => {
  // replica c admits with a 2 s lease and is killed (SIGKILL: a crash, so not checked for exit 0)
  const file = path.join(tmp, 'c.yaml');
  writeFileSync(file, config('c', 'deny', '2s'));
  const c = await startSluice(['serve', '--config', file, '--listen', '127.0.0.1:0'], { name: 'sluice serve c' });
  const t0 = Date.now();
  const doomed = client({ s: c }).chat.completions.create({ model: 'sim-conc1', messages: [{ role: 'user', content: 'hello @sim:ttft=10000' }] })
    .catch((x) => x);
  await sleep(300);
  c.child.kill('SIGKILL');
  await c.exited;
  await doomed;
  const e = await client(replicas[0]).chat.completions.create({ model: 'sim-conc1', messages: MSGS }).catch((x) => x);
  assert.equal(e.code, 'concurrency_limit_exceeded', 'the dead replica\'s slot is still held');
  await sleep(Math.max(0, 2300 - (Date.now() - t0)));
  const ok = await client(replicas[0]).chat.completions.create({ model: 'sim-conc1', messages: MSGS });
  assert.ok(ok.choices[0].message.content, 'the lease ended: the slot is free again');
});

test('Redis down: on_error deny answers 503 in the client format, allow lets it through; back up, deny reconnects', async () => {
  await stopRedis();
  const e = await client(replicas[0]).chat.completions.create({ model: 'sim-rpm', messages: MSGS }).catch((x) => x);
  assert.ok(e instanceof OpenAI.APIError, String(e));
  assert.equal(e.status, 503);
  assert.equal(e.code, 'governor_unavailable');
  assert.match(e.message, /did not answer/);
  // the Anthropic SDK gets it in its own shape
  const claude = new Anthropic({ baseURL: replicas[0].s.url, apiKey: 'none', maxRetries: 0, timeout: 10000 });
  const ae = await claude.messages.create({ model: 'sim-rpm', max_tokens: 16, messages: MSGS }).catch((x) => x);
  assert.ok(ae instanceof Anthropic.APIError, String(ae));
  assert.equal(ae.status, 503);
  assert.equal(ae.error?.type, 'error');
  assert.equal(ae.error?.error?.type, 'api_error');
  assert.match(ae.error?.error?.message, /did not answer/);
  const ok = await client(replicas[1]).chat.completions.create({ model: 'sim-rpm', messages: MSGS });
  assert.equal(ok.choices[0].message.content, 'This is a simulated reply to: hello replicas');
  // a model without limits never asks Redis
  const free = await client(replicas[0]).chat.completions.create({ model: 'sim-free', messages: MSGS });
  assert.ok(free.choices[0].message.content);
  assert.match(replicas[0].s.stderr(), /budgets: cannot connect to redis:\/\/127\.0\.0\.1/);
  redis = await startRedis(redisPort); // empty: nothing was saved
  // a's pooled connections were closed by the restart: it reconnects without a refusal
  for (let i = 0; i < 4; i++) {
    const r = await client(replicas[0], { 'x-sluice-tag': 'team=replicas' })
      .chat.completions.create({ model: 'sim-budget', messages: MSGS, max_tokens: 16 })
      .then(() => 'ok', (x) => x.code);
    assert.notEqual(r, 'governor_unavailable');
  }
  const back = await client(replicas[0]).chat.completions.create({ model: 'sim-rpm', messages: MSGS }).withResponse();
  assert.equal(back.response.headers.get('x-ratelimit-remaining-requests'), '2');
});
