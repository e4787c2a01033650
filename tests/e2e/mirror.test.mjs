// Mirroring and `sluice compare` (docs/routing.md) through the official `openai` SDK: a group
// copies every request (sample 1.0) to three mirrors: a slow sim that answers the same text,
// a server that answers something else, and a dead port. The client's answers and latency
// are the primary's alone; the ledger (read with sqlite3) holds one row per copy linked to its
// request, billed; `sluice compare` prints numbers that match the rows; `sluice cost report`
// shows the mirrors as their own row, not as the client's requests.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSluice, runSluice, sanitizerReports, waitFor } from '../cases/lib/proc.mjs';
import { simReply } from './harness.mjs';

const T = { timeout: 30000 };
const q = JSON.stringify;
const SHADOW_MS = 1500;
const N = 4;
let tmp, db, store, simA, simSlow, other, otherRequests = 0, serve, client, anthropic;
const ids = [];
const user = (content) => ({ role: 'user', content });

async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-mirror-'));
  db = path.join(tmp, 'sluice.db');
  store = `sqlite://${db}`;
  simA = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', '0', '--chunk-delay-ms', '1'], { name: 'sim A' });
  simSlow = await startSluice(['sim', '--listen', '127.0.0.1:0', '--ttft-ms', String(SHADOW_MS), '--latency-ms', String(SHADOW_MS)], { name: 'sim slow' });
  other = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      otherRequests++;
      res.setHeader('content-type', 'application/json');
      res.end(q({ id: 'x', object: 'chat.completion', created: 1, model: 'up-m-other',
        choices: [{ index: 0, message: { role: 'assistant', content: 'a different answer' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } }));
    });
  });
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  const dead = await closedPort();
  const cfg = [
    'server: { workers: 2 }',
    `store: ${q(store)}`,
    'sim: false',
    'providers:',
    `  - { name: p-primary, kind: openai, base_url: ${q(`${simA.url}/v1`)}, api_key: k }`,
    `  - { name: p-shadow, kind: openai, base_url: ${q(`${simSlow.url}/v1`)}, api_key: k }`,
    `  - { name: p-other, kind: openai, base_url: ${q(`http://127.0.0.1:${other.address().port}/v1`)}, api_key: k }`,
    `  - { name: p-anth, kind: anthropic, base_url: ${q(simA.url)}, api_key: k }`,
    `  - { name: p-dead, kind: openai, base_url: ${q(`http://127.0.0.1:${dead}/v1`)}, api_key: k }`,
    'models:',
    '  - { name: m-primary, provider: p-primary, model: up-m-primary, price_in: 1, price_out: 2 }',
    '  - { name: m-shadow, provider: p-shadow, model: up-m-shadow, price_in: 3, price_out: 4 }',
    '  - { name: m-other, provider: p-other, model: up-m-other, price_in: 1, price_out: 1 }',
    '  - { name: m-dead, provider: p-dead, model: up-m-dead }',
    '  - { name: m-anth, provider: p-anth, model: up-m-anth }',
    'groups:',
    '  - { name: g-mirror, deployments: [m-primary], mirror: { to: [m-shadow, m-other, m-dead], sample: 1.0 } }',
    '  - { name: g-anth, deployments: [m-anth], mirror: { to: [m-shadow, m-other] } }',
    '  - { name: g-none, deployments: [m-primary], mirror: { to: [m-shadow], sample: 0 } }',
    '',
  ].join('\n');
  const cfgPath = path.join(tmp, 'sluice.yaml');
  writeFileSync(cfgPath, cfg);
  const chk = await runSluice(['config', 'check', cfgPath]);
  assert.equal(chk.code, 0, `config check: ${chk.stderr}\n${cfg}`);
  serve = await startSluice(['serve', '--config', cfgPath, '--listen', '127.0.0.1:0'], { name: 'sluice serve' });
  client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: serve.url, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
});

after(async () => {
  await serve?.stop(10000);
  await simA?.stop(5000);
  await simSlow?.stop(5000);
  await new Promise((r) => (other ? other.close(r) : r()));
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

const tail = () => `\n--- sluice serve stderr ---\n${serve.stderr().slice(-3000)}`;

function sql(query) {
  const out = execFileSync('sqlite3', ['-json', db, query], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

test('every request of a sample-1.0 group is copied to each mirror, without touching the client\'s answer or latency', T, async () => {
  for (let i = 0; i < N; i++) {
    const msg = `mirror me number ${i} please`;
    const t0 = Date.now();
    if (i === N - 1) { // one streamed: the copy is still a whole request
      const { data: stream, response } = await client.chat.completions
        .create({ model: 'g-mirror', messages: [user(msg)], stream: true }).withResponse();
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      assert.equal(text, simReply([user(msg)]));
      ids.push(response.headers.get('x-request-id'));
    } else {
      const { data: r, response } = await client.chat.completions
        .create({ model: 'g-mirror', messages: [user(msg)] }).withResponse();
      assert.equal(r.model, 'up-m-primary', 'the client gets the primary\'s answer');
      assert.equal(r.choices[0].message.content, simReply([user(msg)]));
      ids.push(response.headers.get('x-request-id'));
    }
    const ms = Date.now() - t0;
    assert.ok(ms < SHADOW_MS - 500, `answered in ${ms} ms: the slow mirror (${SHADOW_MS} ms) does not delay it`);
  }
  // every copy ends (the slow one last) and leaves a row
  await waitFor(() => sql(`SELECT count(*) AS n FROM usage WHERE mirror_of != ''`)[0].n >= 3 * N, 10000, 50);
  const rows = sql(`SELECT id, request_id, mirror_of, model, provider, upstream_model, final, status, error,
                    prompt_tokens, completion_tokens, cost_micros, answer_hash, latency_us FROM usage
                    WHERE mirror_of != '' ORDER BY id`);
  assert.equal(rows.length, 3 * N, q(rows));
  assert.equal(otherRequests, N);
  for (const id of ids) {
    const own = sql(`SELECT * FROM usage WHERE id = '${id}'`)[0];
    assert.equal(own.final, 1);
    assert.equal(own.model, 'g-mirror');
    assert.equal(own.mirror_of, '', 'the client\'s row is no copy');
    assert.match(own.answer_hash, /^[0-9a-f]{16}$/, 'a mirrored request records its answer\'s hash');
    const copies = rows.filter((r) => r.mirror_of === id);
    assert.deepEqual(copies.map((r) => r.provider).sort(), ['p-dead', 'p-other', 'p-shadow']);
    for (const c of copies) {
      assert.equal(c.request_id, id, 'linked to the request');
      assert.equal(c.model, 'mirror:g-mirror');
      assert.equal(c.final, 0, 'a copy is not a client request');
    }
    const shadow = copies.find((c) => c.provider === 'p-shadow');
    assert.equal(shadow.status, 200);
    assert.equal(shadow.answer_hash, own.answer_hash, 'the same answer text, the same hash');
    // the sim's timer counts from its loop's cached time, a few µs before sluice's clock
    assert.ok(shadow.latency_us >= (SHADOW_MS - 20) * 1000, `the copy waited for the slow mirror: ${shadow.latency_us} us ${q(shadow)}`);
    assert.equal(shadow.prompt_tokens, own.prompt_tokens, 'the sim counts the same prompt');
    assert.equal(shadow.cost_micros, shadow.prompt_tokens * 3 + shadow.completion_tokens * 4, 'billed at the mirror\'s prices');
    const o = copies.find((c) => c.provider === 'p-other');
    assert.equal(o.status, 200);
    assert.notEqual(o.answer_hash, own.answer_hash);
    assert.equal(o.cost_micros, 7 + 3);
    const d = copies.find((c) => c.provider === 'p-dead');
    assert.equal(d.status, 502);
    assert.match(d.error, /p-dead/);
  }
});

// Nearest-rank percentile, as sluice compare computes it.
const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.max(1, Math.ceil(p * s.length)) - 1]; };
const near = (a, b, what) => assert.ok(Math.abs(a - b) < 0.002, `${what}: ${a} vs ${b}`);

test('sluice compare --since 1d: per deployment numbers match the ledger rows', T, async () => {
  const out = await runSluice(['compare', '--store', store, '--since', '1d', '--group', 'g-mirror', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  const stats = JSON.parse(out.stdout);
  assert.deepEqual(stats.map((s) => [s.role, s.provider]),
    [['primary', 'p-primary'], ['mirror', 'p-dead'], ['mirror', 'p-other'], ['mirror', 'p-shadow']], out.stdout);
  const by = Object.fromEntries(stats.map((s) => [s.provider, s]));
  const idList = ids.map((i) => `'${i}'`).join(',');
  const check = (s, rows) => {
    const okRows = rows.filter((r) => r.status === 200);
    assert.equal(s.requests, rows.length);
    assert.equal(s.errors, rows.length - okRows.length);
    near(s.error_rate, (rows.length - okRows.length) / rows.length, 'error rate');
    near(s.cost, rows.reduce((a, r) => a + r.cost_micros, 0) / 1e6, 'cost');
    if (!okRows.length) {
      assert.equal(s.latency_p50_ms, null);
      return;
    }
    near(s.latency_p50_ms, pct(okRows.map((r) => r.latency_us), 0.5) / 1000, 'p50');
    near(s.latency_p99_ms, pct(okRows.map((r) => r.latency_us), 0.99) / 1000, 'p99');
    const ttft = okRows.filter((r) => r.ttft_us >= 0).map((r) => r.ttft_us);
    near(s.ttft_p50_ms, pct(ttft, 0.5) / 1000, 'ttft p50');
    const tps = okRows.reduce((a, r) => a + r.completion_tokens, 0) * 1e6 / okRows.reduce((a, r) => a + r.latency_us, 0);
    assert.ok(Math.abs(s.tokens_per_s - tps) < 0.01, `tokens/s ${s.tokens_per_s} vs ${tps}`);
  };
  const cols = 'status, latency_us, ttft_us, completion_tokens, cost_micros';
  check(by['p-primary'], sql(`SELECT ${cols} FROM usage WHERE id IN (${idList})`));
  for (const p of ['p-shadow', 'p-other', 'p-dead'])
    check(by[p], sql(`SELECT ${cols} FROM usage WHERE provider = '${p}' AND mirror_of IN (${idList})`));
  assert.equal(by['p-primary'].agreement, null, 'the primary is what the others are compared with');
  assert.deepEqual([by['p-shadow'].compared, by['p-shadow'].agreed, by['p-shadow'].agreement], [N, N, 1]);
  assert.deepEqual([by['p-other'].compared, by['p-other'].agreed, by['p-other'].agreement], [N, 0, 0]);
  assert.deepEqual([by['p-dead'].compared, by['p-dead'].error_rate], [0, 1]);
  assert.equal(by['p-shadow'].currency, 'USD');

  const table = await runSluice(['compare', '--store', store, '--since', '1d']);
  assert.equal(table.code, 0, table.stderr);
  const line = (p) => table.stdout.split('\n').find((l) => l.includes(`${p}/`));
  assert.match(line('p-shadow'), /^mirror\s+p-shadow\/up-m-shadow\s+4\s.*100\.0% \(4\/4\)$/, table.stdout);
  assert.match(line('p-other'), /0\.0% \(0\/4\)$/, table.stdout);
  assert.match(line('p-dead'), /\s100\.0%\s+-$/, table.stdout);
  assert.match(line('p-primary'), /^primary\s+p-primary\/up-m-primary\s+4\s/, table.stdout);

  const csv = await runSluice(['compare', '--store', store, '--format', 'csv', '--group', 'g-mirror']);
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trim().split('\n');
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^role,provider,upstream_model,requests,/);
  assert.match(lines.find((l) => l.startsWith('mirror,p-shadow,')), /,4,4,1\.0000$/);

  const none = await runSluice(['compare', '--store', store, '--group', 'no-such-group', '--format', 'json']);
  assert.equal(none.code, 0);
  assert.deepEqual(JSON.parse(none.stdout), []);
  const bad = await runSluice(['compare', '--store', store, '--since', 'yesterday']);
  assert.equal(bad.code, 2);
});

test('an Anthropic client on the pass-through path: copies in the OpenAI wire format, agreement still known', T, async () => {
  const reqIds = [];
  const msg = 'mirror my anthropic message';
  const { data, response } = await anthropic.messages
    .create({ model: 'g-anth', max_tokens: 128, messages: [user(msg)] }).withResponse();
  assert.equal(data.content[0].text, simReply([user(msg)]));
  reqIds.push(response.headers.get('x-request-id'));
  const msg2 = 'mirror my anthropic stream';
  const { data: stream, response: r2 } = await anthropic.messages
    .create({ model: 'g-anth', max_tokens: 128, messages: [user(msg2)], stream: true }).withResponse();
  let text = '';
  for await (const ev of stream) if (ev.type === 'content_block_delta') text += ev.delta.text ?? '';
  assert.equal(text, simReply([user(msg2)]));
  reqIds.push(r2.headers.get('x-request-id'));
  const list = reqIds.map((i) => `'${i}'`).join(',');
  await waitFor(() => sql(`SELECT count(*) AS n FROM usage WHERE mirror_of IN (${list})`)[0].n >= 4, 10000, 50);
  const out = await runSluice(['compare', '--store', store, '--group', 'g-anth', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  const by = Object.fromEntries(JSON.parse(out.stdout).map((s) => [s.provider, s]));
  assert.equal(by['p-anth'].requests, 2);
  assert.equal(by['p-anth'].role, 'primary');
  assert.deepEqual([by['p-shadow'].requests, by['p-shadow'].compared, by['p-shadow'].agreed], [2, 2, 2],
    `the same text through both wire formats agrees: ${out.stdout}`);
  assert.deepEqual([by['p-other'].compared, by['p-other'].agreed], [2, 0]);
});

test('sluice cost report: the copies are billed on a row of their own, not as the client\'s requests', T, async () => {
  const out = await runSluice(['cost', 'report', '--store', store, '--by', 'model', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  const rows = JSON.parse(out.stdout);
  const mirror = rows.find((r) => (r.model ?? r.group) === 'mirror:g-mirror');
  const own = rows.find((r) => (r.model ?? r.group) === 'g-mirror');
  assert.ok(mirror && own, out.stdout);
  assert.equal(own.requests, N, 'the client\'s requests');
  assert.equal(mirror.requests, 0, 'copies are not requests');
  const mirrorCost = sql(`SELECT sum(cost_micros) AS c FROM usage WHERE model = 'mirror:g-mirror'`)[0].c;
  assert.ok(mirrorCost > 0);
  near(mirror.cost, mirrorCost / 1e6, 'mirror cost');
});

test('sample 0: nothing is copied', T, async () => {
  const before = otherRequests;
  const n0 = sql(`SELECT count(*) AS n FROM usage WHERE mirror_of != ''`)[0].n;
  for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'g-none', messages: [user(`plain ${i}`)] });
  await new Promise((r) => setTimeout(r, SHADOW_MS + 200));
  assert.equal(sql(`SELECT count(*) AS n FROM usage WHERE mirror_of != ''`)[0].n, n0);
  assert.equal(otherRequests, before);
  assert.equal(sql(`SELECT count(*) AS n FROM usage WHERE model = 'g-none' AND answer_hash != ''`)[0].n, 0, 'no hash when not mirrored');
});

test('SIGTERM while a copy is running: sluice waits for it, exits 0, no sanitizer report', T, async () => {
  const n0 = sql(`SELECT count(*) AS n FROM usage WHERE provider = 'p-shadow'`)[0].n;
  await client.chat.completions.create({ model: 'g-mirror', messages: [user('one last copy')] });
  const r = await serve.stop(10000); // the slow copy is still waiting for its answer
  assert.deepEqual(sanitizerReports(serve.stderr()), [], tail());
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal}${tail()}`);
  assert.equal(sql(`SELECT count(*) AS n FROM usage WHERE provider = 'p-shadow'`)[0].n, n0 + 1, 'the copy was recorded');
  const last = sql(`SELECT status FROM usage WHERE provider = 'p-shadow' ORDER BY rowid DESC LIMIT 1`)[0];
  assert.equal(last.status, 200, 'the drain waited for the copy to be answered');
  for (const sim of [simA, simSlow]) {
    const s = await sim.stop(5000);
    assert.deepEqual(sanitizerReports(sim.stderr()), []);
    assert.equal(s.code, 0);
  }
});
