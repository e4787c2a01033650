// The official `@anthropic-ai/sdk` against sluice's /v1/messages, routed to the
// OpenAI-format `sluice sim`: every request goes through the Anthropic <-> OpenAI
// translation. Replies and usage are exact per docs/sim.md; the last tests stop sluice
// and check that `sluice usage` holds exactly the tokens the SDK saw.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, simReply, simReasoning, simUsage, runSluice, sanitizerReports } from './harness.mjs';

let stack, client;
const T = { timeout: 20000 };

before(async () => {
  stack = await startStack();
  // baseURL is the server root: the SDK appends /v1/messages itself.
  client = new Anthropic({ baseURL: stack.url, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
});
after(async () => { if (stack) await stack.cleanup(); });

const user = (content) => ({ role: 'user', content });
// What the sim sees (the canonical OpenAI messages), for its reply and usage formulas.
const openaiView = (system, messages) => [...(system ? [{ role: 'system', content: system }] : []), ...messages];

function recordUsage(model, usage) {
  stack.record(model, {
    prompt: usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0),
    completion: usage.output_tokens,
    cached: usage.cache_read_input_tokens ?? 0,
  });
}

test('messages.create, non-stream: exact text, end_turn, usage, sluice headers', T, async () => {
  const system = 'You are a terse assistant.';
  const messages = [user('Hello there, how are you today?')];
  const { data, response } = await client.messages.create({ model: 'sim-small', max_tokens: 256, system, messages }).withResponse();
  const seen = openaiView(system, messages);
  const u = simUsage(seen);
  assert.equal(data.type, 'message');
  assert.equal(data.role, 'assistant');
  assert.match(data.id, /^msg_/);
  assert.deepEqual(data.content, [{ type: 'text', text: simReply(seen) }]);
  assert.equal(data.stop_reason, 'end_turn');
  assert.equal(data.stop_sequence, null);
  assert.equal(data.usage.input_tokens, u.prompt_tokens);
  assert.equal(data.usage.output_tokens, u.completion_tokens);
  assert.equal(data.usage.cache_read_input_tokens, 0);
  assert.ok(response.headers.get('x-request-id'), 'x-request-id header');
  assert.match(response.headers.get('x-sluice-overhead-ms') ?? '', /^\d+(\.\d+)?$/, 'x-sluice-overhead-ms header');
  recordUsage('sim-small', data.usage);
});

test('messages.stream: text events assemble the exact reply; finalMessage has usage from message_delta', T, async () => {
  const messages = [user('Stream me a short answer about rivers and lakes')];
  const stream = client.messages.stream({ model: 'sim-small', max_tokens: 256, messages });
  const events = [];
  let text = '';
  stream.on('streamEvent', (e) => events.push(e.type));
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  const u = simUsage(messages);
  assert.equal(text, simReply(messages));
  assert.deepEqual(final.content.map((b) => [b.type, b.text]), [['text', simReply(messages)]]);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.input_tokens, u.prompt_tokens, 'input tokens taken from message_delta');
  assert.equal(final.usage.output_tokens, u.completion_tokens);
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');
  assert.equal(events.at(-2), 'message_delta');
  assert.ok(events.filter((e) => e === 'content_block_delta').length > 1, `deltas: ${events}`);
  recordUsage('sim-small', final.usage);
});

const weatherTool = {
  name: 'get_weather',
  description: 'Get the current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
};

test('streamed tool use round trip: tool_use block, then tool_result -> "Tool result received: ..."', T, async () => {
  const first = [user('What is the weather in Paris?')];
  const s1 = client.messages.stream({ model: 'sim-small', max_tokens: 256, tools: [weatherTool], messages: first });
  let jsonDeltas = 0;
  s1.on('inputJson', () => { jsonDeltas++; });
  const m1 = await s1.finalMessage();
  assert.equal(m1.stop_reason, 'tool_use');
  const uses = m1.content.filter((b) => b.type === 'tool_use');
  assert.equal(uses.length, 1, JSON.stringify(m1.content));
  assert.equal(uses[0].name, 'get_weather');
  assert.equal(uses[0].id, 'call_sim_0');
  assert.deepEqual(uses[0].input, { city: 'sim' }, 'arguments built from the schema (required only)');
  assert.ok(jsonDeltas >= 1, 'input_json_delta events reached the SDK');
  recordUsage('sim-small', m1.usage);

  const second = [...first, { role: 'assistant', content: m1.content },
    user([{ type: 'tool_result', tool_use_id: uses[0].id, content: 'Sunny, 21 C' }])];
  const s2 = client.messages.stream({ model: 'sim-small', max_tokens: 256, tools: [weatherTool], messages: second });
  const m2 = await s2.finalMessage();
  assert.equal(m2.stop_reason, 'end_turn');
  assert.deepEqual(m2.content.map((b) => [b.type, b.text]), [['text', 'Tool result received: Sunny, 21 C']]);
  recordUsage('sim-small', m2.usage);
});

test('tool use, non-stream, tool_choice {type:"tool"}: one tool_use block with every property', T, async () => {
  const messages = [user('Weather please')];
  const m = await client.messages.create({
    model: 'sim-small', max_tokens: 256, tools: [{ ...weatherTool, input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } } }],
    tool_choice: { type: 'tool', name: 'get_weather' }, messages,
  });
  assert.deepEqual(m.content.map((b) => b.type), ['tool_use']);
  assert.deepEqual(m.content[0].input, { city: 'sim', days: 1 });
  // The sim says "stop" here, as OpenAI does when tool_choice names a function (FORMATS.md §1.7);
  // Anthropic clients run tools only on tool_use.
  assert.equal(m.stop_reason, 'tool_use');
  recordUsage('sim-small', m.usage);
});

test('sim-reasoner stream: a thinking block, then the text block', T, async () => {
  const messages = [user('Why is the sky blue?')];
  const stream = client.messages.stream({ model: 'sim-reasoner', max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 }, messages });
  let thinking = '';
  stream.on('thinking', (d) => { thinking += d; });
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(final.content[0].thinking, simReasoning(messages));
  assert.equal(thinking, simReasoning(messages));
  assert.equal(typeof final.content[0].signature, 'string');
  assert.equal(final.content[1].text, simReply(messages));
  const u = simUsage(messages, { reasoner: true });
  assert.equal(final.usage.output_tokens, u.completion_tokens);
  stack.record('sim-reasoner', { prompt: u.prompt_tokens, completion: u.completion_tokens, reasoning: u.reasoning_tokens });
});

test('unknown model -> NotFoundError (404, not_found_error)', T, async () => {
  await assert.rejects(client.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [user('hi')] }), (e) => {
    assert.ok(e instanceof Anthropic.NotFoundError, `got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 404);
    assert.equal(e.error?.type, 'error');
    assert.equal(e.error?.error?.type, 'not_found_error');
    return true;
  });
});

test('missing max_tokens -> BadRequestError (400, invalid_request_error)', T, async () => {
  await assert.rejects(client.messages.create({ model: 'sim-large', messages: [user('hi')] }), (e) => {
    assert.ok(e instanceof Anthropic.BadRequestError, `got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 400);
    assert.equal(e.error?.error?.type, 'invalid_request_error');
    assert.match(e.error?.error?.message ?? '', /max_tokens/);
    return true;
  });
});

test('upstream 429 -> RateLimitError (rate_limit_error) with Retry-After', T, async () => {
  let err;
  try {
    await client.messages.create({ model: 'sim-large', max_tokens: 10, messages: [user('rate limit me @sim:status=429 @sim:retry_after=0')] });
  } catch (e) { err = e; }
  assert.ok(err instanceof Anthropic.RateLimitError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 429);
  assert.equal(err.error?.error?.type, 'rate_limit_error');
  assert.equal(err.headers?.get('retry-after'), '0', 'Retry-After passed through');
});

test('mid-stream error (@sim:error_after=2): the SDK stream rejects with an APIError after some text', T, async () => {
  const stream = client.messages.stream({ model: 'sim-large', max_tokens: 256, messages: [user('start then fail @sim:error_after=2')] });
  let text = '';
  stream.on('text', (t) => { text += t; });
  stream.on('error', () => {}); // the rejection below is the assertion
  await assert.rejects(stream.finalMessage(), (e) => {
    assert.ok(e instanceof Anthropic.APIError, `got ${e.constructor.name}: ${e.message}`);
    return true;
  });
  assert.ok(text.length > 0, 'text before the error reached the client');
});

test('messages.countTokens: an integer estimate that grows with tools', T, async () => {
  const base = { model: 'sim-small', system: 'You are a scientist.', messages: [user('Hello, what is the weather like in Paris today?')] };
  const a = await client.messages.countTokens(base);
  const b = await client.messages.countTokens({ ...base, tools: [weatherTool] });
  assert.ok(Number.isInteger(a.input_tokens) && a.input_tokens > 5, JSON.stringify(a));
  assert.ok(b.input_tokens > a.input_tokens, `with tools ${b.input_tokens} <= without ${a.input_tokens}`);
});

test('SIGTERM: sluice drains and exits 0, no sanitizer report', { timeout: 20000 }, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.killed, false, `sluice serve did not exit within 10 s${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], `sanitizer reports${stack.stderrTail()}`);
  assert.equal(r.serve.signal, null, `killed by ${r.serve.signal}${stack.stderrTail()}`);
  assert.equal(r.serve.code, 0, `exit code ${r.serve.code}${stack.stderrTail()}`);
});

test('sluice usage --format json: the ledger holds exactly the tokens the SDK saw', { timeout: 20000 }, async () => {
  const r = await runSluice(['usage', '--store', stack.storeUrl, '--format', 'json']);
  assert.equal(r.code, 0, `sluice usage failed: ${r.stderr}`);
  const rows = JSON.parse(r.stdout);
  const by = new Map(rows.map((x) => [x.model, x]));
  for (const model of ['sim-small', 'sim-reasoner']) {
    const want = stack.ledger.get(model);
    const row = by.get(model);
    assert.ok(row, `no ledger row for ${model}: ${r.stdout}`);
    assert.deepEqual(
      { requests: row.requests, prompt_tokens: row.prompt_tokens, completion_tokens: row.completion_tokens, cached_tokens: row.cached_tokens },
      { requests: want.requests, prompt_tokens: want.prompt_tokens, completion_tokens: want.completion_tokens, cached_tokens: want.cached_tokens },
      `${model} totals`);
  }
});
