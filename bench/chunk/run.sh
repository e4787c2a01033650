#!/usr/bin/env bash
# The chunking benchmark: sluice's chunker versus @langchain/textsplitters'
# RecursiveCharacterTextSplitter on the same documents, in one run. Corpora: the Python 3.11
# HTML docs (python3.11-doc), the Debian Reference in Chinese (debian-reference-zh-cn), both
# extracted to text by `sluice kb chunk --format extracted`, and synthetic Chinese contracts.
# Each corpus is one text; both sides chunk it ROUNDS times, the median is reported.
# sluice times only the chunking (`--format stats`), LangChain only splitText().
#
# Knobs (environment): ROUNDS=5 SLUICE=build/sluice KEEP=0 (keep the temp dir)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
ROUNDS=${ROUNDS:-5}
[ -x "$SLUICE" ] || (cd "$ROOT" && make build >/dev/null)
[ -d "$ROOT/tests/e2e/node_modules/@langchain/textsplitters" ] || (cd "$ROOT" && scripts/deps.sh --e2e)
tmp=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT

extract_all() { # out files...
  local out=$1; shift
  for f in "$@"; do "$SLUICE" kb chunk "$f" --format extracted; printf '\n\n'; done > "$out"
}
mapfile -t py < <(find /usr/share/doc/python3.11/html -name '*.html' | sort)
mapfile -t zh < <(find /usr/share/debian-reference -name '*.zh-cn.html' | sort)
[ ${#py[@]} -gt 0 ] || { echo "chunk bench: install python3.11-doc (scripts/deps.sh --e2e)"; exit 1; }
[ ${#zh[@]} -gt 0 ] || { echo "chunk bench: install debian-reference-zh-cn (scripts/deps.sh --e2e)"; exit 1; }
extract_all "$tmp/python-docs.txt" "${py[@]}"
extract_all "$tmp/debian-reference-zh.txt" "${zh[@]}"
node "$HERE/contracts.mjs" 300 > "$tmp/contracts.txt"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPU; load $(cut -d' ' -f1-3 /proc/loadavg)"
node "$HERE/bench.mjs" "$SLUICE" "$ROUNDS" "$tmp/python-docs.txt" "$tmp/debian-reference-zh.txt" "$tmp/contracts.txt"
