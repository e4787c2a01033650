// The response cache through the official SDKs against sluice + sluice sim: exact hits and
// misses (x-sluice-cache), parameter changes, the request header, streaming replay through
// the `openai` SDK, Anthropic clients, semantic hits on a paraphrase (sim's deterministic
// embeddings), TTL expiry, stale-on-error with the deployment's sim down, tenant isolation
// between two virtual keys, the ledger and `sluice cost report`; then a second server with
// a tiny memory cap (eviction) and a third on the SQLite backend, restarted (persistence).
//
// The sim's embeddings are bags of words and trigrams: "what is the capital city of
// France" scores 0.949 against "What is the capital of France?", and "What is the capital
// of Germany?" 0.876. The test groups use threshold 0.92, between the two (docs/cache.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSluice, runSluice, sanitizerReports, sleep } from '../cases/lib/proc.mjs';

const MASTER = 'sk-master-cache-0123456789';
const q = JSON.stringify;
let tmp, sim, simB, serve, client;

// A serve config: the sim's models (priced, so savings show), an embedding model, and
// groups for the semantic and stale tests; `cache` is the cache: section's inline body.
function config({ store, cache, simUrl, simBUrl }) {
  return [
    'server: { workers: 2 }',
    `store: ${q(store)}`,
    'upstream: { connect_timeout: 2s, first_byte_timeout: 5s, idle_timeout: 3s, total_timeout: 10s }',
    'sim: false',
    'master_key: ${SLUICE_MASTER_KEY}',
    'providers:',
    `  - { name: sim, kind: openai, base_url: ${q(`${simUrl}/v1`)}, api_key: k }`,
    `  - { name: simb, kind: openai, base_url: ${q(`${simBUrl}/v1`)}, api_key: k }`,
    `  - { name: sima, kind: anthropic, base_url: ${q(simUrl)}, api_key: k }`,
    'models:',
    '  - { name: sim-small, provider: sim, model: sim-small, price_in: 1, price_out: 2 }',
    '  - { name: emb, provider: sim, model: sim-embed, price_in: 0.1, price_out: 0.1 }',
    '  - { name: short, provider: sim, model: sim-small, cache: { ttl: 1s } }',
    '  - { name: b-small, provider: simb, model: sim-small, price_in: 1, price_out: 2 }',
    '  - { name: claude-sim, provider: sima, model: sim-small, price_in: 3, price_out: 15 }',
    'groups:',
    '  - { name: chat, deployments: [sim-small], cache: { semantic: true, threshold: 0.92 } }',
    '  - { name: resilient, deployments: [b-small], retries: 0, cache: { stale_on_error: true, ttl: 1s } }',
    `cache: { ${cache} }`,
    '',
  ].join('\n');
}

async function startServe(name, opts) {
  const cfgPath = path.join(tmp, `${name}.yaml`);
  writeFileSync(cfgPath, config(opts));
  const chk = await runSluice(['config', 'check', cfgPath]);
  assert.equal(chk.code, 0, `config check: ${chk.stderr}`);
  return startSluice(['serve', '--config', cfgPath, '--listen', '127.0.0.1:0'],
    { name: `sluice serve (${name})`, env: { SLUICE_MASTER_KEY: MASTER } });
}

const storeOf = (name) => `sqlite://${path.join(tmp, `${name}.db`)}`;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-cache-'));
  sim = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '0', '--chunk-delay-ms', '1'], { name: 'sim' });
  simB = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '0', '--chunk-delay-ms', '1'], { name: 'sim B' });
  serve = await startServe('main', { store: storeOf('main'), cache: 'embedding_model: emb, max_stale: 1h', simUrl: sim.url, simBUrl: simB.url });
  client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 15000 });
});

after(async () => {
  await serve?.stop(10000);
  await sim?.stop(5000);
  await simB?.stop(5000);
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

// Upstream chat requests a sim has received so far (it logs one line each).
const calls = (s = sim) => (s.stderr().match(/sim: POST \/v1\/chat\/completions/g) ?? []).length;
const embedCalls = () => (sim.stderr().match(/sim: POST \/v1\/embeddings/g) ?? []).length;
// The sim logs a request as it arrives; a little slack so a late line is still counted.
const settle = () => sleep(80);

const user = (content) => ({ role: 'user', content });

async function ask(c, body, headers = {}) {
  const { data, response } = await c.chat.completions.create(body, { headers }).withResponse();
  return { data, cache: response.headers.get('x-sluice-cache'), headers: response.headers };
}

test('exact: a temperature-0 request misses, then hits without reaching the provider', async () => {
  const body = { model: 'sim-small', temperature: 0, messages: [user('What is the capital of France?')] };
  const n0 = calls();
  const first = await ask(client, body);
  assert.equal(first.cache, 'miss');
  const second = await ask(client, body);
  await settle();
  assert.equal(second.cache, 'hit');
  assert.equal(calls() - n0, 1, 'the hit must not reach the provider');
  assert.equal(second.data.choices[0].message.content, first.data.choices[0].message.content);
  assert.equal(second.data.choices[0].message.content, 'This is a simulated reply to: What is the capital of France?');
  assert.deepEqual(second.data.usage.prompt_tokens, first.data.usage.prompt_tokens);
  assert.notEqual(second.data.id, first.data.id);
  assert.equal(second.headers.get('x-sluice-cache-age'), '0');
});

test('exact: changing a parameter or the text misses', async () => {
  const base = { model: 'sim-small', temperature: 0, max_tokens: 50, messages: [user('Name three rivers.')] };
  assert.equal((await ask(client, base)).cache, 'miss');
  assert.equal((await ask(client, base)).cache, 'hit');
  // key order and 0 vs 0.0 do not matter: the same request, written differently
  assert.equal((await ask(client, { messages: base.messages, max_tokens: 50, temperature: 0.0, model: 'sim-small' })).cache, 'hit');
  assert.equal((await ask(client, { ...base, max_tokens: 51 })).cache, 'miss');
  assert.equal((await ask(client, { ...base, seed: 7 })).cache, 'miss');
  assert.equal((await ask(client, { ...base, stop: ['\n'] })).cache, 'miss');
  assert.equal((await ask(client, { ...base, messages: [user('Name three rivers!')] })).cache, 'miss');
  assert.equal((await ask(client, { ...base, messages: [{ role: 'system', content: 'Be terse.' }, ...base.messages] })).cache, 'miss');
});

test('only temperature 0 is cached by default; x-sluice-cache: force and skip', async () => {
  const warm = { model: 'sim-small', temperature: 0.7, messages: [user('Tell me a fact about owls.')] };
  assert.equal((await ask(client, warm)).cache, 'skip');
  assert.equal((await ask(client, warm)).cache, 'skip');
  assert.equal((await ask(client, warm, { 'x-sluice-cache': 'force' })).cache, 'miss');
  assert.equal((await ask(client, warm, { 'x-sluice-cache': 'force' })).cache, 'hit');
  const n0 = calls();
  const cold = { model: 'sim-small', temperature: 0, messages: [user('What is the capital of France?')] };
  assert.equal((await ask(client, cold, { 'x-sluice-cache': 'skip' })).cache, 'skip');
  await settle();
  assert.equal(calls() - n0, 1, 'skip goes to the provider');
});

async function streamText(stream) {
  let text = '', usage = null, finish = null, roles = 0, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (!ch) continue;
    if (ch.delta?.role) roles++;
    text += ch.delta?.content ?? '';
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { text, usage, finish, roles, chunks };
}

test('streaming: a cached answer is replayed as a well-formed stream (openai SDK)', async () => {
  const messages = [user('Explain how tides work in one paragraph, please, with the moon in it.')];
  const whole = await ask(client, { model: 'sim-small', temperature: 0, messages });
  assert.equal(whole.cache, 'miss');
  const n0 = calls();
  const { data: stream, response } = await client.chat.completions.create(
    { model: 'sim-small', temperature: 0, messages, stream: true, stream_options: { include_usage: true } }).withResponse();
  assert.equal(response.headers.get('x-sluice-cache'), 'hit');
  assert.match(response.headers.get('content-type'), /text\/event-stream/);
  const s = await streamText(stream);
  await settle();
  assert.equal(calls() - n0, 0);
  assert.equal(s.text, whole.data.choices[0].message.content);
  assert.equal(s.finish, 'stop');
  assert.equal(s.roles, 1);
  assert.ok(s.chunks >= 4, `role, content pieces, finish and usage chunks; got ${s.chunks}`);
  assert.deepEqual(s.usage, whole.data.usage);
});

test('streaming: a streamed answer is stored from its chunks and served whole', async () => {
  const messages = [user('List the planets of the solar system in order.')];
  const first = await client.chat.completions.create({ model: 'sim-small', temperature: 0, messages, stream: true, stream_options: { include_usage: true } });
  const s = await streamText(first);
  await sleep(50); // the answer is stored as the exchange ends
  const whole = await ask(client, { model: 'sim-small', temperature: 0, messages });
  assert.equal(whole.cache, 'hit');
  assert.equal(whole.data.choices[0].message.content, s.text);
  assert.equal(whole.data.usage.completion_tokens, s.usage.completion_tokens);
});

test('streaming: tool calls are assembled from their chunks, stored, and replayed', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const body = { model: 'sim-small', temperature: 0, tools, messages: [user('Weather in Paris?')] };
  const st = await client.chat.completions.create({ ...body, stream: true });
  const calls0 = {};
  let finish = null;
  for await (const chunk of st) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      const k = (calls0[tc.index] ??= { id: '', name: '', args: '' });
      k.id += tc.id ?? ''; k.name += tc.function?.name ?? ''; k.args += tc.function?.arguments ?? '';
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls0[0].name, 'get_weather');
  await sleep(50);
  const n0 = calls();
  const whole = await ask(client, body);
  assert.equal(whole.cache, 'hit');
  const msg = whole.data.choices[0].message;
  assert.equal(whole.data.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.content, null);
  assert.deepEqual(msg.tool_calls.map((t) => [t.id, t.function.name, t.function.arguments]), [[calls0[0].id, 'get_weather', calls0[0].args]]);
  JSON.parse(msg.tool_calls[0].function.arguments);
  const replay = await client.chat.completions.create({ ...body, stream: true });
  const calls1 = {};
  for await (const chunk of replay) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      const k = (calls1[tc.index] ??= { id: '', name: '', args: '' });
      k.id += tc.id ?? ''; k.name += tc.function?.name ?? ''; k.args += tc.function?.arguments ?? '';
    }
  }
  assert.deepEqual(calls1, calls0);
  await settle();
  assert.equal(calls() - n0, 0);
});

test('Anthropic clients get hits in their own format, whole and streamed', async () => {
  const anthropic = new Anthropic({ baseURL: serve.url, apiKey: 'none', maxRetries: 0, timeout: 15000 });
  const body = { model: 'sim-small', max_tokens: 200, temperature: 0, messages: [user('Why is the sky blue?')] };
  const a = await anthropic.messages.create(body).withResponse();
  assert.equal(a.response.headers.get('x-sluice-cache'), 'miss');
  const n0 = calls();
  const b = await anthropic.messages.create(body).withResponse();
  assert.equal(b.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(b.data.type, 'message');
  assert.equal(b.data.content[0].text, a.data.content[0].text);
  assert.equal(b.data.stop_reason, 'end_turn');
  assert.equal(b.data.usage.output_tokens, a.data.usage.output_tokens);
  const stream = anthropic.messages.stream(body);
  let text = '';
  const types = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta') text += ev.delta.text;
  }
  const final = await stream.finalMessage();
  await settle();
  assert.equal(calls() - n0, 0);
  assert.equal(text, a.data.content[0].text);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
});

test('Anthropic to an Anthropic provider (pass-through): answers are stored from the relayed bytes', async () => {
  const anthropic = new Anthropic({ baseURL: serve.url, apiKey: 'none', maxRetries: 0, timeout: 15000 });
  const messagesCalls = () => (sim.stderr().match(/sim: POST \/v1\/messages/g) ?? []).length;
  const whole = { model: 'claude-sim', max_tokens: 200, temperature: 0, messages: [user('What do bees make?')] };
  const a = await anthropic.messages.create(whole).withResponse();
  assert.equal(a.response.headers.get('x-sluice-cache'), 'miss');
  const b = await anthropic.messages.create(whole).withResponse();
  assert.equal(b.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(b.data.content[0].text, a.data.content[0].text);
  // a streamed answer, decoded on the side while its bytes were relayed, serves a whole request
  const streamed = { ...whole, messages: [user('What do ants eat?')] };
  let text = '';
  for await (const ev of anthropic.messages.stream(streamed)) if (ev.type === 'content_block_delta') text += ev.delta.text;
  assert.equal(text, 'This is a simulated reply to: What do ants eat?');
  await sleep(50);
  const n0 = messagesCalls();
  const c = await anthropic.messages.create(streamed).withResponse();
  assert.equal(c.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(c.data.content[0].text, text);
  // the same canonical request from an OpenAI client is the same entry: the answer the
  // Anthropic client got, in OpenAI's shape, whole and streamed
  const o = { model: 'claude-sim', temperature: 0, max_tokens: 200, messages: [user('What do bees make?')] };
  const o1 = await ask(client, o);
  assert.equal(o1.cache, 'hit');
  assert.equal(o1.data.choices[0].message.content, a.data.content[0].text);
  const st = await client.chat.completions.create({ ...o, stream: true });
  const s2 = await streamText(st);
  assert.equal(s2.text, a.data.content[0].text);
  await settle();
  assert.equal(messagesCalls() - n0, 0);
});

test('semantic: a paraphrase hits, a different question misses; the embedding is in the ledger', async () => {
  const e0 = embedCalls(), n0 = calls();
  const first = await ask(client, { model: 'chat', temperature: 0, messages: [user('What is the capital of France?')] });
  assert.equal(first.cache, 'miss');
  const para = await ask(client, { model: 'chat', temperature: 0, messages: [user('what is the capital city of France')] });
  assert.equal(para.cache, 'hit');
  assert.ok(Number(para.headers.get('x-sluice-cache-similarity')) >= 0.92);
  assert.equal(para.data.choices[0].message.content, first.data.choices[0].message.content);
  const other = await ask(client, { model: 'chat', temperature: 0, messages: [user('What is the capital of Germany?')] });
  assert.equal(other.cache, 'miss');
  assert.equal(other.data.choices[0].message.content, 'This is a simulated reply to: What is the capital of Germany?');
  // another system prompt is another scope: the same question misses
  const sys = await ask(client, { model: 'chat', temperature: 0, messages: [{ role: 'system', content: 'Answer in French.' }, user('what is the capital city of France')] });
  assert.equal(sys.cache, 'miss');
  // tool-calling requests never use the semantic cache (exact only: no embedding)
  const e1 = embedCalls();
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
  const t = await ask(client, { model: 'chat', temperature: 0, tools, messages: [user('what is the capital city of France')] });
  assert.equal(t.cache, 'miss');
  await settle();
  assert.equal(embedCalls() - e1, 0);
  assert.equal(embedCalls() - e0, 4);
  assert.equal(calls() - n0, 4, 'the paraphrase alone was answered from the cache');
});

test('TTL: an answer expires', async () => {
  const body = { model: 'short', temperature: 0, messages: [user('How far away is the moon?')] };
  assert.equal((await ask(client, body)).cache, 'miss');
  assert.equal((await ask(client, body)).cache, 'hit');
  await sleep(1200);
  assert.equal((await ask(client, body)).cache, 'miss');
});

test('stale on error: with every deployment down the expired answer is served, marked stale', async () => {
  const body = { model: 'resilient', temperature: 0, messages: [user('What is the boiling point of water?')] };
  const fresh = await ask(client, body);
  assert.equal(fresh.cache, 'miss');
  await sleep(1200); // past the group's 1s ttl
  const r = await simB.stop(5000);
  assert.equal(r.code, 0);
  const stale = await ask(client, body);
  assert.equal(stale.cache, 'stale');
  assert.equal(stale.data.choices[0].message.content, fresh.data.choices[0].message.content);
  assert.ok(Number(stale.headers.get('x-sluice-cache-age')) >= 1);
  // without stale_on_error (the model asked for directly) the failure is the answer
  await assert.rejects(client.chat.completions.create({ model: 'b-small', temperature: 0, messages: body.messages }),
    (e) => e.status === 502);
  // a question never answered has nothing stale to serve
  await assert.rejects(client.chat.completions.create({ ...body, messages: [user('Never asked before?')] }),
    (e) => e.status === 502);
});

test('ledger: hits cost nothing, record what they saved; cost report shows hit rate and savings', async () => {
  await sleep(300); // the ledger writer commits in groups
  const r = await runSluice(['cost', 'report', '--store', storeOf('main'), '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  const small = rows.find((x) => x.model === 'sim-small');
  assert.ok(small.cache_hits >= 8, `sim-small hits: ${small.cache_hits}`);
  assert.ok(small.saved_micros > 0);
  const rate = Number(small.hit_rate.replace('%', ''));
  assert.ok(Math.abs(rate - (small.cache_hits * 100) / small.requests) < 0.1, `${small.hit_rate} of ${small.requests}`);
  const emb = rows.find((x) => x.model === 'emb');
  assert.equal(emb.requests, 0, 'the embedding call is spend, not a request');
  assert.ok(emb.prompt_tokens > 0 && emb.cost_micros > 0);
  const metrics = await (await fetch(`${serve.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const hits = Number(/^sluice_cache_answers_total\{result="hit"\} (\d+)$/m.exec(metrics)?.[1]);
  const stale = Number(/^sluice_cache_answers_total\{result="stale"\} (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(hits >= small.cache_hits, `metrics hits ${hits}`);
  assert.equal(stale, 1);
  const table = await runSluice(['cost', 'report', '--store', storeOf('main')]);
  assert.match(table.stdout, /HIT RATE/);
  assert.match(table.stdout, /SAVED/);
});

test('tenants: two virtual keys never share an answer', async () => {
  const admin = async (name) => {
    const r = await fetch(`${serve.url}/admin/keys`, { method: 'POST', headers: { Authorization: `Bearer ${MASTER}`, 'Content-Type': 'application/json' }, body: q({ name }), signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 201);
    return (await r.json()).key;
  };
  const a = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: await admin('tenant-a'), maxRetries: 0, timeout: 15000 });
  const b = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: await admin('tenant-b'), maxRetries: 0, timeout: 15000 });
  const body = { model: 'sim-small', temperature: 0, messages: [user('Our secret plan for the quarter?')] };
  assert.equal((await ask(a, body)).cache, 'miss');
  assert.equal((await ask(a, body)).cache, 'hit');
  assert.equal((await ask(b, body)).cache, 'miss', 'tenant b must not see tenant a\'s answer');
  assert.equal((await ask(b, body)).cache, 'hit');
  // semantic scope is per tenant too
  const q1 = { model: 'chat', temperature: 0, messages: [user('Where is the Eiffel Tower?')] };
  const q2 = { model: 'chat', temperature: 0, messages: [user('where is the Eiffel Tower located')] };
  assert.equal((await ask(a, q1)).cache, 'miss');
  assert.equal((await ask(b, q2)).cache, 'miss');
  assert.equal((await ask(a, q2)).cache, 'hit');
});

test('main server exits cleanly', async () => {
  const r = await serve.stop(10000);
  assert.equal(r.code, 0);
  assert.deepEqual(sanitizerReports(serve.stderr()), []);
  serve = null;
});

test('eviction: a memory cap keeps the most recently used answers', async () => {
  const s = await startServe('small', { store: storeOf('small'), cache: 'max_bytes: 3KiB', simUrl: sim.url, simBUrl: sim.url });
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 15000 });
    const body = (i) => ({ model: 'sim-small', temperature: 0, messages: [user(`Question number ${i} about caching?`)] });
    assert.equal((await ask(c, body(0))).cache, 'miss');
    assert.equal((await ask(c, body(0))).cache, 'hit');
    for (let i = 1; i <= 8; i++) assert.equal((await ask(c, body(i))).cache, 'miss');
    assert.equal((await ask(c, body(8))).cache, 'hit', 'the newest answer is kept');
    assert.equal((await ask(c, body(0))).cache, 'miss', 'the oldest was evicted');
  } finally {
    const r = await s.stop(10000);
    assert.equal(r.code, 0);
    assert.deepEqual(sanitizerReports(s.stderr()), []);
  }
});

test('persistence: the SQLite backend keeps answers and the semantic index across a restart', async () => {
  const opts = { store: storeOf('persist'), cache: 'backend: sqlite, embedding_model: emb', simUrl: sim.url, simBUrl: sim.url };
  let s = await startServe('persist', opts);
  const exact = { model: 'sim-small', temperature: 0, messages: [user('What does a barometer measure?')] };
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 15000 });
    assert.equal((await ask(c, exact)).cache, 'miss');
    assert.equal((await ask(c, { model: 'chat', temperature: 0, messages: [user('What is the tallest mountain on Earth?')] })).cache, 'miss');
  } finally {
    assert.equal((await s.stop(10000)).code, 0);
  }
  s = await startServe('persist', opts);
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 15000 });
    const n0 = calls();
    assert.equal((await ask(c, exact)).cache, 'hit');
    const para = await ask(c, { model: 'chat', temperature: 0, messages: [user('what is the tallest mountain on earth')] });
    assert.equal(para.cache, 'hit');
    assert.equal(para.data.choices[0].message.content, 'This is a simulated reply to: What is the tallest mountain on Earth?');
    await settle();
    assert.equal(calls() - n0, 0);
  } finally {
    const r = await s.stop(10000);
    assert.equal(r.code, 0);
    assert.deepEqual(sanitizerReports(s.stderr()), []);
  }
});

test('sims exit cleanly', async () => {
  assert.equal((await sim.stop(5000)).code, 0);
  assert.deepEqual(sanitizerReports(sim.stderr()), []);
  sim = null;
  assert.deepEqual(sanitizerReports(simB.stderr()), []);
});
