// The official `openai` SDK against sluice routed to `sluice sim` speaking the Anthropic
// Messages and the Gemini generateContent formats: the translation both ways must give the
// exact reply text and usage of docs/sim.md, streamed tool calls and mapped errors.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFormatStack, simReply, simReasoning, simUsage, sanitizerReports } from './harness.mjs';

let stack, client;
const T = { timeout: 20000 };
const words = (s) => (s.trim() === '' ? 0 : s.trim().split(/\s+/).length);

before(async () => {
  stack = await startFormatStack();
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'anything', timeout: 15000, maxRetries: 0 });
});
after(async () => { if (stack) await stack.cleanup(); });

const user = (content) => ({ role: 'user', content });
const WEATHER = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
}];

// Reads a stream: text, reasoning, tool calls assembled by index, finish reason, usage.
async function drain(stream) {
  const out = { text: '', reasoning: '', calls: [], finish: null, usage: null, usageLast: false };
  for await (const chunk of stream) {
    out.usageLast = false;
    for (const c of chunk.choices) {
      if (c.delta?.content) out.text += c.delta.content;
      if (c.delta?.reasoning_content) out.reasoning += c.delta.reasoning_content;
      for (const tc of c.delta?.tool_calls ?? []) {
        const call = (out.calls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.function.name += tc.function.name;
        if (tc.function?.arguments) call.function.arguments += tc.function.arguments;
        if (tc.extra_content) call.extra_content = tc.extra_content; // Gemini thought signatures
      }
      if (c.finish_reason) out.finish = c.finish_reason;
    }
    if (chunk.usage) { out.usage = chunk.usage; out.usageLast = true; }
  }
  return out;
}

for (const [format, model] of [['anthropic', 'claude-sim'], ['gemini', 'gemini-sim']]) {
  test(`${format}: non-stream text and exact usage`, T, async () => {
    const messages = [{ role: 'system', content: 'You are a terse assistant.' }, user(`Hello ${format}, how are you today?`)];
    const r = await client.chat.completions.create({ model, messages });
    const u = simUsage(messages);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, simReply(messages));
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.prompt_tokens, u.prompt_tokens);
    assert.equal(r.usage.completion_tokens, u.completion_tokens);
    assert.equal(r.usage.total_tokens, u.total_tokens);
  });

  test(`${format}: stream with include_usage`, T, async () => {
    const messages = [user(`Stream me a short answer about rivers via ${format}`)];
    const stream = await client.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
    const s = await drain(stream);
    const u = simUsage(messages);
    assert.equal(s.text, simReply(messages));
    assert.equal(s.finish, 'stop');
    assert.ok(s.usageLast, 'the usage chunk comes last');
    assert.equal(s.usage.prompt_tokens, u.prompt_tokens);
    assert.equal(s.usage.completion_tokens, u.completion_tokens);
    assert.equal(s.usage.total_tokens, u.total_tokens);
  });

  test(`${format}: streamed tool call, tool result, text`, T, async () => {
    const first = [user(`What is the weather in Paris? (${format})`)];
    const s = await drain(await client.chat.completions.create({ model, messages: first, tools: WEATHER, stream: true }));
    assert.equal(s.finish, 'tool_calls');
    assert.equal(s.calls.length, 1);
    assert.equal(s.calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(s.calls[0].function.arguments), { city: 'sim' });
    assert.ok(s.calls[0].id, 'the tool call has an id');
    assert.equal(s.text, '');

    const messages = [
      ...first,
      { role: 'assistant', content: null, tool_calls: s.calls },
      { role: 'tool', tool_call_id: s.calls[0].id, content: 'sunny and mild' },
    ];
    const r = await client.chat.completions.create({ model, messages, tools: WEATHER });
    assert.equal(r.choices[0].message.content, 'Tool result received: sunny and mild');
    assert.equal(r.choices[0].finish_reason, 'stop');
    // user words + 3, the assistant turn (no text) 3, the tool result 3 words + 3
    assert.equal(r.usage.prompt_tokens, words(first[0].content) + 3 + 3 + 3 + 3);
    assert.equal(r.usage.completion_tokens, 6);
  });

  test(`${format}: a 429 upstream is a RateLimitError`, T, async () => {
    await assert.rejects(
      client.chat.completions.create({ model, messages: [user(`@sim:status=429 @sim:retry_after=1 slow down ${format}`)] }),
      (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}: ${e?.status} ${e?.message}`);
        assert.equal(e.status, 429);
        return true;
      },
    );
  });

  test(`${format}: reasoner usage counts the reasoning`, T, async () => {
    const messages = [user(`Think about lakes (${format})`)];
    const r = await client.chat.completions.create({ model: `${model}-reasoner`, messages });
    const u = simUsage(messages, { reasoner: true });
    assert.equal(r.choices[0].message.content, simReply(messages));
    assert.equal(r.usage.prompt_tokens, u.prompt_tokens);
    assert.equal(r.usage.completion_tokens, u.completion_tokens);
    if (r.usage.completion_tokens_details?.reasoning_tokens !== undefined)
      assert.equal(r.usage.completion_tokens_details.reasoning_tokens, u.reasoning_tokens);
    if (format === 'anthropic') assert.equal(r.choices[0].message.reasoning_content, simReasoning(messages));
  });
}

test('sluice and the sim exit cleanly, with no sanitizer report', T, async () => {
  const r = await stack.stop();
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], stack.stderrTail());
  assert.deepEqual(sanitizerReports(stack.sim.stderr()), []);
  assert.equal(r.serve.code, 0, stack.stderrTail());
  assert.equal(r.sim.code, 0);
});
