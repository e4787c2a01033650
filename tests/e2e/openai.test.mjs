// The official `openai` SDK against sluice in front of `sluice sim`.
// Replies and usage are exact per docs/sim.md. The last tests stop sluice (SIGTERM: exit 0)
// and check that `sluice usage` holds exactly the tokens the SDK saw.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, simReply, simReasoning, simUsage, runSluice, sanitizerReports } from './harness.mjs';

let stack, client;
const T = { timeout: 20000 };

before(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
});
after(async () => { if (stack) await stack.cleanup(); });

const user = (content) => ({ role: 'user', content });

test('models.list() returns the configured models, owned_by the provider', T, async () => {
  const ids = [];
  const owners = {};
  for await (const m of client.models.list()) { ids.push(m.id); owners[m.id] = m.owned_by; }
  for (const m of ['sim-small', 'sim-large', 'sim-reasoner', 'dead']) assert.ok(ids.includes(m), `missing ${m} in ${ids}`);
  assert.equal(owners['sim-small'], 'sim');
  assert.equal(owners.dead, 'deadp');
});

test('non-stream: exact reply text, usage, and sluice headers', T, async () => {
  const messages = [{ role: 'system', content: 'You are a terse assistant.' }, user('Hello there, how are you today?')];
  const { data, response } = await client.chat.completions.create({ model: 'sim-small', messages, temperature: 0 }).withResponse();
  const u = simUsage(messages);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, simReply(messages));
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(data.usage.prompt_tokens, u.prompt_tokens);
  assert.equal(data.usage.completion_tokens, u.completion_tokens);
  assert.equal(data.usage.total_tokens, u.total_tokens);
  assert.ok(response.headers.get('x-request-id'), 'x-request-id header');
  assert.match(response.headers.get('x-sluice-overhead-ms') ?? '', /^\d+(\.\d+)?$/, 'x-sluice-overhead-ms header');
  stack.record('sim-small', { prompt: u.prompt_tokens, completion: u.completion_tokens });
});

test('stream with include_usage: assembled text, usage chunk last', T, async () => {
  const messages = [user('Stream me a short answer about rivers and lakes')];
  const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, n = 0, usageIndex = -1, emptyChoices = 0;
  for await (const chunk of stream) {
    if (chunk.choices.length === 0) emptyChoices++;
    for (const c of chunk.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) { usage = chunk.usage; usageIndex = n; }
    n++;
  }
  const u = simUsage(messages);
  assert.equal(text, simReply(messages));
  assert.equal(finish, 'stop');
  assert.ok(n > 3, `only ${n} chunks`);
  assert.equal(emptyChoices, 1, 'exactly one choices:[] chunk');
  assert.equal(usageIndex, n - 1, 'the usage chunk is the last chunk');
  assert.deepEqual({ p: usage.prompt_tokens, c: usage.completion_tokens, t: usage.total_tokens },
    { p: u.prompt_tokens, c: u.completion_tokens, t: u.total_tokens });
  stack.record('sim-small', { prompt: u.prompt_tokens, completion: u.completion_tokens });
});

test('stream without include_usage: no empty-choices chunk and no usage reach the client', T, async () => {
  const messages = [user('Stream without usage please, about mountains')];
  const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true });
  let text = '', finish = null, n = 0;
  for await (const chunk of stream) {
    assert.ok(Array.isArray(chunk.choices) && chunk.choices.length > 0, `chunk ${n} has empty choices: ${JSON.stringify(chunk)}`);
    assert.ok(!chunk.usage, `chunk ${n} carries usage although the client did not ask: ${JSON.stringify(chunk)}`);
    text += chunk.choices[0].delta?.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
    n++;
  }
  assert.equal(text, simReply(messages));
  assert.equal(finish, 'stop');
  const u = simUsage(messages); // sluice asked the sim for usage: the ledger has it
  stack.record('sim-small', { prompt: u.prompt_tokens, completion: u.completion_tokens });
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer' } },
      required: ['city', 'unit'],
    },
  },
};
const timeTool = {
  type: 'function',
  function: {
    name: 'get_time', description: 'Local time',
    parameters: { type: 'object', properties: { tz: { type: 'string' }, precise: { type: 'boolean' }, offsets: { type: 'array', items: { type: 'number' } } } },
  },
};

test('tool call, non-stream: arguments built from the schema (required only, enum first value)', T, async () => {
  const messages = [user('What is the weather in Lisbon?')];
  const r = await client.chat.completions.create({ model: 'sim-small', messages, tools: [weatherTool, timeTool] });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls.length, 1);
  const tc = c.message.tool_calls[0];
  assert.equal(tc.id, 'call_sim_0');
  assert.equal(tc.type, 'function');
  assert.equal(tc.function.name, 'get_weather');
  assert.equal(typeof tc.function.arguments, 'string');
  assert.deepEqual(JSON.parse(tc.function.arguments), { city: 'sim', unit: 'celsius' });
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens >= 0);
  stack.record('sim-small', { prompt: r.usage.prompt_tokens, completion: r.usage.completion_tokens });
});

test('tool call, non-stream, tool_choice names a function: finish_reason stop, all properties without required', T, async () => {
  const messages = [user('What time is it?')];
  const r = await client.chat.completions.create({
    model: 'sim-small', messages, tools: [weatherTool, timeTool], tool_choice: { type: 'function', function: { name: 'get_time' } },
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'stop');
  assert.equal(c.message.tool_calls[0].function.name, 'get_time');
  assert.deepEqual(JSON.parse(c.message.tool_calls[0].function.arguments), { tz: 'sim', precise: true, offsets: [] });
  stack.record('sim-small', { prompt: r.usage.prompt_tokens, completion: r.usage.completion_tokens });
});

test('tool calls streamed (@sim:parallel_tools): arguments assembled by index parse as JSON', T, async () => {
  const messages = [user('Weather and time in Porto @sim:parallel_tools')];
  const stream = await client.chat.completions.create({
    model: 'sim-small', messages, tools: [weatherTool, timeTool], stream: true, stream_options: { include_usage: true },
  });
  const calls = {};
  let finish = null, usage = null, fragments = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices) {
      for (const tc of ch.delta?.tool_calls ?? []) {
        const c = (calls[tc.index] ??= { id: '', name: '', args: '' });
        if (tc.id) c.id = tc.id;
        if (tc.function?.name) c.name = tc.function.name;
        if (tc.function?.arguments) { c.args += tc.function.arguments; fragments++; }
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(Object.keys(calls), ['0', '1']);
  assert.deepEqual(calls[0].id, 'call_sim_0');
  assert.deepEqual(calls[1].id, 'call_sim_1');
  assert.equal(calls[0].name, 'get_weather');
  assert.equal(calls[1].name, 'get_time');
  assert.deepEqual(JSON.parse(calls[0].args), { city: 'sim', unit: 'celsius' });
  assert.deepEqual(JSON.parse(calls[1].args), { tz: 'sim', precise: true, offsets: [] });
  assert.ok(fragments > 2, `arguments came in ${fragments} fragments (sim sends at most 8 bytes each)`);
  assert.ok(usage, 'usage chunk');
  stack.record('sim-small', { prompt: usage.prompt_tokens, completion: usage.completion_tokens });
});

test('JSON mode: json_object content parses to {"reply": ...}; json_schema builds the schema object', T, async () => {
  const messages = [user('Give me JSON about the sea')];
  const r = await client.chat.completions.create({ model: 'sim-small', messages, response_format: { type: 'json_object' } });
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { reply: simReply(messages) });
  stack.record('sim-small', { prompt: r.usage.prompt_tokens, completion: r.usage.completion_tokens });

  const r2 = await client.chat.completions.create({
    model: 'sim-small', messages,
    response_format: { type: 'json_schema', json_schema: { name: 'fact', schema: { type: 'object', properties: { name: { type: 'string' }, depth: { type: 'number' } }, required: ['name'] } } },
  });
  assert.deepEqual(JSON.parse(r2.choices[0].message.content), { name: 'sim' });
  stack.record('sim-small', { prompt: r2.usage.prompt_tokens, completion: r2.usage.completion_tokens });
});

test('reasoner, non-stream and stream: reasoning_content passes through, reasoning tokens counted', T, async () => {
  const messages = [user('Why is the sky blue?')];
  const u = simUsage(messages, { reasoner: true });
  const r = await client.chat.completions.create({ model: 'sim-reasoner', messages });
  assert.equal(r.choices[0].message.content, simReply(messages));
  assert.equal(r.choices[0].message.reasoning_content, simReasoning(messages));
  assert.equal(r.usage.prompt_tokens, u.prompt_tokens);
  assert.equal(r.usage.completion_tokens, u.completion_tokens);
  assert.equal(r.usage.completion_tokens_details?.reasoning_tokens, u.reasoning_tokens);
  stack.record('sim-reasoner', { prompt: u.prompt_tokens, completion: u.completion_tokens, reasoning: u.reasoning_tokens });

  const stream = await client.chat.completions.create({ model: 'sim-reasoner', messages, stream: true, stream_options: { include_usage: true } });
  let reasoning = '', text = '', usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) { reasoning += c.delta?.reasoning_content ?? ''; text += c.delta?.content ?? ''; }
  }
  assert.equal(reasoning, simReasoning(messages));
  assert.equal(text, simReply(messages));
  assert.equal(usage.completion_tokens, u.completion_tokens);
  assert.equal(usage.completion_tokens_details?.reasoning_tokens, u.reasoning_tokens);
  stack.record('sim-reasoner', { prompt: u.prompt_tokens, completion: u.completion_tokens, reasoning: u.reasoning_tokens });
});

test('unknown model -> NotFoundError (404, model_not_found)', T, async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [user('hi')] }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError, `got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
});

test('malformed request (messages not an array) -> BadRequestError (400, invalid_request_error)', T, async () => {
  await assert.rejects(client.chat.completions.create({ model: 'sim-large', messages: 'hello' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
});

test('upstream 429 -> RateLimitError with maxRetries 0; Retry-After reaches the client', T, async () => {
  let err;
  try {
    await client.chat.completions.create({ model: 'sim-large', messages: [user('rate limit me @sim:status=429 @sim:retry_after=0')] });
  } catch (e) { err = e; }
  assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 429);
  assert.equal(err.headers?.get('retry-after'), '0', 'Retry-After passed through');
});

test('upstream 429 once (@sim:fail_times=1) with default retries: the SDK retries and succeeds', T, async () => {
  const c2 = new OpenAI({ baseURL: stack.baseURL, apiKey: 'anything', timeout: 15000 }); // default maxRetries (2)
  const text = `retry me please ${Date.now()} @sim:fail_times=1 @sim:status=429 @sim:retry_after=0`;
  const messages = [user(text)];
  const r = await c2.chat.completions.create({ model: 'sim-large', messages });
  assert.equal(r.choices[0].message.content, simReply(messages));
});

test('provider at a closed port -> InternalServerError with status 502', T, async () => {
  await assert.rejects(client.chat.completions.create({ model: 'dead', messages: [user('anyone there?')] }), (e) => {
    assert.ok(e instanceof OpenAI.InternalServerError, `got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 502);
    return true;
  });
});

test('mid-stream error (@sim:error_after=2): the SDK stream iteration throws after the first chunks', T, async () => {
  const stream = await client.chat.completions.create({
    model: 'sim-large', messages: [user('start then fail @sim:error_after=2')], stream: true,
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  }, (e) => {
    assert.ok(e instanceof OpenAI.APIError, `got ${e.constructor.name}: ${e.message}`);
    return true;
  });
  assert.ok(text.length > 0, 'content chunks before the error reached the client');
});

test('upstream reset mid-stream (@sim:reset_after=2): the SDK stream iteration throws (error event), no hang', T, async () => {
  const stream = await client.chat.completions.create({
    model: 'sim-large', messages: [user('start then reset @sim:reset_after=2')], stream: true,
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  }, (e) => {
    assert.ok(e instanceof OpenAI.APIError, `got ${e.constructor.name}: ${e.message}`);
    return true;
  });
  assert.ok(text.length > 0, 'content chunks before the reset reached the client');
});

test('GET /health is 200 JSON and GET /metrics is Prometheus text', T, async () => {
  const h = await fetch(`${stack.url}/health`, { signal: AbortSignal.timeout(5000) });
  assert.equal(h.status, 200);
  assert.match(h.headers.get('content-type') ?? '', /^application\/json/);
  const hb = await h.json();
  assert.equal(typeof hb, 'object');
  const m = await fetch(`${stack.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await m.text();
  assert.match(text, /^# (HELP|TYPE) /m, 'Prometheus HELP/TYPE lines');
  assert.match(text, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [0-9.eE+-]+$/m, 'at least one sample line');
});

test('SIGTERM: sluice drains and exits 0, no sanitizer report', { timeout: 20000 }, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.killed, false, `sluice serve did not exit within 10 s${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], `sanitizer reports${stack.stderrTail()}`);
  assert.equal(r.serve.signal, null, `killed by ${r.serve.signal}${stack.stderrTail()}`);
  assert.equal(r.serve.code, 0, `exit code ${r.serve.code}${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.sim.stderr()), [], `sanitizer reports in sim${stack.stderrTail()}`);
  assert.equal(r.sim.code, 0, `sim exit code ${r.sim.code} signal ${r.sim.signal}${stack.stderrTail()}`);
});

test('sluice usage --format json: exact request and token totals per model', { timeout: 20000 }, async () => {
  const r = await runSluice(['usage', '--store', stack.storeUrl, '--format', 'json']);
  assert.equal(r.code, 0, `sluice usage failed: ${r.stderr}`);
  const rows = JSON.parse(r.stdout);
  assert.ok(Array.isArray(rows), r.stdout);
  const by = new Map(rows.map((x) => [x.model, x]));
  for (const model of ['sim-small', 'sim-reasoner']) {
    const want = stack.ledger.get(model);
    const row = by.get(model);
    assert.ok(row, `no ledger row for ${model}: ${r.stdout}`);
    assert.deepEqual(
      { requests: row.requests, prompt_tokens: row.prompt_tokens, completion_tokens: row.completion_tokens, reasoning_tokens: row.reasoning_tokens, cached_tokens: row.cached_tokens, errors: row.errors },
      { ...want, errors: 0 }, `${model} totals`);
    assert.ok(!row.estimated, `${model}: usage was reported by the sim, nothing should be estimated (${row.estimated})`);
  }
  // sim-large: a 400, a 429 (errors), a 429 then success, two broken streams
  const large = by.get('sim-large');
  assert.ok(large, `no ledger row for sim-large: ${r.stdout}`);
  assert.ok(large.requests >= 4, `sim-large requests ${large.requests}`);
  assert.ok(large.errors >= 1, `sim-large errors ${large.errors}: the 429s and the broken streams are errors`);
});
