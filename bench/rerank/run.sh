#!/usr/bin/env bash
# The rerank benchmark: what POST /v1/rerank adds over calling the provider directly, for
# each provider shape (Jina-style, Cohere v2, DashScope native) and for a split request.
# Starts `sluice sim` and `sluice serve` (release build in BUILD, default build/) on free
# ports, runs bench.mjs, stops both. Knobs: BUILD=build REQUESTS=400 DOCS=50
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
T=$(mktemp -d)
trap 'kill $SERVE $SIM 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$T"' EXIT

if [ ! -x "$BUILD/sluice" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" >/dev/null
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SP=$(port); GP=$(port)
"$BUILD/sluice" sim --listen 127.0.0.1:$SP --quiet --latency-ms 0 >"$T/sim.log" 2>&1 & SIM=$!
cat >"$T/sluice.yaml" <<YAML
server: { workers: 1, log_level: warn }
store: sqlite://$T/sluice.db
sim: false
providers:
  - { name: sim, kind: openai, base_url: "http://127.0.0.1:$SP/v1", api_key: k }
  - { name: simco, kind: openai, base_url: "http://127.0.0.1:$SP", rerank: cohere, api_key: k }
  - { name: simds, kind: openai, base_url: "http://127.0.0.1:$SP/v1", rerank: dashscope, api_key: k }
models:
  - { name: rr-jina, provider: sim, model: sim-rerank }
  - { name: rr-co, provider: simco, model: rerank-v3.5 }
  - { name: rr-ds, provider: simds, model: gte-rerank-v2 }
  - { name: rr-ds-10, provider: simds, model: gte-rerank-v2, max_batch: 10 }
YAML
"$BUILD/sluice" serve --config "$T/sluice.yaml" --listen 127.0.0.1:$GP >"$T/serve.log" 2>&1 & SERVE=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$GP/health" >/dev/null && curl -sf "http://127.0.0.1:$SP/health" >/dev/null && break; sleep 0.1; done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU; sluice $(git -C "$ROOT" rev-parse --short HEAD)"
node "$HERE/bench.mjs" "http://127.0.0.1:$SP" "http://127.0.0.1:$GP" "${REQUESTS:-400}" "${DOCS:-50}"

# The CPU time of the request's own work, in-process (bench/rerank/rerank_bench.c).
LIBS=$(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl)
cmake --build "$BUILD" --target sluicecore -j"$(nproc)" >/dev/null
# shellcheck disable=SC2086
cc -O2 -Wall -Wextra -D_GNU_SOURCE -I"$ROOT/src" -o "$T/rerank_bench" "$HERE/rerank_bench.c" \
  "$BUILD/libsluicecore.a" $LIBS -lpthread -lm
echo
"$T/rerank_bench"
