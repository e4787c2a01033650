// Virtual keys through the official SDKs: the admin API (master key) creates and revokes
// keys; once one exists every client request needs one, by Bearer token (openai) or
// x-api-key (@anthropic-ai/sdk); the ledger names the key that paid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSluice, runSluice, sanitizerReports } from '../cases/lib/proc.mjs';

const MASTER = 'sk-master-test-0123456789';
let tmp, sim, serve, base, store;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-keys-'));
  store = `sqlite://${path.join(tmp, 'sluice.db')}`;
  sim = await startSluice(['sim', '--listen', '127.0.0.1:0', '--quiet'], { name: 'sim' });
  const cfg = [
    'server: { workers: 2 }',
    `store: "${store}"`,
    'sim: false',
    'master_key: ${SLUICE_MASTER_KEY}',
    'providers:',
    `  - { name: s, kind: openai, base_url: "${sim.url}/v1" }`,
    'models:',
    '  - { name: sim-small, provider: s, model: sim-small }',
    '  - { name: sim-large, provider: s, model: sim-large }',
    '',
  ].join('\n');
  writeFileSync(path.join(tmp, 'sluice.yaml'), cfg);
  serve = await startSluice(['serve', '--config', path.join(tmp, 'sluice.yaml'), '--listen', '127.0.0.1:0'],
    { name: 'sluice serve', env: { SLUICE_MASTER_KEY: MASTER } });
  base = serve.url;
});

after(async () => {
  await serve?.stop(10000);
  await sim?.stop(5000);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const admin = (method, p, body, key = MASTER) => fetch(`${base}${p}`, {
  method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
  body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(5000),
});
const ask = (apiKey) => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 10000 })
  .chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'hello keys' }] });

let created;

test('open on loopback while no key exists', async () => {
  const r = await ask('anything');
  assert.equal(r.choices[0].message.content, 'This is a simulated reply to: hello keys');
});

test('the admin API needs the master key', async () => {
  assert.equal((await admin('GET', '/admin/keys', null, 'wrong')).status, 401);
  assert.equal((await admin('GET', '/admin/health', null, 'wrong')).status, 401, 'routing state needs the master key once one is set');
  assert.equal((await admin('GET', '/admin/health')).status, 200);
  const r = await admin('POST', '/admin/keys', { name: 'team-a', tags: 'team=search' });
  assert.equal(r.status, 201);
  created = await r.json();
  assert.match(created.key, /^sk-sluice-/);
  const list = await (await admin('GET', '/admin/keys')).json();
  const text = JSON.stringify(list);
  assert.ok(text.includes('team-a'));
  assert.ok(!text.includes(created.key), 'the list never shows a secret');
});

test('once a key exists: no key or a wrong one is AuthenticationError; the key works', async () => {
  await assert.rejects(ask('sk-sluice-not-a-key'), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  const r = await ask(created.key);
  assert.equal(r.choices[0].message.content, 'This is a simulated reply to: hello keys');
});

test('the Anthropic SDK authenticates with x-api-key', async () => {
  const claude = new Anthropic({ baseURL: base, apiKey: created.key, maxRetries: 0, timeout: 10000 });
  const m = await claude.messages.create({ model: 'sim-small', max_tokens: 64, messages: [{ role: 'user', content: 'hello keys' }] });
  assert.equal(m.content[0].text, 'This is a simulated reply to: hello keys');
  const bad = new Anthropic({ baseURL: base, apiKey: 'nope', maxRetries: 0, timeout: 10000 });
  await assert.rejects(bad.messages.create({ model: 'sim-small', max_tokens: 64, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.error?.type === 'error');
});

test('x-sluice-tag headers and the key\'s default tags reach the ledger; a malformed tag is a 400', async () => {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: created.key, maxRetries: 0, timeout: 10000 });
  await client.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'tagged' }] },
    { headers: { 'x-sluice-tag': 'feature=summarize' } });
  await assert.rejects(client.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-sluice-tag': 'no-equals-sign' } }), (e) => e instanceof OpenAI.BadRequestError);
});

test('a key limited to some models gets 403 model_not_allowed for the others, in each format', async () => {
  const r = await admin('POST', '/admin/keys', { name: 'small-only', models: 'sim-s*,other' });
  assert.equal(r.status, 201);
  const { key } = await r.json();
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, timeout: 10000 });
  const ok = await client.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'hello keys' }] });
  assert.equal(ok.choices[0].message.content, 'This is a simulated reply to: hello keys');
  await assert.rejects(client.chat.completions.create({ model: 'sim-large', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.PermissionDeniedError && e.code === 'model_not_allowed' && /sim-large/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'sim-large', input: 'x' }),
    (e) => e instanceof OpenAI.PermissionDeniedError && e.code === 'model_not_allowed');
  const claude = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 10000 });
  await assert.rejects(claude.messages.create({ model: 'sim-large', max_tokens: 64, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.PermissionDeniedError && e.error?.error?.type === 'permission_error');
  const listed = [];
  for await (const m of client.models.list()) listed.push(m.id);
  assert.deepEqual(listed, ['sim-small'], 'the model list shows what the key may use');
  // a key without a models list may use every model
  const any = await ask(created.key);
  assert.equal(any.choices[0].message.content, 'This is a simulated reply to: hello keys');
});

test('a revoked key stops working at once; the ledger names the key that paid', async () => {
  assert.equal((await admin('DELETE', `/admin/keys/${created.id}`)).status, 200);
  await assert.rejects(ask(created.key), (e) => e.status === 401);
  const { code } = await serve.stop(10000);
  assert.equal(code, 0);
  assert.deepEqual(sanitizerReports(serve.stderr()), []);
  serve = null;
  const out = await runSluice(['cost', 'report', '--store', store, '--by', 'key', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  const rows = JSON.parse(out.stdout);
  assert.ok(rows.some((r) => r.key === 'team-a' || r.group === 'team-a'), out.stdout);
  const tags = await runSluice(['cost', 'report', '--store', store, '--by', 'tag', '--format', 'json']);
  assert.equal(tags.code, 0, tags.stderr);
  const byTag = Object.fromEntries(JSON.parse(tags.stdout).map((r) => [r.tag ?? r.group, r.requests]));
  assert.equal(byTag['feature=summarize'], 1, tags.stdout);
  assert.ok(byTag['team=search'] >= 3, `the key's default tag is on each of its requests: ${tags.stdout}`);
});
