// examples/savings-demo.sh, the newcomer's look at the savings: simulated gpt-4o and
// claude-sonnet-4-5 traffic, priced from the catalog as those models, then `sluice cost
// report` and `sluice cost whatif`. The figures are recomputed here from the catalog's
// prices and the report's tokens, so a wrong price or a wrong sum fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SLUICE_BIN, sanitizerReports } from './harness.mjs';

const run = promisify(execFile);

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

// USD per million tokens, catalog/prices.yaml
const PRICE = { 'gpt-4o': [2.5, 10], 'claude-sonnet-4-5': [3, 15], 'deepseek-chat': [0.14, 0.28], 'qwen-plus': [0.4, 1.2] };

test('savings demo: the report prices simulated traffic as the named models; whatif shows the saving', { timeout: 120000 }, async () => {
  const env = { ...process.env, SLUICE_BIN, N: '12', SIM_PORT: String(await freePort()), PORT: String(await freePort()) };
  const { stdout, stderr } = await run(fileURLToPath(new URL('../../examples/savings-demo.sh', import.meta.url)), [], { env, maxBuffer: 1 << 22 });
  assert.deepEqual(sanitizerReports(stderr), []);
  const lines = stdout.split('\n');
  const row = (first) => lines.find((l) => l.split(/\s+/)[0] === first)?.trim().split(/\s+/);
  // report by model: MODEL REQUESTS PROMPT CACHED COMPLETION REASONING COST ...
  const byModel = {};
  for (const m of ['gpt-4o', 'claude-sonnet-4-5']) {
    const r = row(m);
    assert.ok(r, `${m} in the report:\n${stdout}`);
    byModel[m] = { requests: Number(r[1]), prompt: Number(r[2]), completion: Number(r[4]), cost: Number(r[6]) };
    assert.equal(byModel[m].requests, 12);
    const [pin, pout] = PRICE[m];
    const expect = (byModel[m].prompt * pin + byModel[m].completion * pout) / 1e6;
    // each row is rounded half up to a micro-unit: at most 0.5 µ more per request
    assert.ok(byModel[m].cost >= expect - 1e-9 && byModel[m].cost <= expect + 12 * 0.5e-6 + 1e-9,
      `${m}: ${byModel[m].cost} vs ${expect}`);
  }
  // whatif: FROM TO REQUESTS PROMPT COMPLETION BEFORE AFTER SAVING %
  for (const [from, to] of [['gpt-4o', 'deepseek-chat'], ['claude-sonnet-4-5', 'qwen-plus']]) {
    const w = lines.find((l) => l.trim().startsWith(`${from} `) && l.includes(` ${to} `))?.trim().split(/\s+/);
    assert.ok(w, `whatif row ${from}=${to}:\n${stdout}`);
    const [before, after, saving] = [Number(w[5]), Number(w[6]), Number(w[7])];
    assert.equal(before, byModel[from].cost, 'before is the recorded bill');
    const [pin, pout] = PRICE[to];
    assert.ok(Math.abs(after - (byModel[from].prompt * pin + byModel[from].completion * pout) / 1e6) < 2e-6, `${to}: ${after}`);
    assert.ok(Math.abs(saving - (before - after)) < 2e-6);
    assert.ok(saving / before > 0.85, `moving ${from} to ${to} saves most of the bill`);
  }
});
