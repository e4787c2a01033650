// Unit tests of the case library (matcher, SSE parser, stream assembly, expectation
// language, delivery planning), and a consistency check of every case's data: the
// expected client stream must accept what an ideal gateway would send for that case's
// upstream bytes, and must reject obvious wrong answers.
//
// Run: node --test --test-reporter=tap tests/cases/lib/lib.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { match, matchHeaders } from './match.mjs';
import { parseSSE, splitEventsRaw, decodeUtf8 } from './sse.mjs';
import { assembleOpenAI } from './openai.mjs';
import { assembleAnthropic, openaiToAnthropic } from './anthropic.mjs';
import { parseExpectSSE, checkSSE, parsePath, evalPath } from './expect_sse.mjs';
import { planWrites } from './upstream.mjs';

const CASES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('match: objects are partial, arrays exact length, scalars strict', () => {
  assert.deepEqual(match({ a: 1 }, { a: 1, b: 2 }), []);
  assert.equal(match({ a: 1 }, { a: 2 }).length, 1);
  assert.equal(match({ a: 1 }, {}).length, 1);
  assert.deepEqual(match([1, { x: 'y' }], [1, { x: 'y', z: 0 }]), []);
  assert.equal(match([1], [1, 2]).length, 1);
  assert.equal(match([], [{}]).length, 1);
  assert.equal(match('1', 1).length, 1);
  assert.equal(match(null, undefined).length, 1);
  assert.deepEqual(match(null, null), []);
  assert.equal(match({ a: {} }, { a: [] }).length, 1);
  assert.match(match({ a: { b: 1 } }, { a: { b: 2 } })[0], /\$\.a\.b: expected 1, got 2/);
});

test('match: operators', () => {
  assert.deepEqual(match({ a: '$absent' }, {}), []);
  assert.equal(match({ a: '$absent' }, { a: null }).length, 1);
  assert.deepEqual(match({ a: '$any' }, { a: null }), []);
  assert.equal(match({ a: '$any' }, {}).length, 1);
  assert.deepEqual(match({ $type: 'integer' }, 3), []);
  assert.equal(match({ $type: 'integer' }, 3.5).length, 1);
  assert.deepEqual(match({ $type: 'null' }, null), []);
  assert.deepEqual(match({ $type: 'array' }, []), []);
  assert.equal(match({ $type: 'object' }, []).length, 1);
  assert.deepEqual(match({ $prefix: 'text/event-stream' }, 'text/event-stream; charset=utf-8'), []);
  assert.equal(match({ $prefix: 'x' }, 5).length, 1);
  assert.deepEqual(match({ $contains: 'abc' }, 'xxabcxx'), []);
  assert.deepEqual(match({ $regex: '^\\d+$' }, '123'), []);
  assert.equal(match({ $regex: '^\\d+$' }, '12a').length, 1);
  assert.deepEqual(match({ $nonempty_string: true }, 'a'), []);
  assert.equal(match({ $nonempty_string: true }, '').length, 1);
  assert.deepEqual(match({ $json: { city: 'Paris' } }, '{"city":"Paris","unit":"c"}'), []);
  assert.equal(match({ $json: { city: 'Paris' } }, '{"city":').length, 1);
  assert.equal(match({ $json: { city: 'Paris' } }, { city: 'Paris' }).length, 1, '$json wants a string, not an object');
  assert.deepEqual(match({ a: { $one_of: ['$absent', false] } }, {}), []);
  assert.deepEqual(match({ a: { $one_of: ['$absent', false] } }, { a: false }), []);
  assert.equal(match({ a: { $one_of: ['$absent', false] } }, { a: true }).length, 1);
  assert.deepEqual(match({ $gte: 1, $lte: 3 }, 2), []);
  assert.equal(match({ $gte: 1, $lte: 3 }, 4).length, 1);
  assert.equal(match({ $gte: 1 }, '2').length, 1);
  assert.deepEqual(match({ $exact: { a: [1] } }, { a: [1] }), []);
  assert.equal(match({ $exact: { a: [1] } }, { a: [1], b: 0 }).length, 1);
  // a plain object with a "$"-key that is not an operator is matched as data
  assert.deepEqual(match({ $ref: '#/x' }, { $ref: '#/x', y: 1 }), []);
});

test('matchHeaders: case-insensitive names, Headers and plain objects', () => {
  const h = new Headers({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Retry-After': '1' });
  assert.deepEqual(matchHeaders({ 'content-type': { $prefix: 'text/event-stream' }, 'retry-after': '1' }, h), []);
  assert.deepEqual(matchHeaders({ Authorization: 'Bearer k' }, { authorization: 'Bearer k' }), []);
  assert.equal(matchHeaders({ 'x-request-id': { $nonempty_string: true } }, {}).length, 1);
  assert.deepEqual(matchHeaders({ 'x-missing': '$absent' }, h), []);
});

test('parseSSE: LF, CRLF, CR, comments, no-space data, multi-line data, ids, discarded tail', () => {
  const s = ': keep-alive\n\ndata: {"a":1}\n\ndata:{"b":2}\r\n\r\nevent: x\rdata: l1\rdata: l2\r\rid: 7\nretry: 10\ndata:  two spaces\n\ndata: [DONE]\n\ndata: partial';
  const p = parseSSE(Buffer.from(s));
  assert.deepEqual(p.comments, ['keep-alive']);
  assert.deepEqual(p.events.map((e) => e.data), ['{"a":1}', '{"b":2}', 'l1\nl2', ' two spaces', '[DONE]']);
  assert.equal(p.events[2].event, 'x');
  assert.equal(p.events[3].id, '7');
  assert.equal(p.events[0].event, 'message');
  assert.equal(p.discarded, 'data: partial');
  assert.equal(p.utf8Clean, true);
});

test('parseSSE: an event without its blank line at EOF is discarded', () => {
  const p = parseSSE(Buffer.from('data: {"a":1}\n\ndata: {"b":2}\n'));
  assert.deepEqual(p.events.map((e) => e.data), ['{"a":1}']);
  assert.equal(p.discarded, '{"b":2}');
});

test('decodeUtf8: invalid bytes and U+FFFD are not clean', () => {
  assert.equal(decodeUtf8(Buffer.from('长城')).utf8Clean, true);
  assert.equal(decodeUtf8(Buffer.from([0xe9, 0x95])).utf8Clean, false);
  assert.equal(decodeUtf8(Buffer.from('a\uFFFDb')).utf8Clean, false);
});

test('splitEventsRaw: one piece per event, bytes kept exactly (CRLF too)', () => {
  const s = Buffer.from(': c\n\ndata: a\n\ndata: b\r\n\r\n\ndata: c\r\rdata: tail');
  const pieces = splitEventsRaw(s);
  assert.deepEqual(pieces.map((p) => p.toString()), [': c\n\n', 'data: a\n\n', 'data: b\r\n\r\n', '\n', 'data: c\r\r', 'data: tail']);
  assert.equal(Buffer.concat(pieces).compare(s), 0);
});

test('planWrites: splits, cut, events', () => {
  const b = Buffer.from('data: 1\n\ndata: 2\n\ndata: [DONE]\n\n');
  assert.deepEqual(planWrites(b, { mode: 'whole' }).map(String), [b.toString()]);
  assert.equal(planWrites(b, { mode: 'events' }).length, 3);
  assert.deepEqual(planWrites(b, { mode: 'splits', offsets: [3, 12] }).map(String), ['dat', 'a: 1\n\ndat', 'a: 2\n\ndata: [DONE]\n\n']);
  assert.deepEqual(planWrites(b, { mode: 'cut', cut_at: 13 }).map(String), ['data: 1\n\n', 'data']);
  assert.throws(() => planWrites(b, { mode: 'splits', offsets: [5, 5] }));
  assert.throws(() => planWrites(b, { mode: 'cut', cut_at: 999 }));
});

test('assembleOpenAI: content, reasoning, tool calls keyed by index, usage, errors', () => {
  const ev = (o) => ({ data: typeof o === 'string' ? o : JSON.stringify(o) });
  const evs = [
    ev({ id: 'x', choices: [{ index: 0, delta: { role: 'assistant', content: null, reasoning_content: '' } }], usage: null }),
    ev({ choices: [{ index: 0, delta: { reasoning_content: 'think' } }] }),
    ev({ choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '' } }] } }] }),
    ev({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '{"x"' } }] } }] }),
    ev({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: '', type: 'function', function: { arguments: ':1}' } }] } }] }),
    ev({ choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { arguments: '{}' } }] } }] }),
    ev({ choices: [{ index: 1, delta: { content: 'other' } }] }),
    ev({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }),
    ev({ choices: [], usage: { prompt_tokens: 3 } }),
    ev('{broken'),
    ev({ error: { message: 'boom' } }),
    ev('[DONE]'),
  ];
  const r = assembleOpenAI(evs);
  assert.equal(r.content[0], '');
  assert.equal(r.content[1], 'other');
  assert.equal(r.reasoning[0], 'think');
  assert.deepEqual(r.tool_calls[0], [
    { index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
    { index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{}' } }]);
  assert.equal(r.finish_reason[0], 'tool_calls');
  assert.deepEqual(r.usage, { prompt_tokens: 3 });
  assert.equal(r.empty_choices_chunks, 1);
  assert.equal(r.all_data_json, false);
  assert.deepEqual(r.error, { message: 'boom' });
  assert.equal(r.error_events, 1);
  assert.equal(r.done_count, 1);
  assert.equal(r.role[0], 'assistant');
});

test('assembleAnthropic: blocks, usage merged, grammar errors', () => {
  const ev = (event, o) => ({ event, data: JSON.stringify({ type: event, ...o }) });
  const good = [
    ev('message_start', { message: { id: 'msg_1', role: 'assistant', content: [], usage: { input_tokens: 5, output_tokens: 1 } } }),
    ev('ping', {}),
    ev('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }),
    ev('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: 'hm' } }),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 't', name: 'f', input: {} } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"a"' } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: ':1}' } }),
    ev('content_block_stop', { index: 1 }),
    ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { input_tokens: 7, cache_read_input_tokens: 3, output_tokens: 9 } }),
    ev('message_stop', {}),
  ];
  const r = assembleAnthropic(good);
  assert.deepEqual(r.grammar_errors, []);
  assert.equal(r.well_formed, true);
  assert.deepEqual(r.blocks, [{ type: 'thinking', thinking: 'hm', signature: '' }, { type: 'tool_use', id: 't', name: 'f', input: { a: 1 } }]);
  assert.equal(r.stop_reason, 'tool_use');
  assert.deepEqual(r.usage, { input_tokens: 7, output_tokens: 9, cache_read_input_tokens: 3 });
  assert.equal(r.usage_total_input, 10);
  const bad = [...good];
  bad[5] = ev('content_block_start', { index: 2, content_block: { type: 'text', text: '' } });
  assert.equal(assembleAnthropic(bad).well_formed, false);
  assert.equal(assembleAnthropic(good.slice(0, -1)).well_formed, false, 'no message_stop');
  const failed = assembleAnthropic([good[0], ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })]);
  assert.deepEqual(failed.error, { type: 'overloaded_error', message: 'Overloaded' });
  assert.equal(failed.well_formed, false);
  assert.deepEqual(failed.grammar_errors, []);
});

test('expression paths', () => {
  assert.deepEqual(parsePath('openai.content[0]'), ['openai', 'content', '0']);
  assert.deepEqual(parsePath('openai.usage.prompt_tokens'), ['openai', 'usage', 'prompt_tokens']);
  assert.deepEqual(parsePath('a["b c"].d'), ['a', 'b c', 'd']);
  assert.throws(() => parsePath('openai.'));
  assert.throws(() => parsePath('open ai'));
  assert.equal(evalPath({ a: { 0: 'x' } }, 'a[0]'), 'x');
  assert.equal(evalPath({ a: null }, 'a.b'), undefined);
});

const EXP = `: comment
: @openai.content[0] == "Hi there"
: @openai.usage == {"total_tokens":5}
: @recommend openai.usage == {"prompt_tokens_details":{"cached_tokens":0}}
: @done == true
: @tail 2

data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}

data: {"choices":[],"usage":{"total_tokens":5}}

data: [DONE]
`;

const GOOD = [
  'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}',
  ': keep-alive',
  'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}',
  'data:{"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}],"usage":null}',
  'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}',
  'data: [DONE]'].join('\n\n') + '\n\n';

test('checkSSE: accepts a conforming stream, reports soft assertions as diagnostics', () => {
  const spec = parseExpectSSE(EXP);
  assert.equal(spec.tail, 2);
  assert.equal(spec.assertions.length, 4);
  const r = checkSSE(spec, Buffer.from(GOOD));
  assert.deepEqual(r.failures, []);
  assert.equal(r.diagnostics.length, 1);
});

test('checkSSE: rejects wrong content, usage chunk not last, missing [DONE], skeleton out of order', () => {
  const spec = parseExpectSSE(EXP);
  assert.ok(checkSSE(spec, Buffer.from(GOOD.replace('" there"', '" thar"'))).failures.length > 0);
  const moved = GOOD.replace('data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}\n\n', '')
    .replace('data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]', 'data: {"choices":[],"usage":{"total_tokens":5}}\n\ndata: {"choices":[{"index":0,"delta":{"content":"Hi"}}]');
  assert.ok(checkSSE(spec, Buffer.from(moved)).failures.some((f) => f.includes('@tail')));
  const noDone = GOOD.replace('data: [DONE]\n\n', '');
  assert.ok(checkSSE(spec, Buffer.from(noDone)).failures.length >= 2);
  const spec2 = parseExpectSSE(': @done == true\n\ndata: {"choices":[{"index":0,"delta":{"content":" there"}}]}\n\ndata: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n');
  assert.ok(checkSSE(spec2, Buffer.from(GOOD)).failures.some((f) => f.includes('skeleton event 2')));
  assert.throws(() => parseExpectSSE(': @done true\n'));
  assert.throws(() => parseExpectSSE(': @done == tru\n'));
  assert.throws(() => parseExpectSSE(': @tail 3\n\ndata: [DONE]\n\n'));
});

// ---- every case's data is consistent ------------------------------------------------
// An ideal gateway for OpenAI-compatible upstreams: pass events through; drop the
// choices:[] usage chunk when the client did not ask for usage; drop non-JSON data;
// after a cut stream, add an error event and [DONE]. Usage that rides on a chunk with
// choices (DeepSeek/GLM on the finish chunk, Moonshot inside the choice, FORMATS §5/§6)
// is taken off it and, for a client that asked for usage, sent once in OpenAI's separate
// choices:[] chunk before [DONE], with the provider's cache field as
// prompt_tokens_details.cached_tokens.
function openaiUsage(u) {
  const r = structuredClone(u);
  if (r.prompt_tokens_details?.cached_tokens === undefined) {
    const k = r.prompt_cache_hit_tokens ?? r.cached_tokens ?? 0;
    r.prompt_tokens_details = { ...(r.prompt_tokens_details ?? {}), cached_tokens: k };
  }
  r.total_tokens ??= (r.prompt_tokens ?? 0) + (r.completion_tokens ?? 0);
  return r;
}

function idealClientStream(c, upstreamBytes, clientReq, { moveUsage = true } = {}) {
  const p = parseSSE(upstreamBytes);
  if (c.client?.format === 'anthropic') return openaiToAnthropic(p.events);
  const wantUsage = clientReq?.stream_options?.include_usage === true;
  const out = [];
  let done = false, moved, forwarded = false;
  for (const ev of p.events) {
    if (ev.data === '[DONE]') {
      if (wantUsage && moved && !forwarded) out.push('data: ' + JSON.stringify({ object: 'chat.completion.chunk', choices: [], usage: openaiUsage(moved) }));
      out.push('data: [DONE]'); done = true; break;
    }
    let j;
    try { j = JSON.parse(ev.data); } catch { continue; }
    if (Array.isArray(j.choices) && j.choices.length === 0 && j.usage) {
      if (!wantUsage) continue;
      forwarded = true;
    } else if (moveUsage && Array.isArray(j.choices) && !j.error) {
      let u = j.usage && typeof j.usage === 'object' ? j.usage : undefined;
      if (u) j.usage = null;
      for (const ch of j.choices) {
        if (ch && ch.usage && typeof ch.usage === 'object') { u ??= ch.usage; delete ch.usage; }
      }
      if (u) moved = u;
    }
    out.push('data: ' + JSON.stringify(j));
  }
  // (one error event: a stream that already relayed the upstream's in-band error just ends)
  if (!done && !out.some((l) => { try { return !!JSON.parse(l.slice(6)).error; } catch { return false; } }))
    out.push('data: {"error":{"message":"upstream closed the stream","type":"upstream_error","param":null,"code":null}}');
  if (!done) out.push('data: [DONE]');
  return Buffer.from(out.join('\n\n') + '\n\n');
}

const dirs = readdirSync(CASES).filter((d) => /^\d{3}-/.test(d)).sort();
test('case folders: files present and parsable', () => {
  assert.ok(dirs.length >= 20, `only ${dirs.length} cases`);
  const seen = new Set();
  for (const d of dirs) {
    const dir = path.join(CASES, d);
    const c = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8'));
    assert.equal(c.id, d, `${d}: case.json id`);
    assert.ok(c.title, `${d}: title`);
    assert.ok(existsSync(path.join(dir, 'notes.md')), `${d}: notes.md`);
    assert.ok(c.expect && c.expect.status, `${d}: expect.status`);
    assert.ok(seen.has(d.slice(0, 3)) === false, `${d}: duplicate number`);
    seen.add(d.slice(0, 3));
    if (c.upstream?.response_file) {
      assert.ok(existsSync(path.join(dir, c.upstream.response_file)), `${d}: ${c.upstream.response_file}`);
      const body = readFileSync(path.join(dir, c.upstream.response_file));
      assert.ok(planWrites(body, c.upstream.delivery ?? {}).length > 0);
      if (c.upstream.response_file.endsWith('.json') && !c.upstream.delivery?.stall_ms) JSON.parse(body.toString());
    }
    if (c.expect.body_file) {
      const f = path.join(dir, c.expect.body_file);
      assert.ok(existsSync(f), `${d}: ${c.expect.body_file}`);
      if (f.endsWith('.sse')) {
        const spec = parseExpectSSE(readFileSync(f, 'utf8'));
        assert.ok(spec.assertions.length + spec.skeleton.length > 0, `${d}: the expectation asserts nothing`);
      } else JSON.parse(readFileSync(f, 'utf8'));
    }
  }
});

for (const d of dirs) {
  const dir = path.join(CASES, d);
  const c = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8'));
  if (!c.expect?.body_file?.endsWith('.sse') || !c.upstream?.response_file?.endsWith('.sse')) continue;
  // The ideal gateway above relays OpenAI-format events, or translates them for an
  // Anthropic client (anthropic.mjs); it says nothing about other translations.
  if ((c.upstream.kind ?? 'openai') !== 'openai' || !['openai', 'anthropic'].includes(c.client?.format ?? 'openai')) continue;
  test(`case ${d}: expectation accepts the ideal gateway's stream and rejects a raw echo where they differ`, () => {
    const spec = parseExpectSSE(readFileSync(path.join(dir, c.expect.body_file), 'utf8'));
    let up = readFileSync(path.join(dir, c.upstream.response_file));
    if (c.upstream.delivery?.mode === 'cut') up = up.subarray(0, c.upstream.delivery.cut_at);
    const req = JSON.parse(readFileSync(path.join(dir, 'client_request.json'), 'utf8'));
    const ideal = idealClientStream(c, up, req);
    const r = checkSSE(spec, ideal);
    assert.deepEqual(r.failures, [], `ideal stream rejected:\n${ideal.toString()}`);
    // A gateway that copies the upstream bytes as they are fails wherever the ideal one differs.
    const canon = (s) => { try { return JSON.stringify(JSON.parse(s)); } catch { return s; } };
    const echo = Buffer.from(parseSSE(up).events.map((e) => 'data: ' + canon(e.data)).join('\n\n') + '\n\n');
    // Moving usage off a content chunk is allowed, not required, by the cases that do not pin a
    // provider preset (route.provider_extra.preset); the preset cases pin the provider's quirks.
    const differs = c.route?.provider_extra?.preset ? Buffer.compare(ideal, echo) !== 0
      : Buffer.compare(idealClientStream(c, up, req, { moveUsage: false }), echo) !== 0;
    if (differs) {
      let echoFails = true;
      try { echoFails = checkSSE(spec, up).failures.length > 0; } catch { echoFails = true; }
      assert.ok(echoFails, 'a raw echo of the upstream passes although the ideal stream differs from it');
    }
  });
}
