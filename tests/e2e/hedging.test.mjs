// Hedging (docs/routing.md) through the official `openai` SDK: the first deployment of a
// hedging group is slow to its first byte (a sim with a 1.5 s time to first byte), so after
// the hedge delay sluice starts the second one (a fast sim); the client gets the second
// deployment's answer long before the first could have answered, the first attempt is
// cancelled at once, and the ledger (read with sqlite3) holds both attempts, the loser marked.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSluice, runSluice, sanitizerReports, waitFor } from '../cases/lib/proc.mjs';
import { simReply } from './harness.mjs';

const T = { timeout: 20000 };
const q = JSON.stringify;
const SLOW_MS = 1500;
let tmp, db, simSlow, simFast, simMid, simPings, serve, client, anthropic, base;
let nonce = 0;
const uniq = (s) => `${s} n${process.pid}x${++nonce}`;
const user = (content) => ({ role: 'user', content });

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-hedging-'));
  db = path.join(tmp, 'sluice.db');
  simSlow = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', String(SLOW_MS), '--latency-ms', String(SLOW_MS), '--chunk-delay-ms', '1'], { name: 'sim slow' });
  simFast = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '0', '--chunk-delay-ms', '1'], { name: 'sim fast' });
  // answers at once, but sends its keep-alive comments 400 ms apart before the first chunk
  simPings = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '0', '--chunk-delay-ms', '400', '--quiet'], { name: 'sim pings' });
  simMid = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '40', '--latency-ms', '40', '--quiet'], { name: 'sim mid' });
  const cfg = [
    'server: { workers: 2 }',
    `store: ${q(`sqlite://${db}`)}`,
    'sim: false',
    'providers:',
    `  - { name: p-slow, kind: openai, base_url: ${q(`${simSlow.url}/v1`)}, api_key: k }`,
    `  - { name: p-fast, kind: openai, base_url: ${q(`${simFast.url}/v1`)}, api_key: k }`,
    `  - { name: p-fast2, kind: openai, base_url: ${q(`${simFast.url}/v1`)}, api_key: k }`,
    `  - { name: p-slow2, kind: openai, base_url: ${q(`${simSlow.url}/v1`)}, api_key: k }`,
    `  - { name: p-pings, kind: openai, base_url: ${q(`${simPings.url}/v1`)}, api_key: k }`,
    `  - { name: p-mid, kind: openai, base_url: ${q(`${simMid.url}/v1`)}, api_key: k }`,
    `  - { name: p-aslow, kind: anthropic, base_url: ${q(simSlow.url)}, api_key: k }`,
    `  - { name: p-afast, kind: anthropic, base_url: ${q(simFast.url)}, api_key: k }`,
    'models:',
    '  - { name: h-slow, provider: p-slow, model: up-h-slow, price_in: 1, price_out: 2 }',
    '  - { name: h-fast, provider: p-fast, model: up-h-fast, price_in: 1, price_out: 2 }',
    '  - { name: h-fast2, provider: p-fast2, model: up-h-fast2 }',
    '  - { name: h-slow2, provider: p-slow2, model: up-h-slow2 }',
    '  - { name: h-pings, provider: p-pings, model: up-h-pings, price_in: 1, price_out: 2 }',
    '  - { name: h-mid, provider: p-mid, model: up-h-mid }',
    '  - { name: ha-slow, provider: p-aslow, model: up-ha-slow, price_in: 1, price_out: 2 }',
    '  - { name: ha-fast, provider: p-afast, model: up-ha-fast, price_in: 1, price_out: 2 }',
    'groups:',
    '  - { name: g-hedge, deployments: [h-slow, h-fast], hedge: { after: 150ms }, retries: 2 }',
    '  - { name: g-nohedge, deployments: [h-slow, h-fast], retries: 2 }',
    '  - { name: g-hedge-anth, deployments: [ha-slow, ha-fast], hedge: { after: 150ms }, retries: 2 }',
    `  - { name: g-p95, deployments: [h-mid, h-fast2], hedge: { after: p95 }, retries: 2, breaker: { consecutive: 0, min_requests: 1000000 } }`,
    '  - { name: g-pings, deployments: [h-pings, h-fast], hedge: { after: 150ms }, retries: 2 }',
    '  - { name: g-mixed, deployments: [ha-slow, h-fast], hedge: { after: 150ms }, retries: 2 }',
    '  - { name: g-bothslow, deployments: [h-slow, h-slow2], hedge: { after: 100ms }, retries: 2 }',
    '  - { name: g-quick, deployments: [h-fast, h-fast2], hedge: { after: 400ms }, retries: 2 }',
    '',
  ].join('\n');
  const cfgPath = path.join(tmp, 'sluice.yaml');
  writeFileSync(cfgPath, cfg);
  const chk = await runSluice(['config', 'check', cfgPath]);
  assert.equal(chk.code, 0, `config check: ${chk.stderr}\n${cfg}`);
  serve = await startSluice(['serve', '--config', cfgPath, '--listen', '127.0.0.1:0'], { name: 'sluice serve' });
  base = serve.url;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: base, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
});

after(async () => {
  await serve?.stop(10000);
  await simSlow?.stop(5000);
  await simFast?.stop(5000);
  if (simMid?.alive()) simMid.child.kill('SIGCONT');
  await simMid?.stop(5000);
  await simPings?.stop(5000);
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

const tail = () => `\n--- sluice serve stderr ---\n${serve.stderr().slice(-3000)}`;

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', db, query], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

// The ledger rows of one request, attempts first; waits for `want` rows (the writer
// thread commits within milliseconds).
async function rowsOf(requestId, want) {
  let rows = [];
  await waitFor(() => {
    rows = sql(`SELECT id, provider, upstream_model, attempt, final, status, why, error, prompt_tokens,
                completion_tokens, estimated, cost_micros, latency_us FROM usage
                WHERE request_id = '${requestId}' ORDER BY attempt`);
    return rows.length >= want;
  }, 5000, 20);
  return rows;
}

async function inFlight(name) {
  const r = await fetch(`${base}/admin/health`, { signal: AbortSignal.timeout(5000) });
  const j = await r.json();
  return j.deployments.find((d) => d.model === name).in_flight;
}

function assertHedged(rows, msg, slow = 'p-slow', fast = 'p-fast') {
  assert.equal(rows.length, 2, `two rows: ${q(rows)}`);
  const [lost, won] = rows;
  assert.equal(lost.attempt, 1);
  assert.equal(lost.final, 0, 'the slow attempt is an attempt row');
  assert.equal(lost.provider, slow);
  assert.equal(lost.status, 0, 'a cancelled attempt is no error');
  assert.match(lost.why, /^hedge: lost/);
  assert.match(lost.error, /cancelled/);
  assert.ok(lost.latency_us < SLOW_MS * 1000, `the loser was cancelled before it could answer (${lost.latency_us} us)`);
  // billed honestly: the prompt it was sent, estimated (the sim's count would be words + 3)
  assert.equal(lost.estimated, 1);
  assert.ok(lost.prompt_tokens > 0, 'the loser bills its prompt');
  assert.ok(lost.cost_micros > 0, 'and is priced');
  assert.equal(won.attempt, 2);
  assert.equal(won.final, 1);
  assert.equal(won.provider, fast);
  assert.equal(won.status, 200);
  assert.equal(won.why, 'hedge: won');
  assert.equal(won.estimated, 0, 'the winner bills the provider-reported usage');
  if (msg) assert.equal(won.prompt_tokens, msg.split(/\s+/).length + 3);
  else assert.ok(won.prompt_tokens > 0);
}

test('slow first byte, non-stream: the hedge on the next deployment wins, the first attempt is cancelled and both are in the ledger', T, async () => {
  const msg = uniq('hedge me please');
  const t0 = Date.now();
  const { data: r, response } = await client.chat.completions
    .create({ model: 'g-hedge', messages: [user(msg)] }).withResponse();
  const ms = Date.now() - t0;
  assert.equal(r.model, 'up-h-fast', 'answered by the hedge');
  assert.equal(r.choices[0].message.content, simReply([user(msg)]));
  assert.ok(ms < SLOW_MS - 500, `answered in ${ms} ms, long before the slow deployment's ${SLOW_MS} ms`);
  assert.equal(await inFlight('h-slow'), 0, 'the losing attempt no longer counts as in flight' + tail());
  const rows = await rowsOf(response.headers.get('x-request-id'), 2);
  assertHedged(rows, msg);
});

test('slow first byte, stream: the hedge wins and streams the whole answer', T, async () => {
  const msg = uniq('hedge my stream');
  const t0 = Date.now();
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'g-hedge', messages: [user(msg)], stream: true, stream_options: { include_usage: true } })
    .withResponse();
  let text = '', models = new Set(), usage = null, firstMs = null;
  for await (const chunk of stream) {
    if (firstMs === null) firstMs = Date.now() - t0;
    models.add(chunk.model);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) text += c.delta?.content ?? '';
  }
  assert.deepEqual([...models], ['up-h-fast']);
  assert.equal(text, simReply([user(msg)]));
  assert.ok(firstMs < SLOW_MS - 500, `first chunk after ${firstMs} ms`);
  assert.ok(usage && usage.prompt_tokens === msg.split(/\s+/).length + 3, q(usage));
  const rows = await rowsOf(response.headers.get('x-request-id'), 2);
  assertHedged(rows, msg);
});

test('a stream whose headers come at once but whose first chunk does not (keep-alives only): still hedged', T, async () => {
  const msg = uniq('pings first @sim:keepalive=3');
  const t0 = Date.now();
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'g-pings', messages: [user(msg)], stream: true }).withResponse();
  let text = '', models = new Set();
  for await (const c of stream) {
    models.add(c.model);
    text += c.choices[0]?.delta?.content ?? '';
  }
  assert.deepEqual([...models], ['up-h-fast']);
  assert.equal(text, simReply([user(msg)]));
  assert.ok(Date.now() - t0 < 1000, `streamed in ${Date.now() - t0} ms, not after 3 keep-alives 400 ms apart`);
  const rows = await rowsOf(response.headers.get('x-request-id'), 2);
  assertHedged(rows, msg, 'p-pings', 'p-fast');
});

test('translated path (OpenAI client, Anthropic-wire deployments): the hedge wins, non-stream and stream', T, async () => {
  const msg = uniq('hedge across formats');
  const t0 = Date.now();
  const { data: r, response } = await client.chat.completions
    .create({ model: 'g-hedge-anth', messages: [user(msg)] }).withResponse();
  assert.ok(Date.now() - t0 < SLOW_MS - 500, `answered in ${Date.now() - t0} ms`);
  assert.equal(r.choices[0].message.content, simReply([user(msg)]));
  assertHedged(await rowsOf(response.headers.get('x-request-id'), 2), null, 'p-aslow', 'p-afast');

  const msg2 = uniq('hedge a translated stream');
  const t1 = Date.now();
  const { data: stream, response: res2 } = await client.chat.completions
    .create({ model: 'g-hedge-anth', messages: [user(msg2)], stream: true }).withResponse();
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, simReply([user(msg2)]));
  assert.ok(Date.now() - t1 < SLOW_MS - 500, `streamed in ${Date.now() - t1} ms`);
  assertHedged(await rowsOf(res2.headers.get('x-request-id'), 2), null, 'p-aslow', 'p-afast');
});

test('pass-through path (Anthropic client and deployments): the hedge wins, non-stream and stream', T, async () => {
  const msg = uniq('hedge my messages');
  const t0 = Date.now();
  const { data, response } = await anthropic.messages
    .create({ model: 'g-hedge-anth', max_tokens: 256, messages: [user(msg)] }).withResponse();
  assert.ok(Date.now() - t0 < SLOW_MS - 500, `answered in ${Date.now() - t0} ms`);
  assert.equal(data.model, 'up-ha-fast', 'the fast deployment answered');
  assert.equal(data.content[0].text, simReply([user(msg)]));
  assertHedged(await rowsOf(response.headers.get('x-request-id'), 2), null, 'p-aslow', 'p-afast');

  const msg2 = uniq('hedge my message stream');
  const t1 = Date.now();
  const { data: stream, response: res2 } = await anthropic.messages
    .create({ model: 'g-hedge-anth', max_tokens: 256, messages: [user(msg2)], stream: true }).withResponse();
  let text = '';
  for await (const ev of stream) if (ev.type === 'content_block_delta') text += ev.delta.text ?? '';
  assert.equal(text, simReply([user(msg2)]));
  assert.ok(Date.now() - t1 < SLOW_MS - 500, `streamed in ${Date.now() - t1} ms`);
  assertHedged(await rowsOf(res2.headers.get('x-request-id'), 2), null, 'p-aslow', 'p-afast');
});

test('the two attempts on different paths (translated first, fast hedge): the client leaves mid-stream after the hedge won', T, async () => {
  const msg = uniq('mixed paths @sim:delay=50 @sim:words=60');
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'g-mixed', messages: [user(msg)], stream: true }, { signal: ac.signal });
  let got = '', model = null;
  try {
    for await (const c of stream) {
      model ??= c.model;
      got += c.choices[0]?.delta?.content ?? '';
      if (got.length > 10) ac.abort(); // the hedge (fast path) is answering: leave
    }
  } catch { /* the SDK may end or throw on abort */ }
  assert.ok(got.length < simReply([user(msg)]).length, 'left before the end of the answer');
  assert.equal(model, 'up-h-fast', 'the fast-path hedge won the race against the translated attempt');
  await waitFor(async () => (await inFlight('h-fast')) === 0 && (await inFlight('ha-slow')) === 0, 3000, 50);
  assert.equal(await inFlight('h-fast'), 0, 'the winner was stopped when the client left' + tail());
  assert.equal(await inFlight('ha-slow'), 0, 'the loser was cancelled when the hedge won');
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200, 'sluice is still serving');
});

test('hedge after p95: no hedge until 20 answers were seen, then one at the observed p95 time to first token', T, async () => {
  // 19 answers: too few for a p95, so no hedge can start yet
  for (let i = 0; i < 19; i++) await client.chat.completions.create({ model: 'g-p95', messages: [user(uniq('warm'))] });
  const h = (await (await fetch(`${base}/admin/health`)).json()).deployments.find((d) => d.model === 'h-mid');
  assert.equal(h.p95_ttft_ms, -1, 'no p95 before 20 answers');
  const { response: r0 } = await client.chat.completions.create({ model: 'g-p95', messages: [user(uniq('twentieth'))] }).withResponse();
  assert.equal((await rowsOf(r0.headers.get('x-request-id'), 1)).length, 1);
  const h2 = (await (await fetch(`${base}/admin/health`)).json()).deployments.find((d) => d.model === 'h-mid');
  assert.ok(h2.p95_ttft_ms >= 40 && h2.p95_ttft_ms < 400, `p95 ${h2.p95_ttft_ms} ms from 20 answers of ~40 ms`);
  // now h-mid hangs: the hedge starts at about its p95 and answers
  simMid.child.kill('SIGSTOP');
  try {
    const t0 = Date.now();
    const { data: r, response } = await client.chat.completions
      .create({ model: 'g-p95', messages: [user(uniq('p95 hedge'))] }).withResponse();
    const ms = Date.now() - t0;
    assert.equal(r.model, 'up-h-fast2', 'the hedge answered');
    assert.ok(ms >= h2.p95_ttft_ms - 5 && ms < h2.p95_ttft_ms + 1500, `answered after ${ms} ms, p95 ${h2.p95_ttft_ms} ms`);
    const rows = await rowsOf(response.headers.get('x-request-id'), 2);
    assert.deepEqual(rows.map((x) => [x.provider, x.final, x.why.split(',')[0]]),
      [['p-mid', 0, 'hedge: lost'], ['p-fast2', 1, 'hedge: won']]);
  } finally {
    simMid.child.kill('SIGCONT');
  }
});

test('without hedge: the same group waits for the slow deployment (one attempt)', T, async () => {
  const msg = uniq('no hedge here');
  const t0 = Date.now();
  const { data: r, response } = await client.chat.completions
    .create({ model: 'g-nohedge', messages: [user(msg)] }).withResponse();
  const ms = Date.now() - t0;
  assert.equal(r.model, 'up-h-slow');
  assert.ok(ms >= SLOW_MS - 50, `took ${ms} ms`);
  await new Promise((res) => setTimeout(res, 200));
  const rows = await rowsOf(response.headers.get('x-request-id'), 1);
  assert.equal(rows.length, 1, q(rows));
  assert.equal(rows[0].provider, 'p-slow');
});

test('a first byte within the delay: no hedge is started', T, async () => {
  const msg = uniq('quick enough');
  const { data: r, response } = await client.chat.completions
    .create({ model: 'g-quick', messages: [user(msg)] }).withResponse();
  assert.equal(r.model, 'up-h-fast');
  await new Promise((res) => setTimeout(res, 600)); // past the hedge delay
  const rows = await rowsOf(response.headers.get('x-request-id'), 1);
  assert.equal(rows.length, 1, `no second attempt: ${q(rows)}`);
  assert.equal(rows[0].why, '');
});

test('the client leaves while both attempts run: both are cancelled and recorded, nothing stays in flight', T, async () => {
  const msg = uniq('leaving early');
  const seen = sql(`SELECT count(*) AS n FROM usage`)[0].n;
  // both deployments are slow: at 500 ms the first attempt and its hedge are both waiting
  await assert.rejects(client.chat.completions.create(
    { model: 'g-bothslow', messages: [user(msg)] }, { signal: AbortSignal.timeout(500) }));
  await waitFor(async () => (await inFlight('h-slow')) === 0 && (await inFlight('h-slow2')) === 0, 3000, 50);
  assert.equal(await inFlight('h-slow'), 0, 'the first attempt was cancelled' + tail());
  assert.equal(await inFlight('h-slow2'), 0, 'the hedge was cancelled');
  let rows = [];
  await waitFor(() => (rows = sql(`SELECT provider, attempt, final, status, why FROM usage ORDER BY rowid`).slice(seen)).length >= 2, 3000, 20);
  rows.sort((a, b) => a.attempt - b.attempt);
  assert.equal(rows.length, 2, q(rows));
  assert.deepEqual(rows.map((r) => [r.provider, r.attempt, r.final]), [['p-slow', 1, 1], ['p-slow2', 2, 0]]);
  assert.equal(rows[0].status, 499, 'the request: client gone');
  assert.match(rows[1].why, /^hedge: cancelled/);
});

test('SIGTERM: sluice serve and the sims exit 0 with no sanitizer report', T, async () => {
  const r = await serve.stop(10000);
  assert.deepEqual(sanitizerReports(serve.stderr()), [], tail());
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal}${tail()}`);
  for (const sim of [simSlow, simFast, simMid, simPings]) {
    const s = await sim.stop(5000);
    assert.deepEqual(sanitizerReports(sim.stderr()), []);
    assert.equal(s.code, 0);
  }
});
