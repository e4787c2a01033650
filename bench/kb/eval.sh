#!/usr/bin/env bash
# `sluice kb eval` on the Debian corpora: debian-reference-zh-cn (every chapter, Chinese) and
# python3.11-doc (FILES library pages, English), through a running sluice in front of
# `sluice sim` (embeddings sim-small, stage 2 the sim's rerank model, both deterministic and
# offline; the Python pages once more with the strong embedding model sim-large as stage 2).
# The models are priced, so each eval ends with the two-stage saving. Questions come from the
# documents' headings (questions.py).
# Knobs (environment): BUILD=build FILES=40 QUESTIONS=150
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FILES=${FILES:-40}
QUESTIONS=${QUESTIONS:-150}
SL="$BUILD/sluice"
T=$(mktemp -d)
cleanup() { [ -n "${SERVE:-}" ] && kill "$SERVE" 2>/dev/null; [ -n "${SIM:-}" ] && kill "$SIM" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
[ -x "$SL" ] || cmake --build "$BUILD" -j2 >/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SP=$(port); GP=$(port)
"$SL" sim --listen "127.0.0.1:$SP" --ttft-ms 0 --chunk-delay-ms 0 >/dev/null 2>&1 & SIM=$!
cat >"$T/c.yaml" <<YAML
server: { workers: 2, log_level: warn }
store: "sqlite://$T/eval.db"
sim: false
providers:
  - { name: sim, kind: openai, base_url: "http://127.0.0.1:$SP/v1", api_key: k }
# Prices (USD per million tokens) so that the saving is priced: those of a small and a large
# embedding model and a rerank model of the kind the sim stands in for (illustrative).
models:
  - { name: sim-small, provider: sim, model: sim-small, price_in: 0.02, price_out: 0.02 }
  - { name: sim-large, provider: sim, model: sim-large, price_in: 0.13, price_out: 0.13 }
  - { name: sim-rerank, provider: sim, model: sim-rerank, capabilities: [rerank], price_in: 0.05, price_out: 0.05 }
YAML
"$SL" serve --config "$T/c.yaml" --listen "127.0.0.1:$GP" >/dev/null 2>&1 & SERVE=$!
sleep 1
URL="http://127.0.0.1:$GP"

run() { # name lang files... (STAGE2="--rerank sim-rerank" unless set)
  local name=$1 lang=$2; shift 2
  # shellcheck disable=SC2086
  "$SL" kb create "$name" --embed sim-small ${STAGE2:---rerank sim-rerank} --answer sim-small --url "$URL" >/dev/null
  "$SL" kb add "$name" "$@" --url "$URL" | tail -1
  python3 "$HERE/questions.py" "$SL" "$lang" "$QUESTIONS" "$@" >"$T/$name.jsonl"
  "$SL" kb eval "$name" --questions "$T/$name.jsonl" --url "$URL"
}

echo "== debian-reference-zh-cn =="
run debref zh /usr/share/debian-reference/*.zh-cn.html
echo
echo "== python3.11-doc (library, first $FILES pages) =="
# shellcheck disable=SC2046
run pydoc en $(find /usr/share/doc/python3.11/html/library -name '*.html' | sort | head -n "$FILES")
echo
echo "== python3.11-doc (library, first $FILES pages), stage 2 the strong embedding model sim-large =="
# shellcheck disable=SC2046
STAGE2="--strong-embed sim-large" run pydocstrong en $(find /usr/share/doc/python3.11/html/library -name '*.html' | sort | head -n "$FILES")
