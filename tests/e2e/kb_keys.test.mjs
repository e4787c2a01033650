// Who may use a knowledge base once virtual keys exist: writes with the master key only,
// search and chat with a virtual key (the openai SDK), and the stage calls billed to that
// key in the ledger with the key's own tags.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startSluice, runSluice, sanitizerReports, waitFor } from '../cases/lib/proc.mjs';

const MASTER = 'sk-master-kb-test-0123456789';
let tmp, sim, serve, base, store, key;
const T = { timeout: 60000 };

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-kbkeys-'));
  store = `sqlite://${path.join(tmp, 'sluice.db')}`;
  sim = await startSluice(['sim', '--listen', '127.0.0.1:0', '--quiet'], { name: 'sim' });
  writeFileSync(path.join(tmp, 'sluice.yaml'), [
    'server: { workers: 2 }', `store: "${store}"`, 'sim: false', 'master_key: ${SLUICE_MASTER_KEY}',
    'providers:', `  - { name: s, kind: openai, base_url: "${sim.url}/v1" }`,
    'models:', '  - { name: sim-small, provider: s, model: sim-small }', '',
  ].join('\n'));
  serve = await startSluice(['serve', '--config', path.join(tmp, 'sluice.yaml'), '--listen', '127.0.0.1:0'],
    { name: 'sluice serve', env: { SLUICE_MASTER_KEY: MASTER } });
  base = serve.url;
});
after(async () => {
  await serve?.stop(10000);
  await sim?.stop(5000);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const call = (method, p, body, bearer) => fetch(`${base}${p}`, {
  method, body: body ? JSON.stringify(body) : undefined,
  headers: bearer ? { Authorization: `Bearer ${bearer}` } : {},
});

test('writes need the master key; search and chat a virtual key', T, async () => {
  let r = await call('POST', '/admin/keys', { name: 'team-kb', tags: 'team=legal' }, MASTER);
  assert.equal(r.status, 201);
  key = (await r.json()).key;
  const spec = { name: 'hr', embed_model: 'sim-small', answer_model: 'sim-small' };
  assert.equal((await call('POST', '/v1/kb', spec, key)).status, 401, 'a virtual key cannot create');
  assert.equal((await call('POST', '/v1/kb', spec)).status, 401);
  assert.equal((await call('POST', '/v1/kb', spec, MASTER)).status, 201);
  const doc = { name: 'leave.md', text: '# Handbook\n\n## Parental leave\n\nParental leave lasts sixteen weeks at full pay.\n' };
  assert.equal((await call('POST', '/v1/kb/hr/documents', doc, key)).status, 401);
  assert.equal((await call('POST', '/v1/kb/hr/documents', doc, MASTER)).status, 201);
  assert.equal((await call('POST', '/v1/kb/hr/search', { query: 'parental leave' })).status, 401);
  r = await call('POST', '/v1/kb/hr/search', { query: 'parental leave' }, key);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).data[0].document, 'leave.md');
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
  const a = await client.chat.completions.create({ model: 'kb:hr', messages: [{ role: 'user', content: 'How long is parental leave?' }] });
  assert.match(a.sources[0].text, /sixteen weeks/);
  await assert.rejects(new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-wrong', maxRetries: 0 })
    .chat.completions.create({ model: 'kb:hr', messages: [{ role: 'user', content: 'x' }] }), (e) => e.status === 401);
});

test('the stage calls are billed to the key that asked, with its tags', T, async () => {
  const rows = async (by) => {
    const r = await runSluice(['cost', 'report', '--by', by, '--format', 'json', '--store', store]);
    assert.equal(r.code, 0, r.stderr);
    return Object.fromEntries(JSON.parse(r.stdout).map((g) => [g.key ?? g.tag, g.requests]));
  };
  // search (recall) + chat (recall, answer) under team-kb; ingest under the master key ("")
  await waitFor(async () => (await rows('key'))['team-kb'] === 3, 10000);
  const tags = await rows('tag');
  assert.equal(tags['team=legal'], 3);
  assert.equal(tags['stage=recall'], 2);
  assert.equal(tags['stage=answer'], 1);
  assert.equal(tags['stage=ingest'], 1);
});

test('a knowledge base deleted and created again under the same name (and id) never sees the old vectors', T, async () => {
  const spec = { name: 'reused', embed_model: 'sim-small', answer_model: 'sim-small' };
  const query = 'timetable changes';
  const search = async () => {
    const r = await call('POST', '/v1/kb/reused/search', { query, bm25: false }, key);
    assert.equal(r.status, 200);
    return (await r.json()).data;
  };
  const add = async (name, text) =>
    assert.equal((await call('POST', '/v1/kb/reused/documents', { name, text }, MASTER)).status, 201);
  assert.equal((await call('POST', '/v1/kb', spec, MASTER)).status, 201);
  await add('old.md', '# Ferries\n\nThe ferry timetable of the harbour changes in winter, every year.\n');
  assert.equal((await search())[0].document, 'old.md');
  assert.equal((await call('DELETE', '/v1/kb/reused', null, MASTER)).status, 200);
  assert.equal((await call('POST', '/v1/kb', spec, MASTER)).status, 201); // same id, same revision after one add
  await add('new.md', '# Trains\n\nThe train timetable changes.\n');
  const [hit] = await search();
  assert.equal(hit.document, 'new.md');
  // the vector score is the cosine of the question and the NEW chunk (the sim's embeddings are
  // deterministic), not of a vector cached for the deleted knowledge base's chunk
  const r = await call('POST', '/v1/embeddings', { model: 'sim-small', input: [query, hit.text] }, key);
  const [q, c] = (await r.json()).data.map((d) => d.embedding);
  const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  const cos = q.reduce((a, x, i) => a + x * c[i], 0) / (norm(q) * norm(c));
  assert.ok(Math.abs(hit.scores.vector - cos) < 1e-4, `vector score ${hit.scores.vector}, cosine of the new chunk ${cos}`);
});

test('exits 0 on SIGTERM with no sanitizer report', T, async () => {
  const r = await serve.stop(10000);
  assert.equal(r.code, 0);
  assert.deepEqual(sanitizerReports(serve.stderr()), []);
});
