// Child processes for the tests: start sluice (serve or sim), wait for its
// "listening on http://HOST:PORT" line, stop it with SIGTERM and collect its exit
// status. Every wait has a timeout; every child is killed when the test process exits.

import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build-asan', 'sluice');

const live = new Set();
process.on('exit', () => { for (const c of live) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { for (const c of live) { try { c.kill('SIGKILL'); } catch { /* gone */ } } process.exit(130); });
}

// Sanitizer findings in a child's stderr (ASan, LSan, UBSan).
export function sanitizerReports(stderr) {
  return stderr.split('\n').filter((l) => /ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)/.test(l));
}

// Starts `sluice ARGS...`; resolves when the listening line appears.
// Returns { child, port, url, stderr(), stdout(), exited (promise of {code, signal}), stop() }.
export async function startSluice(args, { timeoutMs = 20000, env = {}, name = 'sluice' } = {}) {
  if (!existsSync(SLUICE_BIN)) throw new Error(`${SLUICE_BIN} does not exist (build it with make build-asan, or set SLUICE_BIN)`);
  const child = spawn(SLUICE_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1', ...process.env, ...env },
  });
  live.add(child);
  let out = '', err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { live.delete(child); resolve({ code, signal }); }));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name}: no "listening on" line within ${timeoutMs} ms`)), timeoutMs);
    const look = () => {
      const m = /listening on http:\/\/([0-9.]+|\[[0-9a-f:]+\]|localhost):(\d+)/.exec(err + '\n' + out);
      if (m) { clearTimeout(timer); resolve(Number(m[2])); }
    };
    const fail = (e) => {
      clearTimeout(timer);
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${e.message}\n--- ${name} stderr ---\n${err.slice(-4000)}\n--- stdout ---\n${out.slice(-2000)}`));
    };
    child.stdout.on('data', (d) => { out += d; look(); });
    child.stderr.on('data', (d) => { err += d; look(); });
    child.once('error', fail);
    exited.then(({ code, signal }) => fail(new Error(`${name} exited (code ${code}, signal ${signal}) before listening`)));
  });
  const h = {
    child, port, url: `http://127.0.0.1:${port}`,
    stderr: () => err, stdout: () => out, exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    // SIGTERM, then wait; SIGKILL after timeoutMs. Resolves {code, signal, killed}.
    async stop(timeoutMs2 = 10000) {
      if (!h.alive()) return { ...(await exited), killed: false };
      child.kill('SIGTERM');
      let timer;
      const r = await Promise.race([
        exited.then((x) => ({ ...x, killed: false })),
        new Promise((resolve) => { timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } resolve(null); }, timeoutMs2); }),
      ]);
      clearTimeout(timer);
      if (r) return r;
      return { ...(await exited), killed: true };
    },
  };
  return h;
}

// Runs `sluice ARGS...` to completion. Resolves { code, stdout, stderr }.
export function runSluice(args, { timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    execFile(SLUICE_BIN, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ASAN_OPTIONS: 'detect_leaks=1', ...process.env } },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, signal: error?.signal, stdout, stderr }));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value or timeoutMs passes.
export async function waitFor(fn, timeoutMs = 5000, stepMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await sleep(stepMs);
  }
}
