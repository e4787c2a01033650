#!/usr/bin/env bash
# Knowledge-base benchmarks.
#  1. kb_bench: stage 1 without its embedding call at N chunks x DIM dimensions on one
#     core (taskset), over chunks of real text (the Python docs and the Debian Reference in
#     Chinese, extracted by `sluice kb chunk --format extracted`); store insert and load
#     rates, memory per chunk.
#  2. ingest: `sluice kb add` of a Debian documentation corpus through a running sluice in
#     front of `sluice sim` (extraction, chunking, embeddings over HTTP, SQLite writes).
# Builds the core library in BUILD (default build/, Release) and links the bench with -O2.
# Knobs (environment): BUILD=build CC=cc N=100000 DIM=1024 QUERIES=300 FTS_QUERIES=100
#   EN_DOCS=dir ZH_DOCS=dir CORPUS=dir (ingest) SKIP_INGEST=1
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CC=${CC:-cc}
T=$(mktemp -d)
cleanup() { [ -n "${SERVE:-}" ] && kill "$SERVE" 2>/dev/null; [ -n "${SIM:-}" ] && kill "$SIM" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 >/dev/null
LIBS=$(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl libxml-2.0 poppler-glib libzip)
# shellcheck disable=SC2086
"$CC" -O2 -Wall -Wextra -D_GNU_SOURCE -I"$ROOT/src" -o "$T/kb_bench" "$HERE/kb_bench.c" \
  "$BUILD/libsluicecore.a" $LIBS -lpthread -lm
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# The chunks' text: the Python docs (English) and the Debian Reference (Chinese), extracted.
EN_DOCS=${EN_DOCS:-/usr/share/doc/python3.11/html}
ZH_DOCS=${ZH_DOCS:-/usr/share/debian-reference}
find "$EN_DOCS" -name '*.html' | sort | while read -r f; do "$BUILD/sluice" kb chunk "$f" --format extracted; done >"$T/en.txt"
find "$ZH_DOCS" -name '*.zh-cn.html' | sort | while read -r f; do "$BUILD/sluice" kb chunk "$f" --format extracted; done >"$T/zh.txt"
echo "corpora: $(wc -c <"$T/en.txt") bytes of English from $EN_DOCS, $(wc -c <"$T/zh.txt") of Chinese from $ZH_DOCS"
CORPUS_EN="$T/en.txt" CORPUS_ZH="$T/zh.txt" DB="$T/bench.db" taskset -c 0 "$T/kb_bench"

[ -n "${SKIP_INGEST:-}" ] && exit 0
CORPUS=${CORPUS:-/usr/share/doc/python3.11/html/library}
SL="$BUILD/sluice"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SP=$(port); GP=$(port)
"$SL" sim --listen "127.0.0.1:$SP" --ttft-ms 0 --chunk-delay-ms 0 >/dev/null 2>&1 & SIM=$!
cat >"$T/c.yaml" <<YAML
server: { workers: 2, log_level: warn }
store: "sqlite://$T/ingest.db"
sim: false
providers:
  - { name: sim, kind: openai, base_url: "http://127.0.0.1:$SP/v1", api_key: k }
models:
  - { name: sim-small, provider: sim, model: sim-small }
  - { name: sim-large, provider: sim, model: sim-large }
YAML
"$SL" serve --config "$T/c.yaml" --listen "127.0.0.1:$GP" >/dev/null 2>&1 & SERVE=$!
sleep 1
BYTES=$(find "$CORPUS" -type f \( -name '*.html' -o -name '*.md' -o -name '*.txt' \) -printf '%s\n' | awk '{s+=$1} END {print s}')
"$SL" kb create bench --embed sim-large --answer sim-small --url "http://127.0.0.1:$GP" >/dev/null
START=$(date +%s.%N)
OUT=$("$SL" kb add bench "$CORPUS" --url "http://127.0.0.1:$GP" | tail -1)
END=$(date +%s.%N)
echo
echo "ingest of $CORPUS ($BYTES bytes) with sim-large (1024 dims): $OUT"
awk -v s="$START" -v e="$END" -v b="$BYTES" -v o="$OUT" 'BEGIN {
  split(o, w, " "); for (i = 1; i <= length(w); i++) if (w[i] == "chunks,") c = w[i-1];
  t = e - s; printf "ingest: %.1f s, %.2f MB/s of source, %.0f chunks/s\n", t, b / t / 1e6, c / t }'
START=$(date +%s.%N)
"$SL" kb add bench "$CORPUS" --url "http://127.0.0.1:$GP" | tail -1
END=$(date +%s.%N)
awk -v s="$START" -v e="$END" 'BEGIN { printf "re-add, unchanged: %.2f s\n", e - s }'
