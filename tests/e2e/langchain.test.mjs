// @langchain/openai ChatOpenAI against sluice in front of `sluice sim`: invoke, stream, bindTools.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { startStack, simReply, simUsage, sanitizerReports } from './harness.mjs';

let stack, model;
const T = { timeout: 20000 };

before(async () => {
  stack = await startStack();
  model = new ChatOpenAI({ model: 'sim-small', apiKey: 'anything', configuration: { baseURL: stack.baseURL }, maxRetries: 0, timeout: 15000 });
});
after(async () => { if (stack) await stack.cleanup(); });

test('ChatOpenAI.invoke: exact text and usage_metadata', T, async () => {
  const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello from LangChain today' }];
  const r = await model.invoke([new SystemMessage('Be brief.'), new HumanMessage('Hello from LangChain today')]);
  const u = simUsage(msgs);
  assert.equal(r.content, simReply(msgs));
  assert.equal(r.usage_metadata?.input_tokens, u.prompt_tokens);
  assert.equal(r.usage_metadata?.output_tokens, u.completion_tokens);
  assert.equal(r.usage_metadata?.total_tokens, u.total_tokens);
});

test('ChatOpenAI.stream: chunks concatenate to the exact text; usage arrives', T, async () => {
  const msgs = [{ role: 'user', content: 'Stream something via LangChain' }];
  const stream = await model.stream([new HumanMessage('Stream something via LangChain')]);
  let full, n = 0;
  for await (const chunk of stream) { full = full ? full.concat(chunk) : chunk; n++; }
  const u = simUsage(msgs);
  assert.ok(n > 2, `only ${n} chunks`);
  assert.equal(full.content, simReply(msgs));
  assert.equal(full.usage_metadata?.input_tokens, u.prompt_tokens);
  assert.equal(full.usage_metadata?.output_tokens, u.completion_tokens);
});

test('ChatOpenAI.bindTools: a tool call with arguments from the schema', T, async () => {
  const withTools = model.bindTools([{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Current weather',
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
    },
  }]);
  const r = await withTools.invoke([new HumanMessage('Weather in Lisbon?')]);
  assert.equal(r.tool_calls?.length, 1, JSON.stringify(r));
  assert.equal(r.tool_calls[0].name, 'get_weather');
  assert.deepEqual(r.tool_calls[0].args, { city: 'sim' });
  assert.equal(r.tool_calls[0].id, 'call_sim_0');
});

test('ChatOpenAI streamed tool call assembles the same call', T, async () => {
  const withTools = model.bindTools([{
    type: 'function',
    function: { name: 'lookup', description: 'Look up', parameters: { type: 'object', properties: { q: { type: 'string' }, n: { type: 'integer' } } } },
  }]);
  let full;
  for await (const chunk of await withTools.stream([new HumanMessage('Look up sluice')])) full = full ? full.concat(chunk) : chunk;
  assert.equal(full.tool_calls?.length, 1, JSON.stringify(full));
  assert.equal(full.tool_calls[0].name, 'lookup');
  assert.deepEqual(full.tool_calls[0].args, { q: 'sim', n: 1 });
});

test('SIGTERM: sluice exits 0, no sanitizer report', { timeout: 20000 }, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.killed, false, `did not exit within 10 s${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], `sanitizer reports${stack.stderrTail()}`);
  assert.equal(r.serve.code, 0, `exit code ${r.serve.code} signal ${r.serve.signal}${stack.stderrTail()}`);
});
