// sluice's LangChain-compatible chunking (`sluice kb chunk --type langchain`) against
// @langchain/textsplitters' RecursiveCharacterTextSplitter, run side by side on the same
// inputs with the same length function (code points): the chunks must be the same strings,
// and each chunk's byte offsets must point at that string in the source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { runSluice, sanitizerReports } from './harness.mjs';
import { REPO } from '../cases/lib/proc.mjs';

const codePoints = (t) => [...t].length;

// A small deterministic PRNG so a failure names a reproducible seed.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const WORDS = 'the gateway routes each request to the cheapest healthy deployment and falls back when a provider fails or a budget runs out while streaming tokens'.split(' ');
const ZH = ['甲方应当在收到货物后三十日内付款', '乙方负责安装和调试', '本合同自双方签字之日起生效', '如有争议，双方协商解决',
  '第五条约定的违约金', '知识库', '检索', '重排序', '供应商', '上下文窗口'];

function prose(r, paragraphs) {
  const out = [];
  for (let p = 0; p < paragraphs; p++) {
    const sentences = [];
    for (let s = 0, n = 1 + Math.floor(r() * 6); s < n; s++) {
      const words = [];
      for (let w = 0, m = 3 + Math.floor(r() * 14); w < m; w++) words.push(WORDS[Math.floor(r() * WORDS.length)]);
      sentences.push(words.join(' ') + '.');
    }
    out.push(sentences.join(' '));
  }
  return out.join(r() < 0.5 ? '\n\n' : '\n');
}

function chinese(r, paragraphs) {
  const out = [];
  for (let p = 0; p < paragraphs; p++) {
    let s = '';
    for (let k = 0, n = 1 + Math.floor(r() * 8); k < n; k++) s += ZH[Math.floor(r() * ZH.length)] + (r() < 0.7 ? '。' : '，');
    out.push(r() < 0.3 ? `第${p + 1}条 ${s}` : s);
  }
  return out.join(r() < 0.5 ? '\n\n' : '\n');
}

// Strings dense with separators and with whitespace that JavaScript's trim() removes.
const PIECES = ['\n\n', '\n', ' ', '  ', 'a', 'bc', 'word', '中', '文字', '。', '\t', '\u3000', '\u00a0', '\u2028',
  '\u2003', 'é', '\n\n\n', ' \n', '|', '-', '#', 'x'];
function noise(r, n) {
  let s = 'x';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

function inputs() {
  const list = [];
  for (const f of ['README.md', ...readdirSync(path.join(REPO, 'docs')).map((d) => path.join('docs', d))].slice(0, 6))
    list.push({ name: f, text: readFileSync(path.join(REPO, f), 'utf8') });
  for (let seed = 1; seed <= 8; seed++) {
    const r = rng(seed);
    list.push({ name: `prose-${seed}`, text: prose(r, 2 + seed * 3) });
    list.push({ name: `chinese-${seed}`, text: chinese(r, 2 + seed * 2) });
    list.push({ name: `noise-${seed}`, text: noise(r, 40 + seed * 60) });
  }
  list.push({ name: 'no-separators', text: 'abcdefghij'.repeat(30) });
  list.push({ name: 'only-spaces', text: 'x' + ' '.repeat(50) + 'y' });
  list.push({ name: 'mixed', text: '# Title\n\nSome text.\n\n## Part\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n中文段落。第二句！\n' });
  return list;
}

const COMBOS = [[1, 0], [2, 1], [5, 0], [10, 3], [37, 9], [100, 20], [300, 50], [1000, 200]];

test('kb chunk --type langchain matches @langchain/textsplitters chunk for chunk', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-kbchunk-'));
  let compared = 0, chunks = 0;
  try {
    for (const { name, text } of inputs()) {
      const file = path.join(dir, 'input.txt');
      writeFileSync(file, text);
      const bytes = Buffer.from(text, 'utf8');
      for (const [size, overlap] of COMBOS) {
        const splitter = new RecursiveCharacterTextSplitter({ chunkSize: size, chunkOverlap: overlap, lengthFunction: codePoints });
        const origWarn = console.warn;
        console.warn = () => {}; // LangChain warns about the oversized chunks it emits
        let want;
        try { want = await splitter.splitText(text); } finally { console.warn = origWarn; }
        const r = await runSluice(['kb', 'chunk', file, '--type', 'langchain', '--size', String(size),
          '--overlap', String(overlap), '--format', 'json']);
        assert.equal(r.code, 0, `${name} ${size}/${overlap}: exit ${r.code}: ${r.stderr}`);
        assert.deepEqual(sanitizerReports(r.stderr), []);
        const got = JSON.parse(r.stdout);
        assert.equal(got.unit, 'chars');
        const texts = got.chunks.map((c) => c.text);
        assert.deepEqual(texts, want, `${name} size ${size} overlap ${overlap}`);
        for (const c of got.chunks) {
          assert.equal(bytes.subarray(c.start, c.end).toString('utf8'), c.text, `${name}: offsets of a chunk`);
          assert.equal(c.size, codePoints(c.text));
        }
        compared++;
        chunks += want.length;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(compared >= 200, `compared ${compared} runs`);
  assert.ok(chunks > 5000, `compared ${chunks} chunks`);
});

test('kb chunk: a contract by clauses with heading paths, and clear errors', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-kbchunk-'));
  try {
    let text = '服务合同\n\n第一章 总则\n\n';
    for (let k = 1; k <= 30; k++) {
      text += `第${k}条 `;
      for (let s = 0; s < 1 + (k * 7) % 25; s++) text += '甲方应按第五条约定的方式付款，乙方应及时开具发票。';
      text += '\n\n';
    }
    const file = path.join(dir, '合同.txt');
    writeFileSync(file, text);
    const r = await runSluice(['kb', 'chunk', file, '--format', 'json', '--size', '300', '--overlap', '30']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sanitizerReports(r.stderr), []);
    const got = JSON.parse(r.stdout);
    assert.equal(got.profile, 'contract'); // auto
    assert.ok(got.chunks.length > 10);
    const bytes = Buffer.from(text);
    for (const c of got.chunks) {
      assert.ok(c.size <= 300, `size ${c.size}`);
      assert.ok(!/^[。！？；，]/.test(c.text));
      assert.ok(!c.heading.includes('第五条'), c.heading);
      assert.match(c.heading, /^第一章 总则( > 第\d+条)?$/);
      if (c.text.startsWith('第')) assert.ok(c.heading.endsWith(c.text.match(/^第\d+条/)[0]));
      assert.ok(bytes.subarray(c.start, c.end).toString().startsWith(c.text.slice(0, 10)));
    }
    const missing = await runSluice(['kb', 'chunk', path.join(dir, 'nope.pdf')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.pdf: No such file/);
    const corrupt = path.join(dir, 'bad.pdf');
    writeFileSync(corrupt, '%PDF-1.4\nnot really');
    const bad = await runSluice(['kb', 'chunk', corrupt]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.pdf: .*PDF/);
    const usage = await runSluice(['kb', 'chunk', file, '--type', 'nope']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown --type nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
