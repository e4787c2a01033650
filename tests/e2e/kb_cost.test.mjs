// The two-stage saving (docs/kb.md, Costs): a search with "compare" and `sluice kb eval` price
// the two-stage pipeline against the strong model alone, from the configured prices of the
// models. Priced copies of the sim models: stage 1 at 20 per million tokens, a strong
// embedding model at 130, a rerank model at 50 (USD), so every figure is a whole number of
// micro-units and the arithmetic can be checked exactly.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startStack, runSluice, sanitizerReports } from './harness.mjs';

let stack, dir;
const T = { timeout: 120000 };
const CHEAP = 20, STRONG = 130, RERANK = 50; // price per million tokens
const micros = (s) => (s === null ? null : Math.round(Number(s) * 1e6));

const TOPICS = [
  ['Retry budget', 'The retry budget caps how many extra attempts one request may spend.'],
  ['Hedged requests', 'A hedged request sends a second copy after the slow threshold passes.'],
  ['Circuit breaker', 'The breaker opens after five failures and half-opens after a cool-down.'],
  ['Prompt cache', 'Cached prompt tokens are billed at the cheaper cached price.'],
  ['付款方式', '买方应于验收合格后三十日内以银行转账方式支付全部价款。'],
  ['违约责任', '任何一方违约的，应向守约方支付合同总价百分之五的违约金。'],
];

const kb = (...args) => runSluice(['kb', ...args, '--url', stack.url], { timeoutMs: 60000 });

before(async () => {
  stack = await startStack({
    extra: () => ({ models: [
      `  - { name: cheap-embed, provider: sim, model: sim-small, price_in: ${CHEAP}, price_out: ${CHEAP} }`,
      `  - { name: strong-embed, provider: sim, model: sim-large, price_in: ${STRONG}, price_out: ${STRONG} }`,
      `  - { name: rr-priced, provider: sim, model: sim-rerank, capabilities: [rerank], price_in: ${RERANK}, price_out: ${RERANK} }`,
    ] }),
  });
  dir = path.join(stack.tmp, 'docs');
  mkdirSync(dir, { recursive: true });
  for (let d = 0; d < 3; d++) {
    const body = TOPICS.map(([h, t], i) => `## ${h} ${d}\n\n${t} ${'Filler sentence for the section. '.repeat(20 + i * 7)}\n`).join('\n');
    writeFileSync(path.join(dir, `guide${d}.md`), `# Guide ${d}\n\n${body}`);
  }
  for (const [name, stage2] of [['emb', ['--strong-embed', 'strong-embed']], ['rr', ['--rerank', 'rr-priced']]]) {
    let r = await kb('create', name, '--embed', 'cheap-embed', ...stage2, '--answer', 'sim-small');
    assert.equal(r.code, 0, r.stderr + stack.stderrTail());
    r = await kb('add', name, dir);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => { if (stack) await stack.cleanup(); });

async function search(name, query) {
  const res = await fetch(`${stack.url}/v1/kb/${name}/search`, { method: 'POST',
    body: JSON.stringify({ query, compare: true }) });
  assert.equal(res.status, 200);
  return res.json();
}

// The chunks' token total as `sluice kb chunk` sizes them (the estimate the store keeps).
async function chunkTokens() {
  let total = 0, count = 0;
  for (let d = 0; d < 3; d++) {
    const r = await runSluice(['kb', 'chunk', path.join(dir, `guide${d}.md`), '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    for (const c of JSON.parse(r.stdout).chunks) { total += c.size; count++; }
  }
  return { total, count };
}

test('a search prices the strong embedding model alone against the two stages', T, async () => {
  const { total, count } = await chunkTokens();
  const s = await search('emb', 'How do hedged requests work?');
  const c = s.compare;
  assert.equal(c.mode, 'embed');
  assert.equal(c.strong_model, 'strong-embed');
  assert.equal(c.currency, 'USD');
  assert.equal(c.chunks, count);
  assert.equal(c.chunk_tokens, total);
  assert.equal(c.question_tokens, s.usage.recall.tokens);
  // two stages: every chunk embedded by the cheap model once; per question what both stages billed
  assert.equal(micros(c.two_stage.ingest), total * CHEAP);
  assert.equal(micros(c.two_stage.query), micros(s.usage.recall.cost) + micros(s.usage.rerank.cost));
  assert.equal(micros(s.usage.recall.cost), s.usage.recall.tokens * CHEAP);
  assert.equal(micros(s.usage.rerank.cost), s.usage.rerank.tokens * STRONG);
  // the strong model alone: every chunk embedded by it at ingest, and each question
  assert.equal(micros(c.strong_only.ingest), total * STRONG);
  assert.equal(micros(c.strong_only.query), c.question_tokens * STRONG);
});

test('a search prices reranking every chunk against reranking the candidates', T, async () => {
  const s = await search('rr', '违约金怎么计算？');
  const c = s.compare;
  assert.equal(c.mode, 'model');
  assert.equal(micros(c.two_stage.query), s.usage.recall.tokens * CHEAP + s.usage.rerank.tokens * RERANK);
  assert.equal(micros(c.strong_only.ingest), 0, 'a rerank model alone needs no index');
  assert.equal(micros(c.strong_only.query), (c.chunks * c.question_tokens + c.chunk_tokens) * RERANK);
  assert.ok(micros(c.strong_only.query) > micros(c.two_stage.query));
});

test('kb eval reports the saving per question and in total', T, async () => {
  const file = path.join(stack.tmp, 'q.jsonl');
  writeFileSync(file, TOPICS.map(([h]) => JSON.stringify({ question: h, document: path.join(dir, 'guide1.md'), start: 0, end: 10 })).join('\n') + '\n');
  for (const name of ['emb', 'rr']) {
    const r = await kb('eval', name, '--questions', file, '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout).compare;
    assert.equal(c.per_query.length, TOPICS.length);
    const sum = (k) => c.per_query.reduce((a, q) => a + micros(q[k]), 0);
    assert.equal(micros(c.two_stage_queries), sum('two_stage'));
    assert.equal(micros(c.strong_only_queries), sum('strong_only'));
    assert.equal(micros(c.two_stage_total), micros(c.two_stage_queries) + micros(c.two_stage_ingest));
    assert.equal(micros(c.strong_only_total), micros(c.strong_only_queries) + micros(c.strong_only_ingest));
    assert.equal(micros(c.saved), micros(c.strong_only_total) - micros(c.two_stage_total));
    assert.ok(micros(c.saved) > 0, `the two stages cost less: ${JSON.stringify(c)}`);
    for (const q of c.per_query) assert.ok(micros(q.two_stage) > 0 && micros(q.strong_only) > 0);
    const table = await kb('eval', name, '--questions', file, '--per-query');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /TWO-STAGE\s+STRONG ALONE/);
    assert.match(table.stdout, /question 6 /);
    assert.match(table.stdout, /saved: \d+\.\d{6} \(\d+\.\d%\)/);
  }
});

test('sluice exits 0 on SIGTERM with no sanitizer report', T, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.code, 0, stack.stderrTail());
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), []);
});
