// Routing scenarios (docs/routing.md) through the official `openai` SDK against sluice in
// front of `sluice sim`: one test per behaviour: fall-over on a dead provider, 429 with
// Retry-After, 529/503, stalls, resets before and after the first byte, breakers (open,
// half-open probe in the mode it opened on, recovery, scattered errors), one retry budget
// across hops, context-window and capability skips, tiers, weighted, fallback, pinning,
// cost, latency.
//
// Every deployment is a distinct provider (so /metrics' sluice_upstream_errors_total{provider}
// counts its failed attempts) and a distinct upstream model name (the sim echoes it in
// `model`, so the reply says which deployment answered). Sim A counts every upstream attempt
// (its "sim: POST" log lines); sim B is slow (300 ms to the first byte). The SDK never
// retries (maxRetries: 0): every retry seen is sluice's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startSluice, runSluice, sanitizerReports, sleep, waitFor } from '../cases/lib/proc.mjs';
import { simReply } from './harness.mjs';

const T = { timeout: 20000 };
const q = JSON.stringify;
let tmp, simA, simB, serve, client, base;
// A provider that resets (RST) every connection as soon as a request arrives: nothing is
// ever answered, so no connection to it is ever reused, and it counts what it received.
let rst, rstRequests = 0;
let junk, junkRequests = 0; // answers every chat request with text where JSON was asked
let limited; // answers 429 with only OpenAI's reset header: no Retry-After
let nonce = 0;
// A unique message text per request: the sim's fail_times counts per message text.
const uniq = (s) => `${s} n${process.pid}x${++nonce}x${Date.now()}`;
const user = (content) => ({ role: 'user', content });

async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

const OFF = 'breaker: { consecutive: 0, min_requests: 1000000 }';

// [client name, provider target ('A' | 'B' | 'dead'), extra model keys, extra provider keys]
const DEPLOYMENTS = [
  ['dn-dead', 'dead'], ['dn-ok', 'A'],
  ['rl-a', 'A'], ['rl-b', 'A'], ['rl-solo', 'A'],
  ['ov-a', 'A'], ['ov-b', 'A'],
  ['st-a', 'A', '', 'first_byte_timeout: 250ms'], ['st-b', 'A'],
  ['rs-a', 'A'], ['rs-b', 'A'],
  ['rz-a', 'R'], ['rz-b', 'A'], ['hr', 'A'],
  ['bd-dead', 'dead'], ['bd-ok', 'A'],
  ['bp-a', 'A'], ['bp-b', 'A'],
  ['sc-a', 'A'], ['sc-b', 'A'],
  ['bu-a', 'A'], ['bu-b', 'A'], ['bu-c', 'A'],
  ['bv-a', 'A'], ['bv-b', 'A'], ['bv-dead', 'dead'],
  ['cx-small', 'A', 'context_window: 64'], ['cx-big', 'A', 'context_window: 100000'],
  ['t-simple', 'A', 'capabilities: [json]'], ['t-medium', 'A', 'capabilities: [tools, json]'],
  ['t-complex', 'A'], ['t-long', 'A'],
  ['es-cheap', 'J'], ['es-strong', 'A'],
  ['lim-a', 'L'], ['lim-b', 'A'],
  ['hc-dead', 'dead'], ['hc-ok', 'A'],
  ['w-3', 'A'], ['w-1', 'A'],
  ['fb-a', 'A'], ['fb-b', 'A'], ['fb-c', 'A'],
  ['c-exp', 'A', 'price_in: 5, price_out: 15'], ['c-free', 'A'],
  ['c-cheap', 'A', 'price_in: 0.1, price_out: 0.2'], ['c-mid', 'A', 'price_in: 1, price_out: 2'],
  ['c-in', 'A', 'price_in: 0.1, price_out: 10'], ['c-out', 'A', 'price_in: 5, price_out: 0.5'],
  ['l-slow', 'B'], ['l-fast', 'A'],
  ['ls-slow', 'B'], ['ls-fast', 'A'],
];

const GROUPS = [
  `{ name: g-down, deployments: [dn-dead, dn-ok], ${OFF} }`,
  '{ name: g-rl, deployments: [rl-a, rl-b] }',
  '{ name: g-rl-solo, deployments: [rl-solo] }',
  `{ name: g-ov, deployments: [ov-a, ov-b], ${OFF} }`,
  `{ name: g-stall, deployments: [st-a, st-b], ${OFF} }`,
  `{ name: g-reset, deployments: [rs-a, rs-b], ${OFF} }`,
  `{ name: g-rst, deployments: [rz-a, rz-b], ${OFF} }`,
  '{ name: g-brdead, deployments: [bd-dead, bd-ok], breaker: { consecutive: 3, cooldown: 2s, min_requests: 1000000 } }',
  '{ name: g-probe, deployments: [bp-a, bp-b], retries: 0, breaker: { consecutive: 3, cooldown: 2s, min_requests: 1000000 } }',
  '{ name: g-scatter, deployments: [sc-a, sc-b], retries: 0, breaker: { window: 30s, min_requests: 10, error_rate: 0.5, consecutive: 3, cooldown: 10s } }',
  `{ name: g-budget, deployments: [bu-a, bu-b, bu-c], retries: 1, ${OFF} }`,
  `{ name: g-budget3, deployments: [bv-a, bv-b, bv-dead], retries: 2, ${OFF} }`,
  '{ name: g-ctx, deployments: [cx-small, cx-big] }',
  '{ name: g-health, deployments: [hc-dead, hc-ok], health_check: { interval: 200ms, timeout: 1s }, breaker: { consecutive: 3, cooldown: 60s } }',
  `{ name: g-limits, deployments: [lim-a, lim-b], retries: 2, ${OFF} }`,
  '{ name: g-escalate, strategy: tiers, tiers: { simple: [es-cheap], medium: [es-strong], complex: [es-strong], long: [es-strong] }, retries: 2 }',
  '{ name: g-tiers, strategy: tiers, tiers: { simple: [t-simple], medium: [t-medium], complex: [t-complex], long: [t-long] }, tier_words: [40, 400, 4000] }',
  '{ name: g-w, strategy: weighted, deployments: [w-3, w-1], weights: [3, 1] }',
  '{ name: g-fb, strategy: fallback, deployments: [fb-a, fb-b, fb-c] }',
  '{ name: g-cost, strategy: cost, deployments: [c-exp, c-free, c-cheap, c-mid] }',
  '{ name: g-cost2, strategy: cost, deployments: [c-in, c-out] }',
  '{ name: g-lat, strategy: latency, deployments: [l-slow, l-fast] }',
  '{ name: g-lat-stream, strategy: latency, deployments: [ls-slow, ls-fast] }',
];

const up = (name) => `up-${name}`; // the upstream model name of a deployment

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-routing-'));
  simA = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '0', '--chunk-delay-ms', '1'], { name: 'sim A' });
  simB = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '300', '--latency-ms', '300', '--chunk-delay-ms', '1', '--quiet'], { name: 'sim B (slow)' });
  const dead = await closedPort();
  rst = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => { rstRequests++; sock.resetAndDestroy(); });
  });
  await new Promise((r) => rst.listen(0, '127.0.0.1', r));
  junk = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      junkRequests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'junk', object: 'chat.completion', created: 1, model: up('es-cheap'),
        choices: [{ index: 0, message: { role: 'assistant', content: 'Sure! Here it is: {oops' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 } }));
    });
  });
  await new Promise((r) => junk.listen(0, '127.0.0.1', r));
  limited = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(429, { 'content-type': 'application/json', 'x-ratelimit-reset-requests': '6s' });
      res.end(JSON.stringify({ error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
    });
  });
  await new Promise((r) => limited.listen(0, '127.0.0.1', r));
  const target = { A: `${simA.url}/v1`, B: `${simB.url}/v1`, dead: `http://127.0.0.1:${dead}/v1`, R: `http://127.0.0.1:${rst.address().port}/v1`, J: `http://127.0.0.1:${junk.address().port}/v1`, L: `http://127.0.0.1:${limited.address().port}/v1` };
  const cfg = [
    'server: { workers: 2 }',
    `store: ${q(`sqlite://${path.join(tmp, 'sluice.db')}`)}`,
    'upstream: { connect_timeout: 2s, first_byte_timeout: 5s, idle_timeout: 3s, total_timeout: 20s }',
    'sim: false',
    'providers:',
    ...DEPLOYMENTS.map(([n, t, , pk]) => `  - { name: p-${n}, kind: openai, base_url: ${q(target[t])}, api_key: k${pk ? `, ${pk}` : ''} }`),
    'models:',
    ...DEPLOYMENTS.map(([n, , mk]) => `  - { name: ${n}, provider: p-${n}, model: ${up(n)}${mk ? `, ${mk}` : ''} }`),
    'groups:',
    ...GROUPS.map((g) => `  - ${g}`),
    '',
  ].join('\n');
  const cfgPath = path.join(tmp, 'sluice.yaml');
  writeFileSync(cfgPath, cfg);
  const chk = await runSluice(['config', 'check', cfgPath]);
  assert.equal(chk.code, 0, `config check: ${chk.stderr}\n${cfg}`);
  serve = await startSluice(['serve', '--config', cfgPath, '--listen', '127.0.0.1:0'], { name: 'sluice serve' });
  base = serve.url;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
});

after(async () => {
  await serve?.stop(10000);
  await simA?.stop(5000);
  await simB?.stop(5000);
  await new Promise((r) => (rst ? rst.close(r) : r()));
  await new Promise((r) => (junk ? junk.close(r) : r()));
  await new Promise((r) => (limited ? limited.close(r) : r()));
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

const tail = () => `\n--- sluice serve stderr ---\n${serve.stderr().slice(-3000)}`;

// ---- observation helpers ---------------------------------------------------------------

// Upstream attempts sim A has received so far (one log line each).
const hitsNow = () => (simA.stderr().match(/sim: POST \/v1\/chat\/completions/g) ?? []).length;
// Waits until sim A's log shows at least `want` attempts since `from`, then a little more,
// so an extra attempt would be seen too; returns the count.
async function hitsSince(from, want) {
  await waitFor(() => hitsNow() - from >= want, 3000, 20);
  await sleep(150);
  return hitsNow() - from;
}

async function upstreamErrors() {
  const r = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  const by = {};
  for (const m of text.matchAll(/^sluice_upstream_errors_total\{provider="([^"]+)",kind="([^"]+)"\} (\d+)$/gm)) {
    by[m[1]] = (by[m[1]] ?? 0) + Number(m[3]);
  }
  return by;
}
const errs = (by, dep) => by[`p-${dep}`] ?? 0;

async function deployment(name) {
  const r = await fetch(`${base}/admin/health`, { signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200);
  const j = await r.json();
  return j.deployments.find((d) => d.model === name);
}

async function chat(model, content, opts = {}, reqOpts = {}) {
  const t0 = Date.now();
  const r = await client.chat.completions.create({ model, messages: [user(content)], ...opts }, { signal: AbortSignal.timeout(15000), ...reqOpts });
  return { r, ms: Date.now() - t0 };
}

async function chatStream(model, content, opts = {}, reqOpts = {}) {
  const t0 = Date.now();
  const stream = await client.chat.completions.create(
    { model, messages: [user(content)], stream: true, stream_options: { include_usage: true }, ...opts },
    { signal: AbortSignal.timeout(15000), ...reqOpts });
  let text = '', models = new Set(), finish = null, usage = null, error = null;
  try {
    for await (const chunk of stream) {
      models.add(chunk.model);
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
  } catch (e) { error = e; }
  return { text, models: [...models], finish, usage, error, ms: Date.now() - t0 };
}

async function chatError(model, content, opts = {}, reqOpts = {}) {
  const t0 = Date.now();
  try {
    const r = await client.chat.completions.create({ model, messages: [user(content)], ...opts }, { signal: AbortSignal.timeout(15000), ...reqOpts });
    assert.fail(`expected an error, got 200 from ${r.model}: ${JSON.stringify(r).slice(0, 300)}`);
  } catch (e) {
    if (!(e instanceof OpenAI.APIError) || e.status === undefined) throw e;
    return { e, ms: Date.now() - t0 };
  }
}

const longText = (words) => Array.from({ length: words }, (_, i) => `river${i % 10}`).join(' ');

// ---- 1. provider down ------------------------------------------------------------------

test('provider down (connection refused): falls over to the next deployment, non-stream and stream', T, async () => {
  const e0 = await upstreamErrors();
  const h0 = hitsNow();
  const msg = uniq('anyone home?');
  const { r } = await chat('g-down', msg);
  assert.equal(r.model, up('dn-ok'), 'answered by the healthy deployment');
  assert.equal(r.choices[0].message.content, simReply([user(msg)]));
  assert.equal(await hitsSince(h0, 1), 1, 'exactly one attempt reached the healthy deployment');

  const msg2 = uniq('stream me anyway');
  const s = await chatStream('g-down', msg2);
  assert.equal(s.error, null, `stream failed: ${s.error?.message}`);
  assert.deepEqual(s.models, [up('dn-ok')]);
  assert.equal(s.text, simReply([user(msg2)]));
  assert.equal(s.finish, 'stop');
  assert.ok(s.usage, 'usage chunk');
  const e1 = await upstreamErrors();
  // docs/routing.md: a connect error is retried once on the same deployment, then the next
  assert.equal(errs(e1, 'dn-dead') - errs(e0, 'dn-dead'), 4, 'two connect attempts on the dead provider per request');
  assert.equal(errs(e1, 'dn-ok') - errs(e0, 'dn-ok'), 0);
});

// ---- 2. 429 with Retry-After ------------------------------------------------------------

test('429 with Retry-After on the first deployment: 200 from the next at once; the deployment stays rate limited until the reset', T, async () => {
  const e0 = await upstreamErrors();
  const h0 = hitsNow();
  const { r, ms } = await chat('g-rl', uniq('limit me @sim:fail_times=1 @sim:status=429 @sim:retry_after=1'));
  const t429 = Date.now();
  assert.equal(r.model, up('rl-b'), 'the next deployment answered');
  assert.ok(ms < 800, `took ${ms} ms: the fall-over after a 429 must not wait for Retry-After`);
  assert.equal(await hitsSince(h0, 2), 2, 'one 429, one success: the SDK (maxRetries 0) did not retry');
  const e1 = await upstreamErrors();
  assert.equal(errs(e1, 'rl-a') - errs(e0, 'rl-a'), 1);

  const d = await deployment('rl-a');
  assert.ok(d.rate_limited_for_ms > 0, `rl-a is marked rate limited: ${JSON.stringify(d)}`);
  assert.equal(d.breaker, 'closed', '429 is not a breaker failure');
  assert.equal(d.consecutive_failures, 0, '429 is not a breaker failure');
  const h1 = hitsNow();
  const { r: r2 } = await chat('g-rl', uniq('while limited'));
  assert.equal(r2.model, up('rl-b'), 'rl-a is skipped while rate limited');
  assert.equal(await hitsSince(h1, 1), 1, 'no attempt on the rate-limited deployment');

  await sleep(Math.max(0, 1150 - (Date.now() - t429)));
  const { r: r3 } = await chat('g-rl', uniq('after the reset'));
  assert.equal(r3.model, up('rl-a'), 'after Retry-After passed, rl-a takes traffic again');
});

test('429 with Retry-After and no other deployment: sluice waits for the reset and retries (200)', T, async () => {
  const h0 = hitsNow();
  const { r, ms } = await chat('g-rl-solo', uniq('wait for me @sim:fail_times=1 @sim:status=429 @sim:retry_after=1'));
  assert.equal(r.model, up('rl-solo'));
  assert.ok(ms >= 950, `answered after ${ms} ms: the retry should have waited Retry-After (1 s)`);
  assert.equal(await hitsSince(h0, 2), 2);
});

test('429 that persists: retries + 1 attempts, then RateLimitError with Retry-After', T, async () => {
  await sleep(1100); // rl-solo's mark from the previous test ends
  const h0 = hitsNow();
  const { e, ms } = await chatError('g-rl-solo', uniq('always limited @sim:status=429 @sim:retry_after=1'));
  assert.ok(e instanceof OpenAI.RateLimitError, `got ${e.constructor.name} ${e.status}: ${e.message}`);
  assert.equal(e.status, 429);
  assert.ok(e.headers?.get('retry-after'), 'Retry-After reaches the client');
  assert.ok(ms < 5000, `took ${ms} ms`);
  assert.equal(await hitsSince(h0, 3), 3, 'retries: 2 (default) -> 3 attempts');
});

// ---- 3. 529 / 503 ---------------------------------------------------------------------

test('529 once: retried on the same deployment and answered', T, async () => {
  const h0 = hitsNow();
  const { r } = await chat('g-ov', uniq('overloaded once @sim:fail_times=1 @sim:status=529'));
  assert.equal(r.model, up('ov-a'), 'a retry on the same deployment succeeded');
  assert.equal(await hitsSince(h0, 2), 2);
});

test('503 twice: retried once, then moved on to the next deployment (non-stream and stream)', T, async () => {
  const e0 = await upstreamErrors();
  const h0 = hitsNow();
  const { r } = await chat('g-ov', uniq('unavailable twice @sim:fail_times=2 @sim:status=503'));
  assert.equal(r.model, up('ov-b'));
  assert.equal(await hitsSince(h0, 3), 3);

  const h1 = hitsNow();
  const msg = uniq('overloaded stream @sim:fail_times=2 @sim:status=529');
  const s = await chatStream('g-ov', msg);
  assert.equal(s.error, null, `stream failed: ${s.error?.message}`);
  assert.deepEqual(s.models, [up('ov-b')]);
  assert.equal(s.text, simReply([user(msg)]));
  assert.equal(await hitsSince(h1, 3), 3);
  const e1 = await upstreamErrors();
  assert.equal(errs(e1, 'ov-a') - errs(e0, 'ov-a'), 4);
  assert.equal(errs(e1, 'ov-b') - errs(e0, 'ov-b'), 0);
});

// ---- 4. stall before the first byte --------------------------------------------------------

test('stall before the first byte past first_byte_timeout: moves on, the client gets 200 (non-stream and stream)', T, async () => {
  const e0 = await upstreamErrors();
  const msg = uniq('slow to start @sim:stall=1000');
  const { r, ms } = await chat('g-stall', msg);
  assert.equal(r.model, up('st-b'), 'the deployment with the longer first-byte timeout answered');
  assert.equal(r.choices[0].message.content, simReply([user(msg)]));
  assert.ok(ms >= 1000 && ms < 5000, `took ${ms} ms`);

  const msg2 = uniq('slow stream @sim:stall=1000');
  const s = await chatStream('g-stall', msg2);
  assert.equal(s.error, null, `stream failed: ${s.error?.message}`);
  assert.deepEqual(s.models, [up('st-b')]);
  assert.equal(s.text, simReply([user(msg2)]));
  const e1 = await upstreamErrors();
  assert.equal(errs(e1, 'st-a') - errs(e0, 'st-a'), 4, 'two timed-out attempts on st-a per request');
});

// ---- 5. resets -------------------------------------------------------------------------

test('reset mid-stream after content was sent: the stream ends with an error, no fall-over', T, async () => {
  const h0 = hitsNow();
  const msg = uniq('start then reset @sim:reset_after=2');
  const s = await chatStream('g-reset', msg);
  assert.ok(s.error instanceof OpenAI.APIError, `the stream should end with an error event, got ${s.error?.constructor?.name}: ${s.error?.message}; text ${q(s.text)}`);
  assert.ok(s.text.length > 0, 'content reached the client first');
  assert.ok(simReply([user(msg)]).startsWith(s.text), `the text is a prefix of one reply, not two spliced: ${q(s.text)}`);
  assert.notEqual(s.text, simReply([user(msg)]));
  assert.deepEqual(s.models, [up('rs-a')]);
  assert.equal(await hitsSince(h0, 1), 1, 'no other attempt once bytes reached the client');
});

test('reset before any byte: falls over to the next deployment (stream and non-stream)', T, async () => {
  // rz-a resets every connection once the request arrived: retried once there, then rz-b
  let r0 = rstRequests;
  const h0 = hitsNow();
  const msg = uniq('reset early');
  const s = await chatStream('g-rst', msg);
  assert.equal(s.error, null, `stream failed: ${s.error?.message}`);
  assert.deepEqual(s.models, [up('rz-b')]);
  assert.equal(s.text, simReply([user(msg)]));
  assert.equal(s.finish, 'stop');
  assert.equal(rstRequests - r0, 2, 'the resetting deployment got the request twice (one retry on the same), then the next one');
  assert.equal(await hitsSince(h0, 1), 1);

  r0 = rstRequests;
  const msg2 = uniq('reset early whole');
  const { r } = await chat('g-rst', msg2);
  assert.equal(r.model, up('rz-b'));
  assert.equal(r.choices[0].message.content, simReply([user(msg2)]));
  assert.equal(rstRequests - r0, 2);
});

test('reset before any byte with @sim:fail_times=2: retried on the same deployment, then answered', T, async () => {
  // keep-alive connections to the sim in every worker's pool (the first attempt reuses one)
  await Promise.all(Array.from({ length: 8 }, (_, i) => chat('g-reset', uniq(`warm ${i}`))));
  const h0 = hitsNow();
  const msg = uniq('reset twice @sim:fail_times=2 @sim:reset');
  const s = await chatStream('g-reset', msg);
  assert.equal(s.error, null, `stream failed: ${s.error?.message}`);
  const n = await hitsSince(h0, 3);
  // Both resets land on rs-a's attempts. libcurl sends a request once more on a fresh
  // connection when a reused one dies before any byte (docs/routing.md), so the second
  // reset can be that re-send and rs-a's retry then answers; otherwise rs-b does.
  assert.ok(s.models.length === 1 && [up('rs-a'), up('rs-b')].includes(s.models[0]),
    `answered by ${s.models}`);
  assert.equal(n, 3, `${n} upstream requests: two resets and the answer`);
});

test('a model named directly whose upstream resets: one attempt by sluice, each answered 502 (libcurl re-sends on dead reused connections)', T, async () => {
  // keep-alive connections to the sim in every worker's pool, so the next request reuses one
  await Promise.all(Array.from({ length: 8 }, (_, i) => chat('hr', uniq(`warm ${i}`))));
  const h0 = hitsNow();
  for (let i = 0; i < 4; i++) {
    const { e } = await chatError('hr', uniq(`reset direct ${i} @sim:reset`));
    assert.equal(e.status, 502);
  }
  const n = await hitsSince(h0, 4);
  // No retry by sluice; libcurl re-sends a request whose reused connection died before
  // any byte, on another connection, at most 5 times (docs/routing.md).
  assert.ok(n >= 4 && n <= 4 * 6, `4 client requests for a model tried once reached the upstream ${n} times`);
});

// ---- 6. breakers -----------------------------------------------------------------------

test('breaker: 3 consecutive failures open it; later requests skip the dead deployment without an attempt; one probe after the cooldown', T, async () => {
  const e0 = await upstreamErrors();
  const r1 = await chat('g-brdead', uniq('first'));
  assert.equal(r1.r.model, up('bd-ok'));
  const e1 = await upstreamErrors();
  assert.equal(errs(e1, 'bd-dead') - errs(e0, 'bd-dead'), 2, 'tried twice (retry on the same deployment)');
  const r2 = await chat('g-brdead', uniq('second'));
  assert.equal(r2.r.model, up('bd-ok'));
  const e2 = await upstreamErrors();
  assert.equal(errs(e2, 'bd-dead') - errs(e0, 'bd-dead'), 3, 'the third failure opened it: the retry was skipped');
  const tOpen = Date.now();
  let d = await deployment('bd-dead');
  assert.equal(d.breaker, 'open', JSON.stringify(d));

  for (let i = 0; i < 4; i++) {
    const { r, ms } = await chat('g-brdead', uniq(`while open ${i}`));
    assert.equal(r.model, up('bd-ok'));
    assert.ok(ms < 500, `took ${ms} ms: an open breaker costs no attempt and no backoff`);
  }
  const e3 = await upstreamErrors();
  assert.equal(errs(e3, 'bd-dead'), errs(e2, 'bd-dead'), 'no attempt on the open deployment');

  await sleep(Math.max(0, 2150 - (Date.now() - tOpen)));
  const r4 = await chat('g-brdead', uniq('probe'));
  assert.equal(r4.r.model, up('bd-ok'), 'the failed probe fell over');
  const e4 = await upstreamErrors();
  assert.equal(errs(e4, 'bd-dead') - errs(e3, 'bd-dead'), 1, 'exactly one half-open probe went to the dead deployment');
  d = await deployment('bd-dead');
  assert.equal(d.breaker, 'open', `a failed probe re-opens it: ${JSON.stringify(d)}`);
  await chat('g-brdead', uniq('after the probe'));
  const e5 = await upstreamErrors();
  assert.equal(errs(e5, 'bd-dead'), errs(e4, 'bd-dead'), 're-opened: skipped again');
});

test('breaker: half-open probe only in the mode it opened on, one at a time; success brings traffic back', T, async () => {
  // retries: 0, so each failure reaches the client and every request makes one attempt
  for (let i = 0; i < 3; i++) {
    const { e } = await chatError('g-probe', uniq(`fail ${i} @sim:status=500`));
    assert.equal(e.status, 500);
  }
  const tOpen = Date.now();
  let d = await deployment('bp-a');
  assert.equal(d.breaker, 'open', JSON.stringify(d));
  const e0 = await upstreamErrors();
  assert.equal(errs(e0, 'bp-b'), 0);
  const h0 = hitsNow();
  const { r: r1 } = await chat('g-probe', uniq('while open'));
  assert.equal(r1.model, up('bp-b'));
  assert.equal(await hitsSince(h0, 1), 1);

  await sleep(Math.max(0, 2150 - (Date.now() - tOpen)));
  // It opened on non-stream traffic: a stream must not be its probe.
  const s = await chatStream('g-probe', uniq('stream while half-open'));
  assert.equal(s.error, null, s.error?.message);
  assert.deepEqual(s.models, [up('bp-b')], 'a stream is not the probe of a breaker opened by non-stream failures');
  // The probe (slow, succeeds) and, while it is out, another request: that one must skip bp-a.
  const probe = chat('g-probe', uniq('the probe @sim:stall=700'));
  await sleep(200);
  const { r: other } = await chat('g-probe', uniq('while the probe is out'));
  assert.equal(other.model, up('bp-b'), 'only one half-open probe at a time');
  const { r: pr } = await probe;
  assert.equal(pr.model, up('bp-a'), 'the non-stream request was the probe');
  d = await deployment('bp-a');
  assert.equal(d.breaker, 'closed', JSON.stringify(d));
  for (let i = 0; i < 3; i++) {
    const { r } = await chat('g-probe', uniq(`back ${i}`));
    assert.equal(r.model, up('bp-a'), 'traffic returned after the successful probe');
  }
  const s2 = await chatStream('g-probe', uniq('stream back'));
  assert.deepEqual(s2.models, [up('bp-a')]);
});

// ---- 7. scattered errors ---------------------------------------------------------------

test('scattered errors (1 in 4, never 3 in a row) do not open the breaker', T, async () => {
  const e0 = await upstreamErrors();
  let ok = 0, failed = 0;
  for (let i = 0; i < 24; i++) {
    if (i % 4 === 1) {
      const { e } = await chatError('g-scatter', uniq(`scattered ${i} @sim:status=500`));
      assert.equal(e.status, 500);
      failed++;
    } else {
      const { r } = await chat('g-scatter', uniq(`fine ${i}`));
      assert.equal(r.model, up('sc-a'), `request ${i} moved off sc-a: its breaker opened`);
      ok++;
    }
  }
  assert.deepEqual({ ok, failed }, { ok: 18, failed: 6 });
  const d = await deployment('sc-a');
  assert.equal(d.breaker, 'closed', JSON.stringify(d));
  const e1 = await upstreamErrors();
  assert.equal(errs(e1, 'sc-a') - errs(e0, 'sc-a'), 6);
  assert.equal(errs(e1, 'sc-b') - errs(e0, 'sc-b'), 0);
});

// ---- 8. one retry budget across hops -------------------------------------------------------

test('retry budget across hops: retries 1 on three failing deployments -> exactly 2 attempts, then the error in OpenAI\'s shape', T, async () => {
  // 503 everywhere: once more on the same deployment, then the budget is spent
  let e0 = await upstreamErrors();
  let h0 = hitsNow();
  const t0 = Date.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(15000),
    body: JSON.stringify({ model: 'g-budget', messages: [user(uniq('down everywhere @sim:status=503'))] }),
  });
  const body = await res.json();
  assert.equal(res.status, 503, JSON.stringify(body));
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(await hitsSince(h0, 2), 2, 'retries: 1 -> 2 attempts in all');
  let e1 = await upstreamErrors();
  assert.equal(errs(e1, 'bu-a') + errs(e1, 'bu-b') + errs(e1, 'bu-c') - errs(e0, 'bu-a') - errs(e0, 'bu-b') - errs(e0, 'bu-c'), 2);

  // 401 everywhere: a hop per attempt, still 2 attempts in all
  e0 = e1;
  h0 = hitsNow();
  const { e } = await chatError('g-budget', uniq('no key anywhere @sim:status=401'));
  assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e.constructor.name} ${e.status}`);
  assert.equal(e.status, 401);
  assert.equal(await hitsSince(h0, 2), 2);
  e1 = await upstreamErrors();
  assert.deepEqual(['bu-a', 'bu-b', 'bu-c'].map((n) => errs(e1, n) - errs(e0, n)), [1, 1, 0], 'a 401 falls over: one attempt on a, one on b, none on c');
});

test('retry budget across three hops: retries 2 -> 3 attempts, the last provider\'s status reaches the client', T, async () => {
  const e0 = await upstreamErrors();
  const h0 = hitsNow();
  const { e } = await chatError('g-budget3', uniq('three hops @sim:status=401'));
  assert.equal(e.status, 502, `the last hop (the dead provider) decides the status: got ${e.status} ${e.message}`);
  assert.ok(e instanceof OpenAI.InternalServerError);
  assert.equal(await hitsSince(h0, 2), 2);
  const e1 = await upstreamErrors();
  assert.deepEqual(['bv-a', 'bv-b', 'bv-dead'].map((n) => errs(e1, n) - errs(e0, n)), [1, 1, 1], 'one attempt per hop, 3 = retries + 1');
});

// ---- 9. context window --------------------------------------------------------------------

test('context window: a long prompt (or a large max_tokens) skips the small deployment; a short one uses it', T, async () => {
  const { r: short } = await chat('g-ctx', uniq('hi'));
  assert.equal(short.model, up('cx-small'));
  const { r: long } = await chat('g-ctx', uniq(longText(200)));
  assert.equal(long.model, up('cx-big'), 'a 200-word prompt does not fit a 64-token window');
  const { r: big } = await chat('g-ctx', uniq('hi'), { max_tokens: 200 });
  assert.equal(big.model, up('cx-big'), 'prompt + max_tokens must fit');
});

// ---- 10. tiers ---------------------------------------------------------------------------

test('tiers: size picks the tier; a tools request skips deployments without tools', T, async () => {
  const { r: simple } = await chat('g-tiers', uniq('a short question'));
  assert.equal(simple.model, up('t-simple'));
  const { r: complex } = await chat('g-tiers', uniq(longText(1000)));
  assert.equal(complex.model, up('t-complex'));
  const { r: long } = await chat('g-tiers', uniq(longText(8000)));
  assert.equal(long.model, up('t-long'));
  const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
  const { r: tools } = await chat('g-tiers', uniq('weather in Lisbon?'), { tools: [tool] });
  assert.equal(tools.model, up('t-medium'), 't-simple lacks tools: the next tier up');
  assert.equal(tools.choices[0].message.tool_calls?.[0]?.function?.name, 'get_weather');
  const { r: json } = await chat('g-tiers', uniq('json please'), { response_format: { type: 'json_object' } });
  assert.equal(json.model, up('t-simple'), 't-simple has json');
});

test('429 with only x-ratelimit-reset-requests: the next deployment answers; the first is held back for the reset', T, async () => {
  const { r } = await chat('g-limits', uniq('limited by headers'));
  assert.equal(r.model, up('lim-b'));
  const d = await deployment('lim-a');
  assert.ok(d.rate_limited_for_ms > 4000 && d.rate_limited_for_ms <= 6000,
    `rate limited for ${d.rate_limited_for_ms} ms, from "x-ratelimit-reset-requests: 6s"`);
  assert.equal(d.breaker, 'closed', 'a 429 is not a failure');
});

test('active health checks: a dead deployment is found and its breaker opened with no client traffic', T, async () => {
  const d = await waitFor(async () => {
    const x = await deployment('hc-dead');
    return x.breaker === 'open' ? x : null;
  }, 5000);
  assert.equal(d.breaker, 'open', 'probes every 200 ms: 3 failures open it');
  assert.equal((await deployment('hc-ok')).breaker, 'closed');
  const e0 = await upstreamErrors();
  const { r } = await chat('g-health', uniq('after the probes'));
  assert.equal(r.model, up('hc-ok'));
  assert.equal(errs(await upstreamErrors(), 'hc-dead') - errs(e0, 'hc-dead'), 0, 'the request never tried the dead one');
});

test('escalation: invalid JSON from the cheap tier in JSON mode moves to the next tier; plain text stays', T, async () => {
  const j0 = junkRequests;
  const { r: json } = await chat('g-escalate', uniq('json please'), { response_format: { type: 'json_object' } });
  assert.equal(json.model, up('es-strong'), 'escalated to the next tier');
  assert.doesNotThrow(() => JSON.parse(json.choices[0].message.content));
  assert.equal(junkRequests - j0, 1, 'the cheap tier was asked once');
  const { r: text } = await chat('g-escalate', uniq('just talk'));
  assert.equal(text.model, up('es-cheap'), 'no JSON asked: the cheap answer is the answer');
});

// ---- 11. weighted, fallback, pinning -------------------------------------------------------

test('weighted 3:1: 200 requests split within tolerance', { timeout: 60000 }, async () => {
  const counts = {};
  let i = 0;
  const worker = async () => {
    while (i < 200) {
      i++;
      const { r } = await chat('g-w', uniq('weigh me'));
      counts[r.model] = (counts[r.model] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const heavy = counts[up('w-3')] ?? 0, light = counts[up('w-1')] ?? 0;
  assert.equal(heavy + light, 200, JSON.stringify(counts));
  // expected 150 / 50; sd ~6.1; +-25 is about 4 sd
  assert.ok(heavy >= 125 && heavy <= 175, `w-3 got ${heavy}, w-1 ${light} (expected about 150:50)`);
});

test('fallback: always the first healthy; x-sluice-deployment pins a member; a non-member pin is a 400', T, async () => {
  for (let i = 0; i < 5; i++) {
    const { r } = await chat('g-fb', uniq(`in order ${i}`));
    assert.equal(r.model, up('fb-a'));
  }
  const { r: pinned } = await chat('g-fb', uniq('pinned'), {}, { headers: { 'x-sluice-deployment': 'fb-c' } });
  assert.equal(pinned.model, up('fb-c'));
  const s = await chatStream('g-fb', uniq('pinned stream'), {}, { headers: { 'x-sluice-deployment': 'fb-b' } });
  assert.deepEqual(s.models, [up('fb-b')]);
  const { r: wpin } = await chat('g-w', uniq('pinned weighted'), {}, { headers: { 'x-sluice-deployment': 'w-1' } });
  assert.equal(wpin.model, up('w-1'));
  for (const pin of ['w-3', 'no-such-deployment']) {
    const { e } = await chatError('g-fb', uniq('bad pin'), {}, { headers: { 'x-sluice-deployment': pin } });
    assert.ok(e instanceof OpenAI.BadRequestError, `pin ${pin}: got ${e.constructor.name} ${e.status}: ${e.message}`);
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
  }
});

// ---- 12. cost ----------------------------------------------------------------------------

test('cost: the cheapest deployment first, then by cost (unpriced last); prompt and max_tokens both count', T, async () => {
  for (let i = 0; i < 3; i++) {
    const { r } = await chat('g-cost', uniq(`cheap please ${i}`));
    assert.equal(r.model, up('c-cheap'));
  }
  const { r: next } = await chat('g-cost', uniq('cheap fails @sim:fail_times=2 @sim:status=500'));
  assert.equal(next.model, up('c-mid'), 'after the cheapest, the next cheapest (not the unpriced, not the listed order)');
  // c-in: cheap input, dear output; c-out: the reverse
  const { r: manyOut } = await chat('g-cost2', uniq('short prompt'), { max_tokens: 1000 });
  assert.equal(manyOut.model, up('c-out'), 'a short prompt with a long answer: cheap output wins');
  const { r: manyIn } = await chat('g-cost2', uniq(longText(2000)), { max_tokens: 1 });
  assert.equal(manyIn.model, up('c-in'), 'a long prompt with a short answer: cheap input wins');
});

// ---- latency (power of two choices over peak-EWMA) -------------------------------------------

async function latencyRun(group, slowName, fastName, stream) {
  const seen = [];
  for (let i = 0; i < 12; i++) {
    if (stream) {
      const s = await chatStream(group, uniq(`fast one ${i}`));
      assert.equal(s.error, null, s.error?.message);
      seen.push(s.models[0]);
    } else {
      const { r } = await chat(group, uniq(`fast one ${i}`));
      seen.push(r.model);
    }
  }
  const slow = seen.filter((m) => m === up(slowName)).length;
  const states = JSON.stringify([await deployment(slowName), await deployment(fastName)]);
  assert.ok(slow <= 2, `the slow deployment (300 ms to the first byte) served ${slow} of 12: ${seen.join(',')}; router state ${states}`);
  assert.deepEqual(seen.slice(-6), Array(6).fill(up(fastName)), `${seen.join(',')}; router state ${states}`);
}

test('latency, streams: after exploring, traffic goes to the fast deployment', T, async () => {
  await latencyRun('g-lat-stream', 'ls-slow', 'ls-fast', true);
});

test('latency, non-stream: after exploring, traffic goes to the fast deployment', T, async () => {
  await latencyRun('g-lat', 'l-slow', 'l-fast', false);
});

// ---- shutdown ---------------------------------------------------------------------------

test('SIGTERM: sluice exits 0, no sanitizer report; the sims exit 0', { timeout: 30000 }, async () => {
  const r = await serve.stop(10000);
  assert.equal(r.killed, false, `sluice serve did not exit within 10 s${tail()}`);
  assert.deepEqual(sanitizerReports(serve.stderr()), [], `sanitizer reports${tail()}`);
  assert.equal(r.signal, null, `killed by ${r.signal}${tail()}`);
  assert.equal(r.code, 0, `exit code ${r.code}${tail()}`);
  for (const s of [simA, simB]) {
    const m = await s.stop(5000);
    assert.deepEqual(sanitizerReports(s.stderr()), [], `sanitizer reports in sim: ${s.stderr().slice(-2000)}`);
    assert.equal(m.code, 0, `sim exit code ${m.code} signal ${m.signal}`);
  }
});
