// The official `cohere-ai` SDK (CohereClientV2.rerank, which posts to {environment}/v2/rerank)
// and plain fetch on /v1/rerank, through sluice to `sluice sim` on its three rerank APIs:
// Jina-style /v1/rerank, Cohere's /v2/rerank and DashScope's native text-rerank. The sim's
// score is a formula of the texts (docs/sim.md), computed here too, so every score, order and
// token count is known exactly whichever API and split it went through.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CohereClientV2, CohereError } from 'cohere-ai';
import { startStack, runSluice, sanitizerReports } from './harness.mjs';

let stack, cohere;
const T = { timeout: 30000 };

before(async () => {
  const q = JSON.stringify;
  stack = await startStack({
    extra: (sim) => ({
      providers: [
        `  - { name: simco, kind: openai, base_url: ${q(sim)}, rerank: cohere, api_key: co-key }`,
        `  - { name: simds, kind: openai, base_url: ${q(`${sim}/v1`)}, rerank: dashscope, api_key: ds-key }`,
      ],
      models: [
        '  - { name: rr-jina, provider: sim, model: sim-rerank, capabilities: [rerank] }',
        '  - { name: rr-co, provider: simco, model: rerank-v3.5 }',
        '  - { name: rr-ds, provider: simds, model: gte-rerank-v2 }',
        '  - { name: rr-ds-2, provider: simds, model: gte-rerank-v2, max_batch: 2 }',
        '  - { name: rr-dead, provider: deadp, model: dead-rerank }',
        '  - { name: chat-only, provider: sim, model: sim-small, capabilities: [tools, json] }',
        'groups:',
        '  - { name: rr-group, strategy: fallback, deployments: [chat-only, rr-dead, rr-jina] }',
      ],
    }),
  });
  cohere = new CohereClientV2({ environment: stack.url, token: 'anything' });
});
after(async () => { if (stack) await stack.cleanup(); });

// ---- docs/sim.md: the sim's relevance score and token count ---------------------------
const isCjk = (c) => (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x9fff) ||
  (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0x20000 && c <= 0x2ffff);
const isWord = (c) => (c < 0x80 ? /[A-Za-z0-9]/.test(String.fromCodePoint(c))
  : !isCjk(c) && !(c >= 0x2000 && c <= 0x206f) && !(c >= 0x3000 && c <= 0x303f) && !(c >= 0xff00 && c <= 0xffef));

function features(text) {
  const f = new Set();
  const cps = Array.from(text.split(/(\s+)/).filter((t) => !t.startsWith('@sim:')).join(''), (ch) => ch.codePointAt(0));
  let word = '', run = [];
  const flushWord = () => { if (word) f.add('w:' + word.toLowerCase()); word = ''; };
  const flushRun = () => {
    for (let i = 0; i + 1 < run.length; i++) f.add('b:' + String.fromCodePoint(run[i], run[i + 1]));
    if (run.length === 1) f.add('u:' + String.fromCodePoint(run[0]));
    run = [];
  };
  for (const c of cps) {
    if (isWord(c)) word += String.fromCodePoint(c); else flushWord();
    if (isCjk(c)) run.push(c); else flushRun();
  }
  flushWord(); flushRun();
  return f;
}
function simScore(query, doc) {
  const q = features(query), d = features(doc);
  if (!q.size || !d.size) return 0;
  let c = 0;
  for (const x of q) if (d.has(x)) c++;
  return 0.9 * c / q.size + 0.1 * c / d.size;
}
const words = (s) => (s.trim() === '' ? 0 : s.trim().split(/\s+/).length);
const simTokens = (query, docs) => words(query) + 1 + docs.reduce((n, d) => n + words(d) + 1, 0);
function expected(query, docs, topN = docs.length) {
  return docs.map((d, index) => ({ index, score: simScore(query, d) }))
    .sort((a, b) => b.score - a.score || a.index - b.index).slice(0, topN);
}
function assertRanked(results, want, what) {
  assert.deepEqual(results.map((r) => r.index), want.map((w) => w.index), `${what}: order`);
  for (let i = 0; i < want.length; i++) {
    const got = results[i].relevanceScore ?? results[i].relevance_score;
    assert.ok(Math.abs(got - want[i].score) < 1e-12, `${what}[${i}]: ${got} vs ${want[i].score}`);
  }
}

async function rerank(body, headers = {}) {
  const res = await fetch(`${stack.url}/v1/rerank`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const QUERY = 'How do I reset a forgotten password?';
const DOCS = [
  'Our office is closed on Sundays and public holidays.',
  'To reset a forgotten password, open Settings and choose Reset password.',
  'Bananas are rich in potassium.',
  'A password must have at least twelve characters.',
  'Forgotten umbrellas are kept at the front desk for a week.',
];

// ---- the Cohere SDK ------------------------------------------------------------------------
test('cohere-ai rerank: the relevant document first, scores exactly the sim formula, topN applied', T, async () => {
  const r = await cohere.rerank({ model: 'rr-co', query: QUERY, documents: DOCS, topN: 3 },
    { maxRetries: 0, headers: { 'x-sluice-tag': 'stage=rerank' } });
  assert.equal(r.results.length, 3);
  assert.equal(r.results[0].index, 1, 'the reset-password document outranks the rest');
  assertRanked(r.results, expected(QUERY, DOCS, 3), 'rr-co');
  assert.equal(r.meta.billedUnits.searchUnits, 1);
  assert.ok(r.id, 'an id');
  stack.record('rr-co'); // Cohere reports no tokens: estimated (checked below)
});

test('cohere-ai rerank through each provider shape gives the same ranking', T, async () => {
  for (const model of ['rr-jina', 'rr-ds', 'rr-ds-2']) {
    const r = await cohere.rerank({ model, query: QUERY, documents: DOCS }, { maxRetries: 0 });
    assertRanked(r.results, expected(QUERY, DOCS), model);
    // rr-ds-2 sends parts of 2 documents, each with the query: the sim counts the query 3 times
    const parts = model === 'rr-ds-2' ? [DOCS.slice(0, 2), DOCS.slice(2, 4), DOCS.slice(4)] : [DOCS];
    const tokens = parts.reduce((n, p) => n + simTokens(QUERY, p), 0);
    assert.equal(r.meta.billedUnits.searchUnits, parts.length, `${model}: one search unit per request`);
    stack.record(model, { prompt: tokens });
  }
});

test('Chinese query: character bigrams rank the matching clause first', T, async () => {
  const query = '合同的违约责任如何约定？';
  const docs = ['第一条 本合同自双方签字之日起生效。', '第五条 违约责任：任何一方违约，应承担违约责任并赔偿损失。',
    '第九条 争议解决：提交仲裁委员会仲裁。'];
  const r = await cohere.rerank({ model: 'rr-ds', query, documents: docs, topN: 1 }, { maxRetries: 0 });
  assert.equal(r.results.length, 1);
  assert.equal(r.results[0].index, 1);
  assertRanked(r.results, expected(query, docs, 1), 'zh');
  stack.record('rr-ds', { prompt: simTokens(query, docs) });
});

// ---- plain fetch on /v1/rerank --------------------------------------------------------------
test('fetch /v1/rerank: {text} documents, return_documents, usage counted by the sim', T, async () => {
  const docs = DOCS.map((text) => ({ text }));
  const r = await rerank({ model: 'rr-jina', query: QUERY, documents: docs, top_n: 2, return_documents: true });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertRanked(r.body.results, expected(QUERY, DOCS, 2), 'jina');
  assert.equal(r.body.results[0].document.text, DOCS[r.body.results[0].index]);
  assert.equal(r.body.usage.prompt_tokens, simTokens(QUERY, DOCS));
  assert.equal(r.body.usage.total_tokens, simTokens(QUERY, DOCS));
  stack.record('rr-jina', { prompt: simTokens(QUERY, DOCS) });
});

test('600 documents to DashScope (500 a request): two parts, one merged ranking', T, async () => {
  const docs = Array.from({ length: 600 }, (_, i) => `note ${i} about ${i % 3 === 0 ? 'password reset steps' : 'lunch menus'} ${i % 11}`);
  const r = await rerank({ model: 'rr-ds', query: 'password reset', documents: docs, top_n: 5 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertRanked(r.body.results, expected('password reset', docs, 5), 'split');
  assert.equal(r.body.meta.billed_units.search_units, 2, 'two upstream requests');
  // each part counts its own query: the sim's usage is summed over the parts
  const parts = [docs.slice(0, 500), docs.slice(500)];
  const tokens = parts.reduce((n, p) => n + simTokens('password reset', p), 0);
  assert.equal(r.body.usage.prompt_tokens, tokens);
  stack.record('rr-ds', { prompt: tokens });
});

test('50 chunks of ~800 tokens to DashScope: split by its 30,000-token cap, not only by count', T, async () => {
  // ~2,700 ASCII characters: sluice estimates ~800 tokens a chunk, 50 of them ~41,000 > 24,000
  const filler = (i) => Array.from({ length: 450 }, (_, k) => ['clause', 'term', 'party', 'fee'][(i + k) % 4]).join(' ');
  const docs = Array.from({ length: 50 }, (_, i) => `chunk ${i} ${i === 37 ? 'termination notice period' : ''} ${filler(i)}`);
  const query = 'termination notice period';
  const r = await rerank({ model: 'rr-ds', query, documents: docs, top_n: 3 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.results[0].index, 37);
  assertRanked(r.body.results, expected(query, docs, 3), 'token split');
  assert.equal(r.body.meta.billed_units.search_units, 2, 'two requests under the token cap');
  stack.record('rr-ds', { prompt: r.body.usage.prompt_tokens });
});

test('an injected 429 (fail_times=1) is retried: the client sees 200', T, async () => {
  const query = 'retry me please @sim:status=429 @sim:retry_after=1 @sim:fail_times=1';
  const r = await rerank({ model: 'rr-jina', query, documents: ['retry me', 'no'] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertRanked(r.body.results, expected(query, ['retry me', 'no']), 'retried');
  stack.record('rr-jina', { prompt: simTokens(query, ['retry me', 'no']) });
});

test('a group skips its chat model and its dead deployment, and answers from the reranker', T, async () => {
  const r = await rerank({ model: 'rr-group', query: QUERY, documents: DOCS, top_n: 1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.results[0].index, 1);
  assert.equal(r.body.model, 'sim-rerank', 'answered by rr-jina, not the chat model (sim-small)');
  stack.record('rr-group', { prompt: simTokens(QUERY, DOCS) });
});

test('errors: 400 for bad input, 404 for an unknown model, the provider status after retries', T, async () => {
  await assert.rejects(cohere.rerank({ model: 'rr-co', query: QUERY, documents: [] }, { maxRetries: 0 }),
    (e) => e instanceof CohereError && e.statusCode === 400 && /documents/.test(JSON.stringify(e.body)));
  await assert.rejects(cohere.rerank({ model: 'no-such-reranker', query: QUERY, documents: DOCS }, { maxRetries: 0 }),
    (e) => e instanceof CohereError && e.statusCode === 404);
  let r = await rerank({ model: 'rr-jina', query: '', documents: ['a'] });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'query');
  r = await rerank({ model: 'sim-small', query: 'q', documents: ['a'], top_n: 1.5 });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'top_n');
  r = await rerank({ model: 'rr-ds', query: 'always broken @sim:status=503', documents: ['a'] });
  assert.equal(r.status, 503, JSON.stringify(r.body));
  assert.match(r.body.error.message, /Simulated HTTP 503/);
  r = await rerank({ model: 'rr-dead', query: 'q', documents: ['a'] });
  assert.equal(r.status, 502, JSON.stringify(r.body));
  stack.record('rr-co');
  stack.record('rr-jina');
  stack.record('rr-ds');
  stack.record('rr-dead');
});

test('SIGTERM: sluice drains and exits 0, no sanitizer report', { timeout: 20000 }, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.killed, false, `sluice serve did not exit within 10 s${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], `sanitizer reports${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.sim.stderr()), [], `sim sanitizer reports${stack.stderrTail()}`);
  assert.equal(r.serve.code, 0, `exit code ${r.serve.code}${stack.stderrTail()}`);
  assert.equal(r.sim.code, 0, `sim exit code ${r.sim.code}${stack.stderrTail()}`);
});

test('the ledger: one row per rerank request with the sim\'s tokens, Cohere estimated, tags kept', { timeout: 20000 }, async () => {
  const r = await runSluice(['usage', '--store', stack.storeUrl, '--format', 'json']);
  assert.equal(r.code, 0, `sluice usage failed: ${r.stderr}`);
  const by = new Map(JSON.parse(r.stdout).map((x) => [x.model, x]));
  for (const [model, want] of stack.ledger) {
    const row = by.get(model);
    assert.ok(row, `no ledger row for ${model}: ${r.stdout}`);
    assert.equal(row.requests, want.requests, `${model} requests`);
    assert.equal(row.completion_tokens, 0, `${model} completion tokens`);
    if (model === 'rr-co') {
      assert.ok(row.prompt_tokens > 0 && row.estimated === 1, `rr-co is estimated: ${JSON.stringify(row)}`);
    } else {
      assert.equal(row.prompt_tokens, want.prompt_tokens, `${model} prompt tokens`);
      assert.equal(row.estimated, 0, `${model}: the sim reported usage`);
    }
  }
  const tags = await runSluice(['cost', 'report', '--store', stack.storeUrl, '--by', 'tag', '--format', 'json']);
  assert.equal(tags.code, 0, tags.stderr);
  const tag = JSON.parse(tags.stdout).find((x) => x.tag === 'stage=rerank');
  assert.ok(tag && tag.requests === 1 && tag.prompt_tokens > 0, `stage=rerank: ${tags.stdout}`);
});
