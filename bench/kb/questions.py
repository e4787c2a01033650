#!/usr/bin/env python3
"""Questions for `sluice kb eval` derived from document structure: each heading becomes a
question and the passage under it (the chunks whose heading path ends with it, as
`sluice kb chunk` splits the document) is the gold answer, as byte offsets in the
extracted text. Usage: questions.py SLUICE LANG MAX FILE... > questions.jsonl"""
import json
import re
import subprocess
import sys

sluice, lang, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
for path in sys.argv[4:]:
    res = subprocess.run([sluice, "kb", "chunk", path, "--format", "json"], capture_output=True, text=True)
    if res.returncode != 0:
        continue
    spans = {}
    for c in json.loads(res.stdout)["chunks"]:
        h = c["heading"]
        if " > " not in h:  # the document title: too broad to be a question
            continue
        lo, hi = spans.get(h, (c["start"], c["end"]))
        spans[h] = (min(lo, c["start"]), max(hi, c["end"]))
    for h, (lo, hi) in spans.items():
        title = re.sub(r"^[\d.\s\u00a0]+", "", h.split(" > ")[-1]).replace("\u00a0", " ").strip(" ¶#")
        if len(title) < 3:
            continue
        q = f"{title}是怎样的？" if lang == "zh" else f"What does the documentation say about {title}?"
        out.append({"question": q, "document": path, "byte_start": lo, "byte_end": hi})
step = max(1, len(out) // most) if most else 1
for q in out[::step][: most or None]:
    print(json.dumps(q, ensure_ascii=False))
