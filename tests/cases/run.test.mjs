// Data-driven wire cases: every folder tests/cases/NNN-name/ is one test.
//
// One fake upstream (node:http) serves every case under its own path prefix /cNNN/;
// one sluice runs for all cases, with one provider per case pointing at that prefix
// and one model per case (the case's route.client_model -> route.upstream_model).
// For each case: the client request is sent byte for byte with fetch; the reply is
// checked (status, headers, JSON partial match or SSE skeleton + @ assertions); then the
// request the fake upstream recorded is checked (method, path, headers, JSON partial
// match, raw-body regexes, number of requests). After the cases, sluice is stopped with
// SIGTERM (it must exit 0 with no sanitizer report) and `sluice usage` must show the
// token totals of every case that declares `accounting`.
//
// Run: node --test --test-reporter=tap tests/cases/run.test.mjs
// Env: SLUICE_BIN (default build-asan/sluice), CASES=001,013 to run a subset.
//
// case.json fields read here (see README.md in this folder for the whole format):
//   title, route{client_model, upstream_model, base_path?, unreachable?}, client{method, path, headers,
//   body_file?, body_generate?}, upstream{request{method, path_suffix, headers, raw_body_match,
//   raw_body_not_match}, expect_requests?, response_status, response_headers, delivery,
//   response_file}, expect{status, headers, body_file, body_raw_match?}, accounting?, timeout_ms?
//   Several upstream requests per case (embeddings batches): upstream.responses = [{match_raw,
//   response_status, response_headers, response_file, delivery}], each request answered by the
//   first entry whose regex matches its raw body (then every request is checked, not only the
//   first; an entry with `nth` answers only the nth request of the case, for retries); route.provider_extra / route.model_extra: more keys for the case's provider / model
//   ({{BASE_URL}} = the provider's base_url).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { match, matchHeaders } from './lib/match.mjs';
import { parseExpectSSE, checkSSE } from './lib/expect_sse.mjs';
import { startFakeUpstream } from './lib/upstream.mjs';
import { startSluice, runSluice, sanitizerReports, SLUICE_BIN } from './lib/proc.mjs';

const DIR = path.dirname(fileURLToPath(import.meta.url));
const GATEWAY_KEY = 'sk-sluice-test-gateway';
const UPSTREAM_KEY = 'test-upstream-key';
const MAX_BODY = 1048576;

// ---- load the cases (synchronously, so each becomes a test() at top level) ----------
const only = process.env.CASES ? new Set(process.env.CASES.split(',').map((s) => s.trim())) : null;
const cases = readdirSync(DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && /^\d{3}-/.test(d.name))
  .map((d) => d.name).sort()
  .filter((name) => !only || only.has(name.slice(0, 3)) || only.has(name))
  .map(loadCase);

function subst(v) {
  if (typeof v === 'string') return v.replaceAll('{{GATEWAY_API_KEY}}', GATEWAY_KEY).replaceAll('{{UPSTREAM_API_KEY}}', UPSTREAM_KEY);
  if (Array.isArray(v)) return v.map(subst);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x)]));
  return v;
}

function loadCase(name) {
  const dir = path.join(DIR, name);
  const c = subst(JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8')));
  c.dir = dir;
  c.name = name;
  c.prefix = 'c' + name.slice(0, 3);
  const file = (f) => readFileSync(path.join(dir, f));
  // the client body: raw bytes of the file, never re-serialised
  const cl = c.client ?? {};
  if (cl.body_generate) c.clientBody = Buffer.from(generateBody(cl.body_generate));
  else c.clientBody = file(cl.body_file ?? 'client_request.json');
  if (c.upstream && c.upstream.response_file) c.upstreamBody = file(c.upstream.response_file);
  for (const r of c.upstream?.responses ?? []) r.body = file(r.response_file);
  if (c.upstream && existsSync(path.join(dir, 'upstream_request_expect.json')))
    c.upstreamExpect = JSON.parse(file('upstream_request_expect.json').toString('utf8'));
  const bf = c.expect?.body_file;
  if (bf && bf.endsWith('.sse')) c.expectSSE = parseExpectSSE(file(bf).toString('utf8'));
  else if (bf) c.expectJSON = JSON.parse(file(bf).toString('utf8'));
  return c;
}

// The provider's wire format (upstream.kind) and the base path its SDK puts in base_url:
// OpenAI-compatible /v1, Anthropic none (sluice appends /v1/messages), Gemini /v1beta.
function upstreamKind(c) {
  return c.upstream?.kind ?? 'openai';
}

function basePath(c) {
  return c.route.base_path ?? { openai: '/v1', anthropic: '', gemini: '/v1beta' }[upstreamKind(c)];
}

function generateBody(g) {
  const pad = 'x'.repeat(g.pad_bytes ?? 0);
  return JSON.stringify({ model: g.model, messages: [{ role: 'user', content: pad }] });
}

{ // client models must be unique: each one routes to its own case's provider
  const seen = new Map();
  for (const c of cases) {
    if (!c.route) continue;
    const m = c.route.client_model;
    if (seen.has(m)) throw new Error(`client_model ${m} is used by both ${seen.get(m)} and ${c.name}`);
    seen.set(m, c.name);
  }
}

// ---- sluice + fake upstream for all cases --------------------------------------------
let up, gw, tmp, storeUrl;

function yamlStr(s) { return JSON.stringify(String(s)); }

// route.provider_extra / route.model_extra as more "key: value" pairs of a flow mapping.
function yamlExtra(extra, base) {
  return Object.entries(extra ?? {})
    .map(([k, v]) => `, ${k}: ${typeof v === 'string' ? yamlStr(v.replaceAll('{{BASE_URL}}', base)) : v}`).join('');
}

// The reply for one upstream request of a case with several: the first entry of
// upstream.responses whose match_raw matches the raw body.
function replyFor(c) {
  return (rec) => {
    const raw = rec.body.toString('utf8');
    const nth = c.upRoute.requests.length; // this request's number, from 1 (retries)
    const r = c.upstream.responses.find((x) => new RegExp(x.match_raw ?? '').test(raw) && (x.nth === undefined || x.nth === nth));
    if (!r) return { status: 599, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"error":{"message":"no response of this case matches the request","type":"test"}}'), delivery: {} };
    return { status: r.response_status ?? 200, headers: r.response_headers ?? {}, body: r.body, delivery: r.delivery ?? {} };
  };
}

function configFor(upPort, closedPort) {
  const lines = [
    `server: { workers: 2, max_body: ${MAX_BODY} }`,
    `store: ${yamlStr(storeUrl)}`,
    'upstream: { connect_timeout: 2s, first_byte_timeout: 5s, idle_timeout: 3s, total_timeout: 20s }',
    'sim: false',
    'providers:',
  ];
  const models = ['models:'];
  for (const c of cases) {
    if (!c.route) continue;
    const base = c.route.unreachable ? `http://127.0.0.1:${closedPort}/v1`
      : `http://127.0.0.1:${upPort}/${c.prefix}${basePath(c)}`;
    lines.push(`  - { name: ${yamlStr('p' + c.prefix)}, kind: ${upstreamKind(c)}, base_url: ${yamlStr(base)}, api_key: ${yamlStr(UPSTREAM_KEY)}${yamlExtra(c.route.provider_extra, base)} }`);
    models.push(`  - { name: ${yamlStr(c.route.client_model)}, provider: ${yamlStr('p' + c.prefix)}, model: ${yamlStr(c.route.upstream_model)}${yamlExtra(c.route.model_extra, base)} }`);
  }
  return [...lines, ...models, ''].join('\n');
}

// A local port nothing listens on (bound, then closed).
async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-cases-'));
  storeUrl = `sqlite://${path.join(tmp, 'sluice.db')}`;
  up = await startFakeUpstream();
  for (const c of cases) {
    const u = c.upstream;
    c.upRoute = up.route(c.prefix, u && u.responses ? replyFor(c) : u && u.response_file
      ? { status: u.response_status ?? 200, headers: u.response_headers ?? {}, body: c.upstreamBody, delivery: u.delivery ?? {} }
      : { status: 599, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"error":{"message":"this case must not reach the upstream","type":"test"}}'), delivery: {} });
  }
  const cfg = path.join(tmp, 'sluice.yaml');
  writeFileSync(cfg, configFor(up.port, await closedPort()));
  gw = await startSluice(['serve', '--config', cfg, '--listen', '127.0.0.1:0'], { name: 'sluice serve' });
});

after(async () => {
  if (gw && gw.alive()) await gw.stop(3000);
  if (up) await up.close();
  if (tmp && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

function sluiceTail() {
  return gw ? `\n--- sluice stderr (last 3000 bytes) ---\n${gw.stderr().slice(-3000)}` : '';
}

// ---- one test per case ----------------------------------------------------------------
for (const c of cases) {
  test(`${c.name}: ${c.title}`, { timeout: (c.timeout_ms ?? 15000) + 5000 }, async (t) => {
    assert.ok(gw && gw.alive(), `sluice is not running${sluiceTail()}`);
    const failures = [];
    const cl = c.client ?? {};
    const headers = { ...(cl.headers ?? { Authorization: `Bearer ${GATEWAY_KEY}`, 'Content-Type': 'application/json' }) };
    const started = Date.now();
    let res, bytes;
    try {
      res = await fetch(gw.url + (cl.path ?? '/v1/chat/completions'), {
        method: cl.method ?? 'POST', headers, body: c.clientBody,
        signal: AbortSignal.timeout(c.timeout_ms ?? 15000),
      });
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (e) {
      assert.fail(`request failed: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ''}` +
        (res ? ` after status ${res.status}` : '') + (gw.alive() ? '' : ' — sluice died') + sluiceTail());
    }
    const ms = Date.now() - started;
    const text = bytes.toString('utf8');
    const ex = c.expect ?? {};

    failures.push(...match(ex.status ?? 200, res.status, 'status'));
    const hdrExpect = {
      'x-request-id': { $nonempty_string: true },
      'x-sluice-overhead-ms': { $regex: '^[0-9]+(\\.[0-9]+)?$' },
      ...(ex.headers ?? {}),
    };
    failures.push(...matchHeaders(hdrExpect, res.headers));

    if (c.expectSSE) {
      const r = checkSSE(c.expectSSE, bytes);
      failures.push(...r.failures);
      for (const d of r.diagnostics) t.diagnostic(d);
    } else if (c.expectJSON !== undefined) {
      let body;
      try { body = JSON.parse(text); } catch (e) { failures.push(`body is not JSON (${e.message})`); }
      if (body !== undefined) failures.push(...match(c.expectJSON, body, 'body'));
    }
    for (const re of ex.body_raw_match ?? []) if (!new RegExp(re).test(text)) failures.push(`client body does not match /${re}/`);
    for (const re of ex.body_raw_not_match ?? []) if (new RegExp(re).test(text)) failures.push(`client body matches /${re}/ (must not)`);

    // what the fake upstream received
    const reqs = c.upRoute.requests;
    const u = c.upstream;
    const wantCount = u?.expect_requests ?? (u && u.response_file ? 1 : 0);
    failures.push(...match(wantCount, reqs.length, 'upstream requests'));
    for (const r0 of u && u.request ? (u.responses ? reqs : reqs.slice(0, 1)) : []) {
      const want = u.request;
      failures.push(...match(want.method ?? 'POST', r0.method, 'upstream method'));
      const wantPath = `/${c.prefix}${basePath(c)}${want.path_suffix ?? '/chat/completions'}`;
      failures.push(...match(wantPath, r0.url, 'upstream path'));
      failures.push(...matchHeaders(want.headers ?? {}, r0.headers, 'upstream headers'));
      const raw = r0.body.toString('utf8');
      if (c.upstreamExpect !== undefined) {
        let body;
        try { body = JSON.parse(raw); } catch (e) { failures.push(`upstream body is not JSON (${e.message}): ${raw.slice(0, 300)}`); }
        if (body !== undefined) failures.push(...match(c.upstreamExpect, body, 'upstream body'));
      }
      for (const re of want.raw_body_match ?? []) if (!new RegExp(re).test(raw)) failures.push(`upstream raw body does not match /${re}/: ${raw.slice(0, 600)}`);
      for (const re of want.raw_body_not_match ?? []) if (new RegExp(re).test(raw)) failures.push(`upstream raw body matches /${re}/ (must not): ${raw.slice(0, 600)}`);
    }
    if (ex.max_ms !== undefined && ms > ex.max_ms) failures.push(`took ${ms} ms, more than ${ex.max_ms}`);

    if (failures.length) {
      assert.fail(`${failures.length} mismatch(es):\n  - ${failures.join('\n  - ')}\n--- client got ${res.status} (${bytes.length} bytes) ---\n${text.slice(0, 3000)}` +
        (reqs.length ? `\n--- upstream got ${reqs[0].method} ${reqs[0].url} ---\n${reqs[0].body.toString('utf8').slice(0, 1500)}` : '') +
        (gw.alive() ? '' : sluiceTail()));
    }
  });
}

// ---- after the cases: clean shutdown and the ledger -------------------------------
test('sluice drains and exits 0 on SIGTERM, without sanitizer reports', { timeout: 20000 }, async () => {
  assert.ok(gw, 'sluice never started');
  const r = await gw.stop(10000);
  const reports = sanitizerReports(gw.stderr());
  assert.equal(r.killed, false, `sluice did not exit within 10 s of SIGTERM${sluiceTail()}`);
  assert.deepEqual(reports, [], `sanitizer reports in sluice stderr${sluiceTail()}`);
  assert.equal(r.signal, null, `sluice died by signal ${r.signal}${sluiceTail()}`);
  assert.equal(r.code, 0, `sluice exit code ${r.code}${sluiceTail()}`);
});

test('sluice usage shows the token totals of the cases', { timeout: 30000 }, async () => {
  const withAcc = cases.filter((c) => c.accounting && c.route);
  assert.ok(withAcc.length > 0, 'no case declares accounting');
  const r = await runSluice(['usage', '--store', storeUrl, '--format', 'json']);
  assert.equal(r.code, 0, `sluice usage failed (${r.code}): ${r.stderr}`);
  let rows;
  try { rows = JSON.parse(r.stdout); } catch (e) { assert.fail(`sluice usage output is not JSON (${e.message}): ${r.stdout.slice(0, 1000)}`); }
  assert.ok(Array.isArray(rows), `sluice usage --format json must print an array, got: ${r.stdout.slice(0, 500)}`);
  const byModel = new Map(rows.map((x) => [x.model, x]));
  // The ledger may name the model the client asked for (unique per case here) or the
  // provider's model (shared by several cases): accept either grouping.
  const group = (key) => {
    const g = new Map();
    for (const c of withAcc) {
      const k = key(c);
      const t = g.get(k) ?? { requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, cases: [] };
      t.requests += 1;
      for (const f of ['prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens']) t[f] += c.accounting[f] ?? 0;
      t.cases.push(c.name);
      g.set(k, t);
    }
    return g;
  };
  const check = (g, exactRequests) => {
    const errs = [];
    for (const [model, t] of g) {
      const row = byModel.get(model);
      if (!row) { errs.push(`no ledger row for model ${model} (cases ${t.cases.join(', ')})`); continue; }
      for (const f of ['prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens']) {
        // rows for provider models also hold the cases without accounting: only a lower bound then
        if (exactRequests ? row[f] !== t[f] : !(row[f] >= t[f])) errs.push(`${model}.${f}: expected ${exactRequests ? '' : '>= '}${t[f]}, got ${row[f]} (cases ${t.cases.join(', ')})`);
      }
      if (exactRequests && row.requests !== t.requests) errs.push(`${model}.requests: expected ${t.requests}, got ${row.requests}`);
      if (exactRequests && row.estimated !== 0 && row.estimated !== false) errs.push(`${model}.estimated: expected 0 (the upstream reported usage), got ${row.estimated}`);
    }
    return errs;
  };
  const byClient = check(group((c) => c.route.client_model), true);
  if (byClient.length === 0) return;
  const byUpstream = check(group((c) => c.route.upstream_model), false);
  if (byUpstream.length === 0) return;
  assert.fail(`ledger totals do not match the cases' accounting (neither by client model nor by provider model)\n` +
    `by client model:\n  - ${byClient.join('\n  - ')}\nby provider model:\n  - ${byUpstream.join('\n  - ')}\n--- sluice usage ---\n${r.stdout.slice(0, 3000)}`);
});
