// Starts `sluice sim` and `sluice serve` in front of it for one test file.
//
//   const stack = await startStack();   // stack.baseURL = http://127.0.0.1:PORT/v1
//   ...
//   const r = await stack.stop();       // SIGTERM both, wait; r.serve / r.sim = {code, signal, killed}
//
// The serve config has one provider `sim` (models sim-small, sim-large, sim-reasoner mapped 1:1)
// and a provider `deadp` at a closed local port (model `dead`, for 502). The store is a fresh
// SQLite file in a temp dir (stack.storeUrl). Binary: $SLUICE_BIN or build-asan/sluice.
// `extra(simUrl)` may return more YAML lines: { providers: [...], models: [...] } (each
// line one list entry, e.g. `  - { name: simds, kind: openai, ... }`).
//
// Also here: the sim's reply and usage formulas from docs/sim.md, and a ledger of what
// each test expects `sluice usage` to show.

import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startSluice, runSluice, sanitizerReports, SLUICE_BIN } from '../cases/lib/proc.mjs';

export { SLUICE_BIN, runSluice, sanitizerReports };

export const SIM_MODELS = ['sim-small', 'sim-large', 'sim-reasoner'];

async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

export async function startStack({ simArgs = ['--ttft-ms', '0', '--chunk-delay-ms', '1'], extra = null } = {}) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-'));
  const storeUrl = `sqlite://${path.join(tmp, 'sluice.db')}`;
  let sim, serve;
  try {
    sim = await startSluice(['sim', '--listen', '127.0.0.1:0', ...simArgs], { name: 'sluice sim' });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  try {
    const dead = await closedPort();
    const q = JSON.stringify;
    const more = extra ? extra(sim.url) : {};
    const cfg = [
      'server: { workers: 2 }',
      `store: ${q(storeUrl)}`,
      'upstream: { connect_timeout: 2s, first_byte_timeout: 5s, idle_timeout: 3s, total_timeout: 20s }',
      'sim: false',
      'providers:',
      `  - { name: sim, kind: openai, base_url: ${q(`${sim.url}/v1`)}, api_key: sim-upstream-key }`,
      `  - { name: deadp, kind: openai, base_url: ${q(`http://127.0.0.1:${dead}/v1`)}, api_key: dead-key }`,
      ...(more.providers ?? []),
      'models:',
      ...SIM_MODELS.map((m) => `  - { name: ${m}, provider: sim, model: ${m} }`),
      '  - { name: dead, provider: deadp, model: dead }',
      ...(more.models ?? []),
      '',
    ].join('\n');
    const cfgPath = path.join(tmp, 'sluice.yaml');
    writeFileSync(cfgPath, cfg);
    serve = await startSluice(['serve', '--config', cfgPath, '--listen', '127.0.0.1:0'], { name: 'sluice serve' });
  } catch (e) {
    await sim.stop(3000);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  let stopped = null;
  const stack = {
    tmp, storeUrl, sim, serve,
    url: serve.url,
    baseURL: `${serve.url}/v1`,
    // what the tests expect the ledger to hold, per model
    ledger: new Map(),
    record(model, { prompt = 0, completion = 0, reasoning = 0, cached = 0 } = {}) {
      const t = stack.ledger.get(model) ?? { requests: 0, prompt_tokens: 0, completion_tokens: 0, reasoning_tokens: 0, cached_tokens: 0 };
      t.requests += 1; t.prompt_tokens += prompt; t.completion_tokens += completion;
      t.reasoning_tokens += reasoning; t.cached_tokens += cached;
      stack.ledger.set(model, t);
    },
    stderrTail: () => `\n--- sluice serve stderr ---\n${serve.stderr().slice(-3000)}\n--- sluice sim stderr ---\n${sim.stderr().slice(-1500)}`,
    async stop() {
      if (stopped) return stopped;
      const s = await serve.stop(10000);
      const m = await sim.stop(5000);
      stopped = { serve: s, sim: m };
      return stopped;
    },
    async cleanup() {
      await stack.stop();
      if (!process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
    },
  };
  return stack;
}

// The stack above plus the same sim as an Anthropic-format upstream (provider `sim-anthropic`:
// models claude-sim -> sim-small, claude-sim-reasoner -> sim-reasoner) and as a
// Gemini-format one (provider `sim-gemini`: gemini-sim, gemini-sim-reasoner).
export function startFormatStack(opts = {}) {
  const q = JSON.stringify;
  return startStack({
    ...opts,
    extra: (url) => ({
      providers: [
        `  - { name: sim-anthropic, kind: anthropic, base_url: ${q(url)}, api_key: sim-anthropic-key }`,
        `  - { name: sim-gemini, kind: gemini, base_url: ${q(`${url}/v1beta`)}, api_key: sim-gemini-key }`,
      ],
      models: [
        '  - { name: claude-sim, provider: sim-anthropic, model: sim-small }',
        '  - { name: claude-sim-reasoner, provider: sim-anthropic, model: sim-reasoner }',
        '  - { name: gemini-sim, provider: sim-gemini, model: sim-small }',
        '  - { name: gemini-sim-reasoner, provider: sim-gemini, model: sim-reasoner }',
      ],
    }),
  });
}

// ---- docs/sim.md formulas -----------------------------------------------------------
const words = (s) => (s.trim() === '' ? 0 : s.trim().split(/\s+/).length);

function textOf(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.filter((p) => p.type === 'text').map((p) => p.text).join(' ');
  return '';
}

// The <T> of "This is a simulated reply to: <T>".
export function simTopic(lastUserText) {
  let t = lastUserText.split(/\s+/).filter((w) => w !== '' && !w.startsWith('@sim:')).join(' ');
  const b = Buffer.from(t, 'utf8');
  if (b.length > 200) {
    let n = 200;
    while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
    t = b.subarray(0, n).toString('utf8');
  }
  return t;
}

export function simReply(messages) {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return `This is a simulated reply to: ${simTopic(textOf(last.content))}`;
}

export function simReasoning(messages) {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return `Thinking about: ${simTopic(textOf(last.content))}`;
}

export function simPromptTokens(messages) {
  return messages.reduce((n, m) => n + words(textOf(m.content)) + 3, 0);
}

export function simUsage(messages, { reasoner = false } = {}) {
  const prompt = simPromptTokens(messages);
  const reasoning = reasoner ? words(simReasoning(messages)) : 0;
  const completion = words(simReply(messages)) + reasoning;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, reasoning_tokens: reasoning };
}

export const withTimeout = (ms) => AbortSignal.timeout(ms);
