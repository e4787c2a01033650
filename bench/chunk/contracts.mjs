// Prints N synthetic Chinese contracts (chapters, clauses, cross-references, a price table),
// deterministic, for the chunking benchmark.
const n = Number(process.argv[2] || 100);
const S = ['甲方应当在收到货物后三十日内支付全部货款。', '乙方负责货物的运输、安装和调试，费用由乙方承担！',
  '双方是否同意延期交付？', '如因不可抗力导致无法履行，受影响的一方应及时通知对方；', '甲方应按第五条约定的方式付款。',
  '本条所称“货物”，是指附件一所列的全部设备和备件。'];
const CN = ['一', '二', '三', '四', '五', '六', '七', '八'];
let seed = 7;
const rnd = (k) => ((seed = (seed * 1103515245 + 12345) >>> 0) % k);
const out = [];
for (let c = 0; c < n; c++) {
  out.push(`设备采购合同（编号 ${c + 1}）\n\n甲方：某某科技有限公司\n乙方：某某设备有限公司\n`);
  let clause = 1;
  for (let ch = 0; ch < 6; ch++) {
    out.push(`第${CN[ch]}章 ${ch % 2 ? '付款与交付' : '总则'}\n`);
    for (let k = 0, m = 2 + rnd(5); k < m; k++, clause++) {
      let body = '';
      for (let s = 0, ns = 1 + rnd(30); s < ns; s++) body += S[rnd(S.length)];
      out.push(`第${clause}条 ${body}\n`);
    }
    if (ch === 2) {
      const rows = ['| 序号 | 货物名称 | 单价（元） |', '| --- | --- | --- |'];
      for (let r = 1; r <= 40; r++) rows.push(`| ${r} | 服务器型号${r} | ${1000 * r} |`);
      out.push(rows.join('\n') + '\n');
    }
  }
}
process.stdout.write(out.join('\n'));
