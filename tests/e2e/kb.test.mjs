// The knowledge base end to end: `sluice kb create/add/eval` against a running sluice, then
// questions in Chinese and English through the official `openai` SDK, on /v1/kb/NAME/chat and
// as `model: "kb:NAME"`, streamed and not, checking that the cited sources are the passages the
// questions were written from. The corpus is generated here: three Chinese contracts (one
// clause per topic) and two Markdown guides (one section per topic); each question is derived
// from a heading and its gold passage is the text under that heading.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startStack, runSluice, sanitizerReports } from './harness.mjs';
import { waitFor, sleep } from '../cases/lib/proc.mjs';

let stack, client, corpus;
const T = { timeout: 120000 };
const KB = 'legal';

// ---- the corpus --------------------------------------------------------------------------
const NUM = ['一', '二', '三', '四', '五', '六'];
const CONTRACTS = {
  'purchase.txt': ['标的物', '价格条款', '交货地点', '验收标准', '违约责任', '争议解决'],
  'lease.txt': ['租赁物', '租金支付', '押金退还', '维修义务', '转租限制', '合同解除'],
  'service.txt': ['服务内容', '服务费用', '保密义务', '知识产权', '数据安全', '不可抗力'],
};
const ZH_FILLER = ['双方应当遵循诚实信用原则履行本合同。', '本条所称期限以日历日计算。',
  '任何一方不得擅自变更约定内容。', '相关通知应以书面形式送达对方。', '未尽事宜由双方另行协商。'];
const GUIDES = {
  'routing.md': [['Retry budget', 'The retry budget caps how many extra attempts one request may spend across every deployment of its group.'],
    ['Circuit breakers', 'A circuit breaker opens after consecutive upstream failures and rejects traffic to that deployment until its cooldown ends.'],
    ['Hedged requests', 'Hedging sends a duplicate request to a second deployment when the first is slower than the hedge delay.']],
  'cache.md': [['Exact cache', 'The exact cache keys each answer by a hash of the canonical request body and its model.'],
    ['Semantic cache', 'The semantic cache compares question embeddings and reuses an answer above a similarity threshold.'],
    ['Eviction', 'Eviction removes the least recently used entries once the cache reaches its byte limit.']],
};
const EN_FILLER = 'This paragraph describes general operating notes for the gateway and repeats them for length. ';

// One clause: its heading line and a body of ~900 characters, so each clause is its own chunk.
function clause(i, topic) {
  let body = `本合同关于${topic}的约定如下：${topic}应由双方按本条执行。`;
  for (let k = 0; body.length < 900; k++) body += ZH_FILLER[(i + k) % ZH_FILLER.length];
  return { head: `第${NUM[i]}条 ${topic}`, body };
}

function buildCorpus(dir) {
  const docs = [], questions = [];
  mkdirSync(path.join(dir, 'contracts'), { recursive: true });
  mkdirSync(path.join(dir, 'guides'), { recursive: true });
  for (const [file, topics] of Object.entries(CONTRACTS)) {
    let text = '';
    const name = path.join(dir, 'contracts', file);
    topics.forEach((topic, i) => {
      const c = clause(i, topic);
      const start = Array.from(text).length;
      text += `${c.head}\n${c.body}\n\n`;
      questions.push({ question: `合同中关于${topic}是怎么约定的？`, document: name, start, end: Array.from(text).length,
        heading: `第${NUM[i]}条`, lang: 'zh' });
    });
    writeFileSync(name, text);
    docs.push(name);
  }
  for (const [file, sections] of Object.entries(GUIDES)) {
    const name = path.join(dir, 'guides', file);
    let text = `# ${file.replace('.md', '')} guide\n\n`;
    for (const [title, fact] of sections) {
      const start = Array.from(text).length;
      text += `## ${title}\n\n${fact}\n\n${EN_FILLER.repeat(18)}\n\n`;
      questions.push({ question: `How does the ${title.toLowerCase()} work?`, document: name, start,
        end: Array.from(text).length, heading: title, lang: 'en', fact });
    }
    writeFileSync(name, text);
    docs.push(name);
  }
  return { docs, questions, dir };
}

async function tagCounts() {
  const r = await runSluice(['cost', 'report', '--by', 'tag', '--format', 'json', '--store', stack.storeUrl]);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(JSON.parse(r.stdout).map((g) => [g.tag, g.requests]));
}

const kb = (...args) => runSluice(['kb', ...args, '--url', stack.url], { timeoutMs: 60000 });

before(async () => {
  stack = await startStack({
    extra: () => ({ models: ['  - { name: rr-jina, provider: sim, model: sim-rerank, capabilities: [rerank] }'] }),
  });
  corpus = buildCorpus(path.join(stack.tmp, 'corpus'));
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'unused' });
});
after(async () => { if (stack) await stack.cleanup(); });

test('kb create and kb add a folder of contracts and Markdown guides', T, async () => {
  let r = await kb('create', KB, '--embed', 'sim-small', '--rerank', 'rr-jina', '--answer', 'sim-small');
  assert.equal(r.code, 0, r.stderr + stack.stderrTail());
  assert.match(r.stdout, /created knowledge base legal/);
  r = await kb('create', KB, '--embed', 'sim-small', '--answer', 'sim-small');
  assert.notEqual(r.code, 0, 'a second knowledge base of the same name is refused');
  assert.match(r.stderr, /exists already/);
  r = await kb('add', KB, corpus.dir);
  assert.equal(r.code, 0, r.stderr + stack.stderrTail());
  assert.match(r.stdout, /5 added, 0 replaced, 0 unchanged, 0 failed/);
  for (const d of corpus.docs) assert.match(r.stdout, new RegExp(`added ${d.replace(/[.]/g, '\\.')}: \\d+ chunks`));
  const chunks = Number(/: (\d+) chunks, (\d+) embedded/.exec(r.stdout)[1]);
  assert.ok(chunks >= 18 + 6, `every clause and section is a chunk of its own (${chunks})`);
  const list = await kb('list');
  assert.match(list.stdout, /legal\s+sim-small\s+256\s+model\s+rr-jina\s+sim-small\s+5\s+\d+/);
});

test('search ranks the passage a question was written from first, with each stage\'s scores', T, async () => {
  for (const q of corpus.questions) {
    const res = await fetch(`${stack.url}/v1/kb/${KB}/search`, { method: 'POST', body: JSON.stringify({ query: q.question, candidates: true }) });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.reranked, true);
    assert.ok(body.data.length >= 1 && body.data.length <= 5);
    const top = body.data[0];
    assert.equal(top.document, q.document, `${q.question} -> ${top.document} ${top.heading}`);
    assert.ok(top.start < q.end && top.end > q.start, `${q.question}: the top chunk overlaps the gold passage`);
    // the heading path names the section, or (for a document's first one) the chunk holds it
    assert.ok(top.heading.endsWith(q.heading) || top.text.includes(q.heading), `${q.question}: ${top.heading}`);
    assert.ok(typeof top.scores.rerank === 'number' && typeof top.scores.rrf === 'number');
    assert.ok(body.candidates.length >= body.data.length && body.candidates.length <= 50);
    for (let i = 1; i < body.data.length; i++) assert.ok(body.data[i - 1].scores.rerank >= body.data[i].scores.rerank);
  }
});

test('Chinese question through the openai SDK on /v1/kb/NAME: a cited answer', T, async () => {
  const kbClient = new OpenAI({ baseURL: `${stack.url}/v1/kb/${KB}`, apiKey: 'unused' });
  const q = corpus.questions.find((x) => x.question.includes('押金退还'));
  const r = await kbClient.chat.completions.create({ messages: [{ role: 'user', content: q.question }] });
  assert.match(r.choices[0].message.content, /simulated reply/);
  assert.ok(Array.isArray(r.sources) && r.sources.length >= 1 && r.sources.length <= 5);
  assert.equal(r.sources[0].index, 1);
  assert.equal(r.sources[0].document, q.document);
  assert.equal(r.sources[0].heading, '第三条');
  assert.match(r.sources[0].text, /押金退还/);
  // the sources reached the answer model: its prompt is far longer than the question alone
  const plain = await client.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: q.question }] });
  assert.ok(r.usage.prompt_tokens > plain.usage.prompt_tokens + 40, `${r.usage.prompt_tokens} vs ${plain.usage.prompt_tokens}`);
});

test('English question as model "kb:NAME" on /v1/chat/completions, non-stream and stream', T, async () => {
  const q = corpus.questions.find((x) => x.heading === 'Circuit breakers');
  const r = await client.chat.completions.create({ model: `kb:${KB}`, messages: [{ role: 'user', content: q.question }] });
  assert.equal(r.sources[0].document, q.document);
  assert.equal(r.sources[0].heading.endsWith('Circuit breakers'), true, r.sources[0].heading);
  assert.match(r.sources[0].text, /circuit breaker opens/);

  const stream = await client.chat.completions.create({ model: `kb:${KB}`, stream: true,
    stream_options: { include_usage: true }, messages: [{ role: 'user', content: q.question }] });
  let sources = null, text = '', usage = null, n = 0;
  for await (const chunk of stream) {
    if (n++ === 0) sources = chunk.sources;
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(sources, 'the first chunk carries the sources');
  assert.equal(sources[0].document, q.document);
  assert.deepEqual(sources.map((s) => s.chunk_id), r.sources.map((s) => s.chunk_id));
  assert.match(text, /simulated reply/);
  assert.ok(usage && usage.prompt_tokens > 100);
});

test('unknown knowledge base and bad requests get OpenAI-shaped errors', T, async () => {
  await assert.rejects(client.chat.completions.create({ model: 'kb:nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404 && /no knowledge base named 'nope'/.test(e.message));
  let res = await fetch(`${stack.url}/v1/kb/${KB}/search`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.type, 'invalid_request_error');
  res = await fetch(`${stack.url}/v1/kb`, { method: 'POST', body: JSON.stringify({ name: 'x', embed_model: 'no-such-model' }) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /embed_model 'no-such-model' is not served/);
});

test('re-adding unchanged documents embeds nothing; a changed one replaces its chunks', T, async () => {
  // every embeddings call so far is in the ledger: one batch per document at ingest
  await waitFor(async () => (await tagCounts())['stage=ingest'] === 5, 10000);
  let r = await kb('add', KB, corpus.dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /0 added, 0 replaced, 5 unchanged, 0 failed: \d+ chunks, 0 embedded/);
  const guide = corpus.docs.find((d) => d.endsWith('cache.md'));
  const { readFileSync } = await import('node:fs');
  writeFileSync(guide, readFileSync(guide, 'utf8').replace('least recently used entries', 'oldest entries by insertion time'));
  r = await kb('add', KB, guide);
  assert.equal(r.code, 0, r.stderr);
  const m = /replaced .*cache\.md: (\d+) chunks \((\d+) embedded, (\d+) cached\)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.equal(Number(m[2]), 1, 'only the changed chunk is embedded again');
  assert.equal(Number(m[3]), Number(m[1]) - 1, 'the others come from the cache');
  await waitFor(async () => (await tagCounts())['stage=ingest'] === 6, 10000);
  await sleep(300);
  assert.equal((await tagCounts())['stage=ingest'], 6, 'the unchanged re-add made no embeddings call');
  const res = await fetch(`${stack.url}/v1/kb/${KB}/search`, { method: 'POST', body: JSON.stringify({ query: 'How does eviction work?' }) });
  const top = (await res.json()).data[0];
  assert.match(top.text, /oldest entries by insertion time/);
  assert.doesNotMatch(top.text, /least recently used/);
});

test('the ledger has every stage\'s calls tagged with the knowledge base', T, async () => {
  await sleep(500);
  const t = await tagCounts();
  for (const stage of ['ingest', 'recall', 'rerank', 'answer']) assert.ok(t[`stage=${stage}`] > 0, `stage=${stage}: ${JSON.stringify(t)}`);
  assert.ok(t[`kb=${KB}`] >= t['stage=ingest'] + t['stage=recall'] + t['stage=rerank'] + t['stage=answer']);
});

test('kb eval reports recall, MRR and nDCG with and without stage 2 and BM25', T, async () => {
  const file = path.join(stack.tmp, 'questions.jsonl');
  writeFileSync(file, corpus.questions.map((q) => JSON.stringify({ question: q.question, document: q.document, start: q.start, end: q.end })).join('\n') + '\n');
  const r = await kb('eval', KB, '--questions', file, '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.questions, corpus.questions.length);
  assert.deepEqual(out.results.map((x) => x.pipeline), ['two-stage', 'stage-1-only', 'no-bm25']);
  const full = out.results[0];
  assert.equal(full['recall@50'], 1);
  assert.equal(full['recall@5'], 1, 'every gold passage is in the top 5 of the full pipeline');
  assert.ok(full['mrr@5'] > 0.9 && full['ndcg@5'] > 0.9, JSON.stringify(full));
  for (const x of out.results) {
    assert.ok(x['recall@5'] <= x['recall@50']);
    assert.ok(x.latency_p50_ms > 0 && x.latency_p99_ms >= x.latency_p50_ms);
    assert.ok(x.tokens_per_query > 0);
  }
  assert.ok(out.results[0].tokens_per_query > out.results[1].tokens_per_query, 'stage 2 costs tokens of its own');
  const table = await kb('eval', KB, '--questions', file);
  assert.match(table.stdout, /PIPELINE\s+RECALL@5\s+RECALL@50\s+MRR@5\s+NDCG@5/);
});

test('documents over HTTP: list, add text, delete; and kb rm', T, async () => {
  let res = await fetch(`${stack.url}/v1/kb/${KB}/documents`);
  const docs = (await res.json()).data;
  assert.equal(docs.length, 5);
  res = await fetch(`${stack.url}/v1/kb/${KB}/documents`, { method: 'POST',
    body: JSON.stringify({ name: 'notes.md', text: '# Notes\n\n## Zebra\n\nThe zebra rule says stripes win.\n' }) });
  assert.equal(res.status, 201);
  assert.equal((await res.json()).status, 'added');
  res = await fetch(`${stack.url}/v1/kb/${KB}/search`, { method: 'POST', body: JSON.stringify({ query: 'zebra stripes' }) });
  assert.equal((await res.json()).data[0].document, 'notes.md');
  res = await fetch(`${stack.url}/v1/kb/${KB}/documents/notes.md`, { method: 'DELETE' });
  assert.equal(res.status, 200);
  res = await fetch(`${stack.url}/v1/kb/${KB}/documents`);
  assert.equal((await res.json()).data.length, 5);
  const r = await kb('rm', KB);
  assert.equal(r.code, 0, r.stderr);
  res = await fetch(`${stack.url}/v1/kb/${KB}`);
  assert.equal(res.status, 404);
});

test('stage 2 with a strong embedding model embeds each candidate chunk at most once', T, async () => {
  let r = await kb('create', 'strong', '--embed', 'sim-small', '--strong-embed', 'sim-large', '--answer', 'sim-small');
  assert.equal(r.code, 0, r.stderr);
  r = await kb('add', 'strong', path.join(corpus.dir, 'guides'));
  assert.equal(r.code, 0, r.stderr);
  const search = async (query) => (await (await fetch(`${stack.url}/v1/kb/strong/search`, { method: 'POST',
    body: JSON.stringify({ query }) })).json());
  const q = 'How do hedged requests work?';
  const first = await search(q), second = await search(q);
  assert.equal(first.reranked, true);
  assert.match(first.data[0].heading, /Hedged requests/);
  assert.ok(first.usage.rerank.tokens > first.usage.recall.tokens, 'the first search embeds the candidates');
  // the second embeds only the question: the candidates' strong vectors are stored
  assert.equal(second.usage.rerank.tokens, second.usage.recall.tokens);
  assert.deepEqual(second.data.map((h) => [h.chunk_id, h.scores.rerank]), first.data.map((h) => [h.chunk_id, h.scores.rerank]));
});

test('sluice exits 0 on SIGTERM with no sanitizer report', T, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.code, 0, stack.stderrTail());
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), []);
});
