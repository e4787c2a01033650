// The fake upstream: one node:http server for every case. A request whose path starts
// with /<prefix>/ is recorded for that case and answered with the case's raw bytes,
// written the way the case's `delivery` says:
//   {"mode":"whole"}                               one write
//   {"mode":"events","gap_ms":N,"comment_gap_ms":M} one write per SSE event (comment-only
//                                                  events wait M instead of N)
//   {"mode":"splits","offsets":[...],"gap_ms":N}   cut at those byte offsets
//   {"mode":"cut","cut_at":B,"gap_ms":N,"offsets":[...]?}
//                                                  like events (or splits when offsets are
//                                                  given), then destroy the socket after B bytes
// plus "stall_ms": wait that long before the status line (first-byte timeouts).
// and `transfer`: "chunked" (default for streams; one HTTP chunk per write),
// "content-length" (the full length is announced, even when the body is cut), or "close"
// (no length, no chunking: the body ends when the connection closes).

import http from 'node:http';
import { splitEventsRaw } from './sse.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function isCommentOnly(piece) {
  const s = piece.toString('latin1');
  const lines = s.split(/\r\n|\r|\n/).filter((l) => l !== '');
  return lines.length > 0 && lines.every((l) => l.startsWith(':'));
}

export function planWrites(body, delivery) {
  const mode = delivery?.mode ?? 'whole';
  let pieces;
  if (mode === 'whole') pieces = [body];
  else if (mode === 'events' || (mode === 'cut' && !delivery.offsets)) pieces = splitEventsRaw(body);
  else if (mode === 'splits' || mode === 'cut') {
    pieces = [];
    let prev = 0;
    for (const off of delivery.offsets) {
      if (off <= prev || off >= body.length) throw new Error(`bad split offset ${off} (body ${body.length} bytes)`);
      pieces.push(body.subarray(prev, off));
      prev = off;
    }
    pieces.push(body.subarray(prev));
  } else throw new Error(`unknown delivery mode ${mode}`);
  if (mode === 'cut') {
    const cutAt = delivery.cut_at;
    if (!(cutAt > 0 && cutAt < body.length)) throw new Error(`bad cut_at ${cutAt} (body ${body.length} bytes)`);
    const out = [];
    let n = 0;
    for (const p of pieces) {
      if (n + p.length >= cutAt) { out.push(p.subarray(0, cutAt - n)); break; }
      out.push(p);
      n += p.length;
    }
    pieces = out;
  }
  return pieces.filter((p) => p.length > 0);
}

export async function startFakeUpstream() {
  const routes = new Map(); // prefix -> { reply, requests: [] }
  const unrouted = [];
  const server = http.createServer({ noDelay: true, keepAliveTimeout: 5000 }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rec = { method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks), at: Date.now() };
      const prefix = req.url.split('/')[1] ?? '';
      const route = routes.get(prefix);
      if (!route) {
        unrouted.push(rec);
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `fake upstream: no case for ${req.url}`, type: 'invalid_request_error', param: null, code: null } }));
        return;
      }
      route.requests.push(rec);
      // a function picks the reply for each request (cases with several upstream requests)
      const reply = typeof route.reply === 'function' ? route.reply(rec) : route.reply;
      serve(reply, req, res).catch(() => res.destroy());
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  return {
    port,
    unrouted,
    route(prefix, reply) {
      const r = { reply, requests: [] };
      routes.set(prefix, r);
      return r;
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

async function serve(reply, req, res) {
  const { status = 200, headers = {}, body = Buffer.alloc(0), delivery = {} } = reply;
  const pieces = planWrites(body, delivery);
  const transfer = delivery.transfer ?? (delivery.mode && delivery.mode !== 'whole' ? 'chunked' : 'content-length');
  if (delivery.stall_ms) { // say nothing at all for a while (first-byte timeouts)
    await sleep(delivery.stall_ms);
    if (res.destroyed || req.socket.destroyed) return;
  }
  const h = { ...headers };
  if (transfer === 'content-length') h['content-length'] = String(body.length);
  if (transfer === 'close') { res.useChunkedEncodingByDefault = false; h.connection = 'close'; res.shouldKeepAlive = false; }
  res.writeHead(status, h);
  if (transfer === 'chunked') res.flushHeaders();
  const gap = delivery.gap_ms ?? 0;
  const cgap = delivery.comment_gap_ms ?? gap;
  for (let i = 0; i < pieces.length; i++) {
    if (res.destroyed) return;
    await new Promise((r) => res.write(pieces[i], r));
    if (i < pieces.length - 1 && delivery.mode !== 'whole') {
      const g = isCommentOnly(pieces[i]) ? cgap : gap;
      if (g > 0) await sleep(g);
    }
  }
  if (delivery.mode === 'cut') {
    await sleep(delivery.gap_ms ?? 0);
    res.socket?.destroy();
    return;
  }
  res.end();
}
