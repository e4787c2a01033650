// Times sluice's chunker (`sluice kb chunk --format stats`) and LangChain's
// RecursiveCharacterTextSplitter on the same files; prints a markdown table of medians.
//   node bench.mjs SLUICE ROUNDS FILE...
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { RecursiveCharacterTextSplitter } = await import(
  path.join(root, 'tests/e2e/node_modules/@langchain/textsplitters/dist/index.js'));
const [sluice, roundsArg, ...files] = process.argv.slice(2);
const rounds = Number(roundsArg);
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const codePoints = (t) => [...t].length;
console.warn = () => {}; // LangChain warns about oversized chunks

async function langchain(text, lengthFunction) {
  const s = new RecursiveCharacterTextSplitter({ chunkSize: 1000, chunkOverlap: 200, lengthFunction });
  await s.splitText(text); // warm-up (JIT)
  const wall = [], cpu = [];
  let chunks = 0;
  for (let i = 0; i < rounds; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    chunks = (await s.splitText(text)).length;
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { chunks, wall: median(wall), cpu: median(cpu) };
}

function sluiceRun(file, args) {
  const wall = [], cpu = [];
  let chunks = 0;
  for (let i = 0; i < rounds; i++) {
    const out = execFileSync(sluice, ['kb', 'chunk', file, '--format', 'stats', '--repeat', '3', ...args]);
    const r = JSON.parse(out);
    chunks = r.chunks;
    wall.push(r.ms);
    cpu.push(r.cpu_ms);
  }
  return { chunks, wall: median(wall), cpu: median(cpu) };
}

const fmt = (x) => x.toFixed(1);
console.log('| corpus | MB | splitter | chunks | wall ms | CPU ms | LangChain (code points) CPU / this CPU |');
console.log('|---|---:|---|---:|---:|---:|---:|');
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const mb = Buffer.byteLength(text) / 1e6;
  const name = path.basename(file, '.txt');
  const lcCp = await langchain(text, codePoints);
  const lcDefault = await langchain(text, undefined);
  const rows = [
    ['LangChain JS, length = code points, 1000/200', lcCp],
    ['LangChain JS, length = UTF-16 units (its default), 1000/200', lcDefault],
    ['sluice --type langchain (code points), 1000/200', sluiceRun(file, ['--type', 'langchain', '--size', '1000', '--overlap', '200'])],
    ['sluice --type auto (profile, tokens)', sluiceRun(file, ['--type', 'auto'])],
    ['sluice --type default --unit chars, 1000/200', sluiceRun(file, ['--type', 'default', '--unit', 'chars', '--size', '1000', '--overlap', '200'])],
  ];
  for (const [label, r] of rows)
    console.log(`| ${name} | ${fmt(mb)} | ${label} | ${r.chunks} | ${fmt(r.wall)} | ${fmt(r.cpu)} | ${(lcCp.cpu / r.cpu).toFixed(1)}x |`);
}
