// The official `openai` SDK's embeddings.create through sluice to `sluice sim`, on its three
// embeddings APIs: OpenAI's, DashScope's native one (10 texts a request) and Gemini's
// batchEmbedContents (100). The sim's vectors are deterministic per text, so a vector must be
// the same whichever API and batch it came through; usage is words + 1 per text (docs/sim.md).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, runSluice, sanitizerReports } from './harness.mjs';

let stack, client;
const T = { timeout: 30000 };
const DS_PATH = '/api/v1/services/embeddings/text-embedding/text-embedding';

before(async () => {
  const q = JSON.stringify;
  stack = await startStack({
    extra: (sim) => ({
      providers: [
        `  - { name: simds, kind: openai, base_url: ${q(`${sim}/v1`)}, embeddings: dashscope, embeddings_url: ${q(sim + DS_PATH)}, api_key: ds-key }`,
        `  - { name: simgem, kind: gemini, base_url: ${q(`${sim}/v1beta`)}, api_key: gem-key }`,
      ],
      models: [
        '  - { name: emb-small, provider: sim, model: sim-embed }',
        '  - { name: emb-ds, provider: simds, model: text-embedding-v4 }',
        '  - { name: emb-ds-3, provider: simds, model: sim-embed, max_batch: 3 }',
        '  - { name: emb-gem, provider: simgem, model: sim-embed }',
      ],
    }),
  });
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'anything', timeout: 20000, maxRetries: 0 });
});
after(async () => { if (stack) await stack.cleanup(); });

const words = (s) => (s.trim() === '' ? 0 : s.trim().split(/\s+/).length);
const simTokens = (texts) => texts.reduce((n, t) => n + words(t) + 1, 0);
const texts = (n, tag) => Array.from({ length: n }, (_, i) => `${tag} sentence number ${i} about rivers ${i % 7}`);
const norm = (v) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

// The sim prints float32 values with 8 digits: a value read back may be one float32 step off.
function assertClose(a, b, what) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

// Reference vectors: one text per request, floats, from the OpenAI-format path.
const refCache = new Map();
async function ref(text) {
  if (!refCache.has(text)) {
    const r = await client.embeddings.create({ model: 'emb-small', input: text, encoding_format: 'float' });
    stack.record('emb-small', { prompt: r.usage.prompt_tokens });
    refCache.set(text, r.data[0].embedding);
  }
  return refCache.get(text);
}

test('one string, floats: a unit vector of 256 values, exact usage', T, async () => {
  const r = await client.embeddings.create({ model: 'emb-small', input: 'hello embedding world', encoding_format: 'float' });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 1);
  assert.equal(r.data[0].object, 'embedding');
  assert.equal(r.data[0].index, 0);
  assert.ok(Array.isArray(r.data[0].embedding));
  assert.equal(r.data[0].embedding.length, 256);
  assert.ok(Math.abs(norm(r.data[0].embedding) - 1) < 1e-4, `norm ${norm(r.data[0].embedding)}`);
  assert.equal(r.usage.prompt_tokens, 4);
  assert.equal(r.usage.total_tokens, 4);
  stack.record('emb-small', { prompt: 4 });
});

test('SDK default (base64 on the wire, decoded by the SDK) equals the float reply', T, async () => {
  const text = 'the same text twice';
  const b = await client.embeddings.create({ model: 'emb-small', input: text });
  stack.record('emb-small', { prompt: b.usage.prompt_tokens });
  assert.ok(b.data[0].embedding instanceof Float32Array || Array.isArray(b.data[0].embedding));
  assertClose(Array.from(b.data[0].embedding), await ref(text), 'base64 vs float');
});

test('a batch through the OpenAI-format provider: in order, each as embedded alone', T, async () => {
  const input = texts(5, 'openai');
  const r = await client.embeddings.create({ model: 'emb-small', input, encoding_format: 'float' });
  stack.record('emb-small', { prompt: simTokens(input) });
  assert.equal(r.data.length, 5);
  assert.equal(r.usage.prompt_tokens, simTokens(input));
  for (let i = 0; i < 5; i++) {
    assert.equal(r.data[i].index, i);
    assert.deepEqual(r.data[i].embedding, await ref(input[i]), `item ${i}`);
  }
});

test('DashScope native: 25 texts (10 a request) come back in order, usage summed, base64 decoded', T, async () => {
  const input = texts(25, 'dashscope');
  const r = await client.embeddings.create({ model: 'emb-ds', input });
  stack.record('emb-ds', { prompt: simTokens(input) });
  assert.equal(r.data.length, 25);
  assert.equal(r.model, 'text-embedding-v4');
  assert.equal(r.usage.prompt_tokens, simTokens(input));
  for (let i = 0; i < 25; i++) {
    assert.equal(r.data[i].index, i);
    assertClose(Array.from(r.data[i].embedding), await ref(input[i]), `item ${i}`);
  }
});

test('DashScope native, floats and base64 agree bit for bit (float32), dimensions honoured', T, async () => {
  const input = texts(4, 'bits');
  const f = await client.embeddings.create({ model: 'emb-ds', input, encoding_format: 'float', dimensions: 64 });
  const b = await client.embeddings.create({ model: 'emb-ds', input, encoding_format: 'base64', dimensions: 64 });
  stack.record('emb-ds', { prompt: simTokens(input) });
  stack.record('emb-ds', { prompt: simTokens(input) });
  for (let i = 0; i < 4; i++) {
    assert.equal(f.data[i].embedding.length, 64);
    assert.equal(typeof b.data[i].embedding, 'string');
    const raw = Buffer.from(b.data[i].embedding, 'base64');
    const decoded = Array.from({ length: raw.length / 4 }, (_, k) => raw.readFloatLE(4 * k));
    assert.deepEqual(decoded, f.data[i].embedding.map(Math.fround), `item ${i}`);
  }
});

test('max_batch: 7 texts with max_batch 3 go as 3 requests, reassembled in order', T, async () => {
  const input = texts(7, 'maxbatch');
  const r = await client.embeddings.create({ model: 'emb-ds-3', input, encoding_format: 'float' });
  stack.record('emb-ds-3', { prompt: simTokens(input) });
  assert.equal(r.data.length, 7);
  assert.equal(r.usage.prompt_tokens, simTokens(input));
  for (let i = 0; i < 7; i++) assertClose(r.data[i].embedding, await ref(input[i]), `item ${i}`);
});

test('Gemini batchEmbedContents: 150 texts (100 a request), estimated usage', T, async () => {
  const input = texts(150, 'gemini');
  const r = await client.embeddings.create({ model: 'emb-gem', input, encoding_format: 'float' });
  assert.equal(r.data.length, 150);
  assert.ok(r.usage.prompt_tokens > 0, `estimated usage ${r.usage.prompt_tokens}`);
  for (const i of [0, 99, 100, 149]) assertClose(r.data[i].embedding, await ref(input[i]), `item ${i}`);
});

test('bad input and unknown model: the SDK raises 400 and 404', T, async () => {
  await assert.rejects(client.embeddings.create({ model: 'emb-small', input: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
  await assert.rejects(client.embeddings.create({ model: 'emb-ds', input: [[1, 2, 3]] }),
    (e) => e instanceof OpenAI.BadRequestError && /token arrays/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'no-such-embedder', input: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  stack.record('emb-small'); // refused requests are ledger rows too, with no tokens
  stack.record('emb-ds');
});

test('SIGTERM: sluice drains and exits 0, no sanitizer report', { timeout: 20000 }, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.killed, false, `sluice serve did not exit within 10 s${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], `sanitizer reports${stack.stderrTail()}`);
  assert.equal(r.serve.code, 0, `exit code ${r.serve.code}${stack.stderrTail()}`);
});

test('sluice usage: one row per request, exact prompt tokens, Gemini estimated', { timeout: 20000 }, async () => {
  const r = await runSluice(['usage', '--store', stack.storeUrl, '--format', 'json']);
  assert.equal(r.code, 0, `sluice usage failed: ${r.stderr}`);
  const by = new Map(JSON.parse(r.stdout).map((x) => [x.model, x]));
  for (const model of ['emb-small', 'emb-ds', 'emb-ds-3']) {
    const want = stack.ledger.get(model), row = by.get(model);
    assert.ok(row, `no ledger row for ${model}: ${r.stdout}`);
    assert.equal(row.requests, want.requests, `${model} requests`);
    assert.equal(row.prompt_tokens, want.prompt_tokens, `${model} prompt tokens`);
    assert.equal(row.completion_tokens, 0, `${model} completion tokens`);
    assert.ok(!row.estimated, `${model}: the sim reported usage (${row.estimated})`);
  }
  const gem = by.get('emb-gem');
  assert.ok(gem && gem.requests === 1 && gem.prompt_tokens > 0, `emb-gem row: ${JSON.stringify(gem)}`);
  assert.ok(gem.estimated, 'Gemini reports no usage: the row is estimated');
});
