// Time from a provider dying to traffic moving off it. sluice (fallback group [a, b],
// default breaker: 5 consecutive failures open it) in front of two `sluice sim`s takes a
// steady open-loop load of non-stream requests; after a warm-up, deployment a's sim dies:
//   kill: SIGKILL (connections reset, then refused)
//   hang: SIGSTOP (connections accepted by the kernel, never answered: first_byte_timeout)
//   fail: a provider that starts answering 503 to everything
//   hang-hedge: hang, with the group hedging after 100 ms (hedge: { after: 100ms })
//   hang-hedge-hc: the same with active health checks (interval 200 ms, probe timeout 500 ms)
// Measured from the moment it dies: when a's breaker is seen open (GET /admin/health,
// polled every 5 ms), when the last attempt on a failed (sluice_upstream_errors_total of a's
// provider, polled), and, from the clients' side, errors seen and when requests stopped
// being slower than before (latency above max(2 x warm-up p99, warm-up p99 + 5 ms)):
// new_requests_normal_after_ms is the first moment after which 500 ms of newly sent
// requests were all normal; last_slowed_answer_ms when the last slowed one was answered.
// Usage: node bench/route/failover.mjs [kill|fail|hang|hang-hedge|hang-hedge-hc ...]   (SLUICE_BIN=build/sluice)
// Knobs: RATE=200 (req/s) WARMUP_MS=2000 AFTER_MS=4000 FIRST_BYTE_TIMEOUT=1s
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startSluice, sleep } from '../../tests/cases/lib/proc.mjs';

const RATE = Number(process.env.RATE ?? 200);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 2000);
const AFTER_MS = Number(process.env.AFTER_MS ?? 4000);
const FBT = process.env.FIRST_BYTE_TIMEOUT ?? '1s';
const now = () => performance.now();

// A provider that answers like OpenAI until told to fail with 503.
function failingProvider() {
  let failing = false;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (failing) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error', param: null, code: null } }));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'f', object: 'chat.completion', created: 1, model: 'up-a',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } }));
    });
  });
  return { srv, fail: () => { failing = true; } };
}

async function scenario(kind) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-failover-'));
  const simA = kind === 'fail' ? null : await startSluice(['sim', '--listen', '127.0.0.1:0', '--quiet'], { name: 'sim a' });
  const simB = await startSluice(['sim', '--listen', '127.0.0.1:0', '--quiet'], { name: 'sim b' });
  const front = kind === 'fail' ? failingProvider() : null;
  if (front) await new Promise((r) => front.srv.listen(0, '127.0.0.1', r));
  const urlA = front ? `http://127.0.0.1:${front.srv.address().port}/v1` : `${simA.url}/v1`;
  const cfg = [
    'server: { workers: 1 }',
    `store: sqlite://${path.join(tmp, 'sluice.db')}`,
    'sim: false',
    `upstream: { connect_timeout: 1s, first_byte_timeout: ${FBT} }`,
    'providers:',
    `  - { name: pa, kind: openai, base_url: ${JSON.stringify(urlA)}, api_key: k }`,
    `  - { name: pb, kind: openai, base_url: ${JSON.stringify(`${simB.url}/v1`)}, api_key: k }`,
    'models:',
    '  - { name: a, provider: pa, model: up-a }',
    '  - { name: b, provider: pb, model: up-b }',
    'groups:',
    `  - { name: g, strategy: fallback, deployments: [a, b], breaker: { cooldown: 60s }${kind.startsWith('hang-hedge') ? ', hedge: { after: 100ms }' : ''}${kind.endsWith('-hc') ? ', health_check: { interval: 200ms, timeout: 500ms }' : ''} }`,
    '',
  ].join('\n');
  const cfgPath = path.join(tmp, 'sluice.yaml');
  writeFileSync(cfgPath, cfg);
  const serve = await startSluice(['serve', '--config', cfgPath, '--listen', '127.0.0.1:0'], { name: 'sluice serve' });
  const base = serve.url;

  const results = [];
  let t0 = Infinity, stop = false;
  const body = JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'steady traffic' }] });
  const one = async () => {
    const sent = now();
    let status = 0, model = '';
    try {
      const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', body,
        headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(20000) });
      status = r.status;
      model = (await r.json()).model ?? '';
    } catch { status = -1; }
    results.push({ sent, ms: now() - sent, status, model });
  };
  const inflight = new Set();
  const load = (async () => {
    const start = now();
    for (let i = 0; !stop; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const p = one();
      inflight.add(p);
      p.finally(() => inflight.delete(p));
    }
  })();

  // Watchers: a's breaker and a's failed attempts, as sluice reports them.
  let openAt = null, lastErrAt = null, errBase = null, errLast = 0;
  const watch = (async () => {
    while (!stop) {
      try {
        const [h, m] = await Promise.all([
          fetch(`${base}/admin/health`).then((r) => r.json()),
          fetch(`${base}/metrics`).then((r) => r.text()),
        ]);
        const t = now();
        const dep = h.deployments.find((d) => d.model === 'a');
        if (openAt === null && t > t0 && dep.breaker === 'open') openAt = t;
        let errs = 0;
        for (const x of m.matchAll(/^sluice_upstream_errors_total\{provider="pa",[^}]*\} (\d+)$/gm)) errs += Number(x[1]);
        if (errBase === null) errBase = errs;
        if (errs > errLast) { errLast = errs; if (t > t0) lastErrAt = t; }
      } catch { /* sluice busy: next poll */ }
      await sleep(5);
    }
  })();

  await sleep(WARMUP_MS);
  t0 = now();
  if (kind === 'kill') simA.child.kill('SIGKILL');
  else if (kind.startsWith('hang')) simA.child.kill('SIGSTOP');
  else front.fail();
  await sleep(AFTER_MS);
  stop = true;
  await load;
  await Promise.all([...inflight]);
  await watch;

  const warm = results.filter((r) => r.sent < t0 && r.sent > t0 - WARMUP_MS + 500 && r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
  const p99 = warm[Math.ceil(0.99 * warm.length) - 1];
  const slow = Math.max(2 * p99, p99 + 5);
  const after = results.filter((r) => r.sent >= t0).sort((a, b) => a.sent - b.sent);
  const bad = after.filter((r) => r.status !== 200 || r.ms > slow);
  // Clients are back to normal from the first moment after which 500 ms of requests
  // (by send time) are all answered 200 and not slower than before.
  let normalFrom = null;
  for (const r of [{ sent: t0, ms: 0 }, ...bad]) {
    const t = r.sent + r.ms;
    if (!bad.some((b) => b.sent > t && b.sent <= t + 500)) { normalFrom = t; break; }
  }
  const onA = after.filter((r) => r.model === 'up-a');
  const fmt = (t) => (t === null ? '-' : `${(t - t0).toFixed(0)}`);
  const out = {
    kind, rate: RATE, requests_after: after.length,
    warm_p99_ms: p99.toFixed(2),
    breaker_open_ms: fmt(openAt),
    last_failed_attempt_on_a_ms: fmt(lastErrAt),
    failed_attempts_on_a: errLast - (errBase ?? 0),
    last_answer_from_a_sent_ms: onA.length ? fmt(onA[onA.length - 1].sent) : '-',
    client_errors: after.filter((r) => r.status !== 200).length,
    slowed_requests: bad.length,
    new_requests_normal_after_ms: normalFrom === null ? '-' : (normalFrom - t0).toFixed(0),
    last_slowed_answer_ms: bad.length ? bad.reduce((a, r) => Math.max(a, r.sent + r.ms - t0), 0).toFixed(0) : '-',
    max_latency_ms: after.reduce((a, r) => Math.max(a, r.ms), 0).toFixed(1),
  };
  if (kind.startsWith('hang')) simA.child.kill('SIGCONT');
  await serve.stop(10000);
  await simA?.stop(5000);
  await simB.stop(5000);
  if (front) await new Promise((r) => front.srv.close(r));
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

const kinds = process.argv.slice(2).length ? process.argv.slice(2) : ['kill', 'fail', 'hang', 'hang-hedge', 'hang-hedge-hc'];
const rows = [];
for (const k of kinds) rows.push(await scenario(k));
const cols = Object.keys(rows[0]);
console.log(`| ${cols.join(' | ')} |`);
console.log(`|${cols.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${cols.map((c) => r[c]).join(' | ')} |`);
