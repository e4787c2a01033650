// The expected-stream language of `client_response_expect.sse` files.
//
// The file is itself SSE. Comment lines hold directives and assertions:
//   : @EXPR == JSON        the value of EXPR must match JSON (partial match, operators allowed)
//   : @recommend EXPR == JSON   advisory: a mismatch is reported as a diagnostic, not a failure
//   : @tail N              the last N skeleton events must be the last N events of the stream
//   : anything else        a plain comment
// The events (data:/event: lines separated by blank lines) are the skeleton: each one must
// partially match an event of the actual stream, in order (other events may come between).
// `data: [DONE]` matches exactly; any other data is JSON and partially matched.
//
// EXPR is a path into the context built from the actual stream:
//   openai.*       see openai.mjs (e.g. openai.content[0], openai.usage.prompt_tokens)
//   anthropic.*    see anthropic.mjs (e.g. anthropic.blocks, anthropic.stop_reason, anthropic.well_formed)
//   done           the last data event is [DONE]
//   utf8_clean     the body is valid UTF-8 without U+FFFD
//   comments       number of comment lines received
//   data_events    number of data events received (including [DONE])
//   discarded      data of an unterminated trailing event (null when none)

import { match } from './match.mjs';
import { parseSSE } from './sse.mjs';
import { assembleOpenAI } from './openai.mjs';
import { assembleAnthropic } from './anthropic.mjs';

export function parseExpectSSE(text) {
  const spec = { assertions: [], tail: 0, skeleton: [] };
  // the file's last event may lack its blank line: an expectation file is complete
  const parsed = parseSSE(text.replace(/[\r\n]*$/, '') + '\n\n');
  for (const c of parsed.comments) {
    const m = /^\s*@(.*)$/.exec(c);
    if (!m) continue;
    let body = m[1].trim();
    const tail = /^tail\s+(\d+)$/.exec(body);
    if (tail) { spec.tail = Number(tail[1]); continue; }
    let soft = false;
    if (body.startsWith('recommend ')) { soft = true; body = body.slice('recommend '.length).trim(); }
    const eq = body.indexOf(' == ');
    if (eq < 0) throw new Error(`bad assertion (no " == "): @${m[1]}`);
    const expr = body.slice(0, eq).trim();
    const raw = body.slice(eq + 4).trim();
    let value;
    try { value = JSON.parse(raw); } catch (e) { throw new Error(`bad assertion value in @${m[1]}: ${e.message}`); }
    parsePath(expr); // validate early
    spec.assertions.push({ expr, value, soft, line: `@${m[1]}` });
  }
  for (const ev of parsed.events) {
    const s = { event: ev.lines.some((l) => l.startsWith('event')) ? ev.event : undefined, raw: ev.data };
    if (ev.data === '[DONE]') s.done = true;
    else {
      try { s.json = JSON.parse(ev.data); } catch (e) { throw new Error(`skeleton event is not JSON: ${ev.data} (${e.message})`); }
    }
    spec.skeleton.push(s);
  }
  if (spec.tail > spec.skeleton.length) throw new Error(`@tail ${spec.tail} exceeds the ${spec.skeleton.length} skeleton events`);
  return spec;
}

export function parsePath(expr) {
  const re = /([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["([^"]*)"\]|(\.)/gy;
  const out = [];
  let m, pos = 0, expectName = true;
  while (pos < expr.length) {
    re.lastIndex = pos;
    m = re.exec(expr);
    if (!m) throw new Error(`bad expression: ${expr} (at ${pos})`);
    if (m[1] !== undefined) { if (!expectName) throw new Error(`bad expression: ${expr}`); out.push(m[1]); expectName = false; }
    else if (m[2] !== undefined) { out.push(m[2]); expectName = false; }
    else if (m[3] !== undefined) { out.push(m[3]); expectName = false; }
    else { expectName = true; }
    pos = re.lastIndex;
  }
  if (out.length === 0 || expectName) throw new Error(`bad expression: ${expr}`);
  return out;
}

export function evalPath(ctx, expr) {
  let v = ctx;
  for (const k of parsePath(expr)) {
    if (v === null || v === undefined || typeof v !== 'object') return undefined;
    v = Object.hasOwn(v, k) ? v[k] : undefined;
  }
  return v;
}

export function buildContext(parsed) {
  const dataEvents = parsed.events;
  return {
    openai: assembleOpenAI(dataEvents),
    anthropic: assembleAnthropic(dataEvents),
    done: dataEvents.length > 0 && dataEvents[dataEvents.length - 1].data === '[DONE]',
    utf8_clean: parsed.utf8Clean,
    comments: parsed.comments.length,
    data_events: dataEvents.length,
    discarded: parsed.discarded,
  };
}

function eventMatches(s, ev) {
  if (s.event !== undefined && s.event !== ev.event) return [`event name: expected ${s.event}, got ${ev.event}`];
  if (s.done) return ev.data === '[DONE]' ? [] : [`expected [DONE], got ${short(ev.data)}`];
  let j;
  try { j = JSON.parse(ev.data); } catch { return [`data is not JSON: ${short(ev.data)}`]; }
  return match(s.json, j, 'data');
}

function short(s, n = 240) {
  return s.length > n ? s.slice(0, n) + '…' : s;
}

// Returns { failures: [...], diagnostics: [...], ctx, parsed }.
export function checkSSE(spec, bytes) {
  const parsed = parseSSE(bytes);
  const ctx = buildContext(parsed);
  const failures = [], diagnostics = [];
  const evs = parsed.events;

  // skeleton: head as an ordered subsequence, tail pinned to the end
  const head = spec.skeleton.slice(0, spec.skeleton.length - spec.tail);
  const tail = spec.skeleton.slice(spec.skeleton.length - spec.tail);
  const tailStart = evs.length - tail.length;
  if (tail.length > 0) {
    if (tailStart < 0) failures.push(`@tail ${tail.length}: only ${evs.length} events in the stream`);
    else tail.forEach((s, k) => {
      const e = eventMatches(s, evs[tailStart + k]);
      if (e.length) failures.push(`@tail event ${k + 1}/${tail.length} (stream event #${tailStart + k}: ${short(evs[tailStart + k].data)}): ${e.join('; ')}`);
    });
  }
  const limit = tail.length > 0 ? Math.max(0, tailStart) : evs.length;
  let pos = 0;
  for (let k = 0; k < head.length; k++) {
    const s = head[k];
    let found = -1, best = null;
    for (let i = pos; i < limit; i++) {
      const e = eventMatches(s, evs[i]);
      if (e.length === 0) { found = i; break; }
      if (best === null) best = { i, e };
    }
    if (found < 0) {
      failures.push(`skeleton event ${k + 1} not found in order after stream event #${pos}: ${short(s.raw)}` +
        (best ? ` (first candidate #${best.i}: ${best.e.slice(0, 3).join('; ')})` : ' (no events left)'));
      break;
    }
    pos = found + 1;
  }

  for (const a of spec.assertions) {
    const v = evalPath(ctx, a.expr);
    const e = match(a.value, v, a.expr);
    if (e.length) (a.soft ? diagnostics : failures).push(`${a.soft ? 'recommended: ' : ''}${a.line}: ${e.join('; ')}`);
  }
  return { failures, diagnostics, ctx, parsed };
}
