// Budgets and rate limits through the official SDKs, against sluice + sluice sim:
// 200 concurrent requests against a key whose budget allows 20 spend at most 20 requests'
// worth, and the ledger agrees to the micro-unit with a sum computed here from the sim's
// token formulas and the configured prices; the same for tokens per minute; rpm and
// concurrency limits answer 429 with Retry-After and OpenAI's x-ratelimit-* headers;
// streamed, disconnected and estimated requests are charged to the budget; cached tokens
// cost the cached price; GET /admin/usage matches `sluice cost report`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSluice, runSluice, sanitizerReports } from '../cases/lib/proc.mjs';
import { simUsage } from './harness.mjs';

const MASTER = 'sk-master-govern-0123456789';
// Prices in micro-USD per token: config prices are USD per million tokens.
const PRICE = { input: 1000, cached: 100, output: 2000 };
let tmp, sim, serve, base, store, budgetKey;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-govern-'));
  store = `sqlite://${path.join(tmp, 'sluice.db')}`;
  sim = await startSluice(['sim', '--listen', '127.0.0.1:0', '--quiet', '--threads', '2'], { name: 'sim' });
  const cfg = [
    'server: { workers: 4 }',
    `store: "${store}"`,
    'sim: false',
    'master_key: ${SLUICE_MASTER_KEY}',
    'budget_alert: 50%',
    'budgets:',
    '  - { tag: team=search, limit: 0.05usd/month }',
    'pricing:',
    '  overrides:',
    `    - { model: sim-small, input: ${PRICE.input}, cached_input: ${PRICE.cached}, output: ${PRICE.output} }`,
    'providers:',
    `  - { name: s, kind: openai, base_url: "${sim.url}/v1" }`,
    `  - { name: sa, kind: anthropic, base_url: "${sim.url}" }`,
    'models:',
    '  - { name: sim-small, provider: s, model: sim-small }',
    '  - { name: claude-small, provider: sa, model: sim-small }',
    '  - { name: sim-rpm, provider: s, model: sim-small, limits: { rpm: 3 } }',
    '  - { name: sim-conc, provider: s, model: sim-small, limits: { concurrency: 2 } }',
    '  - { name: sim-rpm-cache, provider: s, model: sim-small, limits: { rpm: 2 } }',
    '',
  ].join('\n');
  writeFileSync(path.join(tmp, 'sluice.yaml'), cfg);
  serve = await startSluice(['serve', '--config', path.join(tmp, 'sluice.yaml'), '--listen', '127.0.0.1:0'],
    { name: 'sluice serve', env: { SLUICE_MASTER_KEY: MASTER } });
  base = serve.url;
});

after(async () => {
  const s = await serve?.stop(15000);
  await sim?.stop(5000);
  if (s) {
    assert.equal(s.code, 0, `sluice serve exit ${JSON.stringify(s)}`);
    assert.deepEqual(sanitizerReports(serve.stderr()), []);
  }
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

const admin = (method, p, body) => fetch(`${base}${p}`, {
  method, headers: { Authorization: `Bearer ${MASTER}`, 'Content-Type': 'application/json' },
  body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(10000),
});

async function makeKey(spec) {
  const r = await admin('POST', '/admin/keys', spec);
  assert.equal(r.status, 201, await r.clone().text());
  return (await r.json()).key;
}

const client = (apiKey) => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 20000 });

// The cost of one request the sim answers, from its formulas and the configured prices.
function costOf(messages, { cached = 0 } = {}) {
  const u = simUsage(messages);
  return (u.prompt_tokens - cached) * PRICE.input + cached * PRICE.cached + u.completion_tokens * PRICE.output;
}

// Waits until the ledger holds `requests` request rows for key, then returns its report row.
async function ledgerFor(key, requests) {
  for (let i = 0; i < 100; i++) {
    const r = await admin('GET', '/admin/usage?by=key&format=json');
    const rows = await r.json();
    const row = rows.find((x) => x.key === key);
    if (row && row.requests >= requests) return row;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the ledger never held ${requests} rows for ${key}`);
}

async function metric(name, scope) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{scope="${scope}"`));
  return line ? Number(line.split(' ').pop()) : undefined;
}

const MSGS = [{ role: 'user', content: 'hello budget' }];

test('200 concurrent requests against a budget of 20: at most 20 are spent, the ledger agrees to the micro-unit', async () => {
  const one = costOf(MSGS);
  const limit = 20 * one; // micro-USD
  const key = budgetKey = await makeKey({ name: 'budget-20', budget: `${(limit / 1e6).toFixed(6)}usd/month` });
  const ai = client(key);
  const results = await Promise.allSettled(Array.from({ length: 200 }, () =>
    ai.chat.completions.create({ model: 'sim-small', messages: MSGS, max_tokens: 16 })));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r) => r.status === 'rejected');
  for (const r of ok) assert.equal(r.value.choices[0].message.content, 'This is a simulated reply to: hello budget');
  for (const r of refused) {
    assert.ok(r.reason instanceof OpenAI.RateLimitError, String(r.reason));
    assert.equal(r.reason.status, 429);
    assert.equal(r.reason.code, 'budget_exceeded');
    assert.equal(r.reason.type, 'budget_exceeded');
  }
  assert.ok(ok.length >= 10 && ok.length <= 20, `${ok.length} admitted`);
  const row = await ledgerFor('budget-20', 200);
  assert.equal(row.cost_micros, ok.length * one, 'the ledger bills exactly the admitted requests');
  assert.ok(row.cost_micros <= limit);
  // the in-memory budget and the ledger agree, and the soft threshold (50%) fired once
  assert.equal(await metric('sluice_budget_spent_micros', 'key:budget-20'), row.cost_micros);
  assert.equal(await metric('sluice_budget_reserved_micros', 'key:budget-20'), 0);
  assert.equal(await metric('sluice_budget_soft_crossings_total', 'key:budget-20'), 1);
  assert.match(serve.stderr(), /budget: key:budget-20: .* passed its soft threshold \(50%\)/);
});

test('tokens per minute under 200 concurrent requests: the real tokens stay within the limit', async () => {
  const u = simUsage(MSGS);
  const per = u.prompt_tokens + u.completion_tokens;
  const tpm = 20 * per;
  const key = await makeKey({ name: 'tpm-20', tpm: String(tpm) });
  const ai = client(key);
  const results = await Promise.allSettled(Array.from({ length: 200 }, () =>
    ai.chat.completions.create({ model: 'sim-small', messages: MSGS, max_tokens: 8 }).withResponse()));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r) => r.status === 'rejected');
  assert.ok(ok.length >= 5 && ok.length * per <= tpm, `${ok.length} admitted, ${ok.length * per} tokens`);
  for (const r of refused) {
    assert.equal(r.reason.status, 429);
    assert.equal(r.reason.code, 'rate_limit_exceeded');
    assert.equal(r.reason.type, 'tokens');
    assert.equal(r.reason.headers.get('x-ratelimit-limit-tokens'), String(tpm));
    assert.ok(Number(r.reason.headers.get('retry-after')) >= 1);
  }
  const h = ok[0].value.response.headers;
  assert.equal(h.get('x-ratelimit-limit-tokens'), String(tpm));
  assert.ok(Number(h.get('x-ratelimit-remaining-tokens')) < tpm);
  const row = await ledgerFor('tpm-20', 200);
  assert.equal(row.prompt_tokens + row.completion_tokens, ok.length * per);
});

test('requests per minute: the 4th is a 429 with Retry-After and the x-ratelimit-* headers', async () => {
  const key = await makeKey({ name: 'plain' });
  const ai = client(key);
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const { response } = await ai.chat.completions.create({ model: 'sim-rpm', messages: MSGS }).withResponse();
    seen.push(response.headers.get('x-ratelimit-remaining-requests'));
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
    assert.match(response.headers.get('x-ratelimit-reset-requests'), /^\d+(ms|s|m\d+s)$/);
  }
  assert.deepEqual(seen, ['2', '1', '0']);
  const e = await ai.chat.completions.create({ model: 'sim-rpm', messages: MSGS }).catch((x) => x);
  assert.ok(e instanceof OpenAI.RateLimitError, String(e));
  assert.equal(e.code, 'rate_limit_exceeded');
  assert.equal(e.type, 'requests');
  const retry = Number(e.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  assert.equal(e.headers.get('x-ratelimit-limit-requests'), '3');
  assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
  // the Anthropic SDK gets the same refusal in its own shape
  const claude = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 10000 });
  const ae = await claude.messages.create({ model: 'sim-rpm', max_tokens: 16, messages: MSGS }).catch((x) => x);
  assert.ok(ae instanceof Anthropic.RateLimitError, String(ae));
  assert.equal(ae.error?.error?.type, 'rate_limit_error');
});

test('a cache hit is a request too: it counts for rpm, and costs nothing', async () => {
  const key = await makeKey({ name: 'cached-rpm' });
  const ai = client(key);
  const ask = () => ai.chat.completions.create({ model: 'sim-rpm-cache', temperature: 0, messages: MSGS }).withResponse();
  const first = await ask();
  assert.equal(first.response.headers.get('x-sluice-cache'), 'miss');
  const second = await ask();
  assert.equal(second.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(second.response.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.equal(second.data.choices[0].message.content, first.data.choices[0].message.content);
  const e = await ask().catch((x) => x);
  assert.ok(e instanceof OpenAI.RateLimitError && e.code === 'rate_limit_exceeded', String(e));
  const row = await ledgerFor('cached-rpm', 2);
  assert.deepEqual([row.cache_hits, row.cost_micros], [1, costOf(MSGS)], `one paid answer, one free hit: ${JSON.stringify(row)}`);
});

test('concurrency: a model with limits.concurrency 2 takes two at a time', async () => {
  const key = await makeKey({ name: 'conc' });
  const ai = client(key);
  const slow = [{ role: 'user', content: 'hello @sim:ttft=600' }];
  const results = await Promise.allSettled(Array.from({ length: 6 }, () =>
    ai.chat.completions.create({ model: 'sim-conc', messages: slow })));
  const ok = results.filter((r) => r.status === 'fulfilled');
  assert.equal(ok.length, 2);
  for (const r of results.filter((x) => x.status === 'rejected')) {
    assert.equal(r.reason.status, 429);
    assert.equal(r.reason.code, 'concurrency_limit_exceeded');
  }
  // slots come back when requests end
  const again = await ai.chat.completions.create({ model: 'sim-conc', messages: MSGS });
  assert.ok(again.choices[0].message.content);
  // a key's own cap (--concurrency, or "concurrency" in the admin API)
  const one = client(await makeKey({ name: 'conc-key', concurrency: 1 }));
  const listed = (await (await admin('GET', '/admin/keys')).json()).data.find((k) => k.name === 'conc-key');
  assert.equal(listed.concurrency, 1);
  const pair = await Promise.allSettled([0, 1].map(() => one.chat.completions.create({ model: 'sim-small', messages: slow })));
  assert.deepEqual(pair.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  assert.equal(pair.find((r) => r.status === 'rejected').reason.code, 'concurrency_limit_exceeded');
});

test('streamed, disconnected and estimated requests are charged to the budget; cached tokens at the cached price', async () => {
  const key = await makeKey({ name: 'streams', budget: '10usd/day' });
  const ai = client(key);
  // streamed, with usage from the provider
  let text = '';
  for await (const c of await ai.chat.completions.create({ model: 'sim-small', messages: MSGS, stream: true, stream_options: { include_usage: true } }))
    text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'This is a simulated reply to: hello budget');
  // streamed without any usage from the provider: estimated
  for await (const c of await ai.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'hello @sim:no_usage' }], stream: true })) void c;
  // the client leaves after the first chunk of a slow stream
  const ac = new AbortController();
  const s = await ai.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'one two three four five six seven eight @sim:delay=300' }], stream: true }, { signal: ac.signal });
  const t0 = Date.now();
  try { for await (const c of s) { if (c.choices[0]?.delta?.content) ac.abort(); } } catch { /* aborted */ }
  assert.ok(Date.now() - t0 < 1500, 'the client left long before the stream would have ended');
  const row = await ledgerFor('streams', 3);
  assert.ok(row.cost_micros > costOf(MSGS), 'the estimated and the cut-short requests cost something too');
  // every one of them is in the budget, to the micro-unit
  for (let i = 0; i < 50 && (await metric('sluice_budget_spent_micros', 'key:streams')) !== row.cost_micros; i++)
    await new Promise((res) => setTimeout(res, 100));
  assert.equal(await metric('sluice_budget_spent_micros', 'key:streams'), row.cost_micros);
});

test('cached prompt tokens are priced at the cached price, in the ledger and the budget', async () => {
  const key = await makeKey({ name: 'cached', budget: '10usd/month' });
  const msgs = [{ role: 'user', content: 'hello cached @sim:cached=4' }];
  const r = await client(key).chat.completions.create({ model: 'sim-small', messages: msgs, max_tokens: 16 });
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 4);
  const row = await ledgerFor('cached', 1);
  assert.equal(row.cached_tokens, 4);
  // (prompt - cached) at the input price, cached at the cached price, completion at output
  assert.equal(row.cost_micros, costOf(msgs, { cached: 4 }));
  assert.equal(row.cost_micros, (6 - 4) * 1000 + 4 * 100 + 8 * 2000);
  assert.equal(await metric('sluice_budget_spent_micros', 'key:cached'), row.cost_micros);
});

test('a tag budget from the config refuses once the tag has spent it', async () => {
  const key = await makeKey({ name: 'tagged', tags: 'team=search' });
  const ai = client(key);
  const one = costOf(MSGS);
  let admitted = 0, refusal;
  for (let i = 0; i < 10 && !refusal; i++) {
    try {
      await ai.chat.completions.create({ model: 'sim-small', messages: MSGS, max_tokens: 16 });
      admitted++;
    } catch (e) { refusal = e; }
  }
  assert.ok(refusal instanceof OpenAI.RateLimitError, String(refusal));
  assert.equal(refusal.code, 'budget_exceeded');
  assert.match(refusal.message, /tag:team=search/);
  assert.ok(admitted >= 1 && admitted * one <= 50000, `${admitted} admitted`);
  const row = await ledgerFor('tagged', admitted + 1);
  assert.equal(row.cost_micros, admitted * one);
});

// Waits until the ledger stops changing (every earlier request written).
async function settled() {
  let last = '';
  for (let i = 0; i < 50; i++) {
    const now = await (await admin('GET', '/admin/usage?by=key&format=json')).text();
    if (now === last) return;
    last = now;
    await new Promise((res) => setTimeout(res, 150));
  }
}

test('GET /admin/usage matches sluice cost report, and its totals match the hand-computed figures', async () => {
  const one = costOf(MSGS);
  await settled();
  const api = await (await admin('GET', '/admin/usage?by=key&since=1d&format=json')).json();
  const cli = await runSluice(['cost', 'report', '--store', store, '--by', 'key', '--since', '1d', '--format', 'json']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual(api, JSON.parse(cli.stdout));
  const b20 = api.find((r) => r.key === 'budget-20');
  assert.equal(b20.cost_micros % one, 0);
  assert.equal(b20.requests, 200);
  const csvApi = await (await admin('GET', '/admin/usage?by=model&format=csv')).text();
  const csvCli = await runSluice(['cost', 'report', '--store', store, '--by', 'model', '--format', 'csv']);
  assert.equal(csvApi, csvCli.stdout);
  assert.equal((await admin('GET', '/admin/usage?by=colour')).status, 400);
  const anon = await fetch(`${base}/admin/usage`);
  assert.equal(anon.status, 401);
});

test('budget_exceeded in each client format: Anthropic messages and embeddings', async () => {
  const key = await makeKey({ name: 'tiny', budget: '0.000001usd/total' });
  const claude = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 10000 });
  const ae = await claude.messages.create({ model: 'claude-small', max_tokens: 16, messages: MSGS }).catch((x) => x);
  assert.ok(ae instanceof Anthropic.RateLimitError, String(ae));
  assert.equal(ae.error?.type, 'error');
  assert.equal(ae.error?.error?.type, 'rate_limit_error');
  assert.match(ae.error?.error?.message, /^budget_exceeded: key:tiny/);
  assert.equal(ae.headers.get('retry-after'), null, 'a total budget does not come back by waiting');
  const ee = await client(key).embeddings.create({ model: 'sim-small', input: ['hello budget', 'two'] }).catch((x) => x);
  assert.ok(ee instanceof OpenAI.RateLimitError, String(ee));
  assert.equal(ee.code, 'budget_exceeded');
  // a daily budget says when it comes back: at the next UTC midnight
  const daily = await makeKey({ name: 'tiny-daily', budget: '0.000001usd/day' });
  const de = await client(daily).chat.completions.create({ model: 'sim-small', messages: MSGS }).catch((x) => x);
  const now = new Date();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const retry = Number(de.headers.get('retry-after'));
  assert.ok(Math.abs(retry - (midnight - now.getTime()) / 1000) <= 5, `Retry-After ${retry}`);
  const row = await ledgerFor('tiny', 2);
  assert.equal(row.cost_micros, 0, 'refused requests cost nothing');
});

test('spend survives a restart: the budget is loaded back from the ledger', async () => {
  const one = costOf(MSGS);
  const before = await metric('sluice_budget_spent_micros', 'key:budget-20');
  assert.ok(before >= 10 * one);
  const s = await serve.stop(15000);
  assert.equal(s.code, 0);
  assert.deepEqual(sanitizerReports(serve.stderr()), []);
  serve = await startSluice(['serve', '--config', path.join(tmp, 'sluice.yaml'), '--listen', '127.0.0.1:0'],
    { name: 'sluice serve', env: { SLUICE_MASTER_KEY: MASTER } });
  base = serve.url;
  const r = await client(budgetKey).chat.completions.create({ model: 'sim-small', messages: MSGS, max_tokens: 16 })
    .then(() => 'ok', (e) => e.code);
  const after = await metric('sluice_budget_spent_micros', 'key:budget-20');
  if (r === 'ok') assert.equal(after, before + one);
  else { assert.equal(r, 'budget_exceeded'); assert.equal(after, before); }
});
