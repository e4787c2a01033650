// The Vercel AI SDK (`ai` + @ai-sdk/openai-compatible) against sluice in front of `sluice sim`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { startStack, simReply, simUsage, sanitizerReports } from './harness.mjs';

let stack, provider;
const T = { timeout: 20000 };

before(async () => {
  stack = await startStack();
  provider = createOpenAICompatible({ baseURL: stack.baseURL, name: 'sluice', apiKey: 'anything', includeUsage: true });
});
after(async () => { if (stack) await stack.cleanup(); });

test('generateText: exact text and usage', T, async () => {
  const prompt = 'Hello from the AI SDK';
  const msgs = [{ role: 'user', content: prompt }];
  const r = await generateText({ model: provider('sim-small'), prompt, maxRetries: 0, abortSignal: AbortSignal.timeout(15000) });
  const u = simUsage(msgs);
  assert.equal(r.text, simReply(msgs));
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.inputTokens, u.prompt_tokens);
  assert.equal(r.usage.outputTokens, u.completion_tokens);
  assert.equal(r.usage.totalTokens, u.total_tokens);
});

test('streamText: assembled text and usage', T, async () => {
  const msgs = [{ role: 'system', content: 'You answer briefly.' }, { role: 'user', content: 'Stream from the AI SDK please' }];
  let streamError;
  const r = streamText({ model: provider('sim-small'), messages: msgs, maxRetries: 0, abortSignal: AbortSignal.timeout(15000), onError: ({ error }) => { streamError = error; } });
  let text = '', parts = 0;
  for await (const t of r.textStream) { text += t; parts++; }
  assert.equal(streamError, undefined, `stream error: ${streamError}`);
  const u = simUsage(msgs);
  assert.ok(parts > 2, `only ${parts} text parts`);
  assert.equal(text, simReply(msgs));
  const usage = await r.usage;
  assert.equal(usage.inputTokens, u.prompt_tokens);
  assert.equal(usage.outputTokens, u.completion_tokens);
  assert.equal(await r.finishReason, 'stop');
});

test('generateText against an unknown model rejects with status 404', T, async () => {
  await assert.rejects(generateText({ model: provider('no-such-model'), prompt: 'hi', maxRetries: 0 }), (e) => {
    assert.equal(e.statusCode, 404, `${e.name}: ${e.message}`);
    return true;
  });
});

test('SIGTERM: sluice exits 0, no sanitizer report', { timeout: 20000 }, async () => {
  const r = await stack.stop();
  assert.equal(r.serve.killed, false, `did not exit within 10 s${stack.stderrTail()}`);
  assert.deepEqual(sanitizerReports(stack.serve.stderr()), [], `sanitizer reports${stack.stderrTail()}`);
  assert.equal(r.serve.code, 0, `exit code ${r.serve.code} signal ${r.serve.signal}${stack.stderrTail()}`);
});
