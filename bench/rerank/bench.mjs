// The rerank benchmark: POST a query with N documents to `sluice sim` directly (its
// Jina-style /v1/rerank) and through `sluice serve` (/v1/rerank on a model of each shape),
// one request at a time, and report the latency sluice adds (p50 / p99 over the direct call)
// and its own x-sluice-overhead-ms (time inside sluice, excluding the upstream wait).
// Usage: node bench.mjs SIM_URL SERVE_URL [REQUESTS] [DOCS]
const [simUrl, serveUrl, reqs = '400', ndocs = '50'] = process.argv.slice(2);
const N = Number(reqs), D = Number(ndocs);

const words = ['contract', 'liability', 'payment', 'term', 'notice', 'party', 'breach', 'delivery',
  'warranty', 'clause', '违约', '责任', '付款', '期限', '通知'];
function doc(i) {
  const out = [];
  for (let k = 0; k < 220; k++) out.push(words[(i * 7 + k * 13) % words.length]);
  return `Section ${i}: ${out.join(' ')}`; // ~1.6 KB, ~300 tokens: a retrieval chunk
}
const docs = Array.from({ length: D }, (_, i) => doc(i));

async function post(url, body) {
  const t0 = process.hrtime.bigint();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`);
  return { ms, overhead: Number(res.headers.get('x-sluice-overhead-ms') ?? 'NaN') };
}
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

// The paths take turns request by request, so a burst of load elsewhere on the machine
// falls on all of them alike.
const paths = [['sim direct (Jina-style)', `${simUrl}/v1/rerank`, 'sim-rerank'],
  ['sluice → Jina-style', `${serveUrl}/v1/rerank`, 'rr-jina'],
  ['sluice → Cohere v2', `${serveUrl}/v1/rerank`, 'rr-co'],
  ['sluice → DashScope native', `${serveUrl}/v1/rerank`, 'rr-ds'],
  [`sluice → DashScope, max_batch 10 (${Math.ceil(D / 10)} parts)`, `${serveUrl}/v1/rerank`, 'rr-ds-10']];
const bodies = paths.map(([, , model]) => JSON.stringify({ model, query: 'liability for breach of the payment term', documents: docs, top_n: 5 }));
const ms = paths.map(() => []), over = paths.map(() => []);
for (let i = 0; i < 20 + N; i++) {
  for (let k = 0; k < paths.length; k++) {
    const r = await post(paths[k][1], bodies[k]);
    if (i >= 20) { ms[k].push(r.ms); over[k].push(r.overhead); } // the first 20: warm-up
  }
}
const rows = paths.map(([label], k) => ({ label, p50: pct(ms[k], 0.5), p99: pct(ms[k], 0.99),
  over50: pct(over[k], 0.5), over99: pct(over[k], 0.99) }));
const base = rows[0];
console.log(`${N} sequential requests, ${D} documents of ${docs[0].length} bytes, top_n 5`);
console.log('| path | p50 ms | p99 ms | added p50 / p99 ms | x-sluice-overhead-ms p50 / p99 |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const added = r === base ? '–' : `${(r.p50 - base.p50).toFixed(3)} / ${(r.p99 - base.p99).toFixed(3)}`;
  const over = r === base ? '–' : `${r.over50.toFixed(3)} / ${r.over99.toFixed(3)}`;
  console.log(`| ${r.label} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${added} | ${over} |`);
}
