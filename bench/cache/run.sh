#!/usr/bin/env bash
# The cache benchmark. Part 1: cache_bench (in-process: exact key + get, the semantic
# index scan at 100,000 entries on random and on clustered vectors, the latter's recall
# against a float32 scan for CHECKED queries, memory per entry), linked against the core
# library of BUILD (default build/, as `make` builds it). Part 2: exact hits over HTTP: the same
# request through sluice with the cache answering (cache.enabled: always, every request
# after the first a hit) and with the cache off (sluice -> sim), and to the sim itself,
# with bench/overhead's load generator at a fixed rate; latency percentiles in µs.
# Knobs (environment): BUILD=build CC=cc N=100000 DIMS="256 1024" QUERIES=2000 CHECKED=200
# RATE=500 DURATION=5 SIM_PORT=18290 OFF_PORT=18291 HIT_PORT=18292
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CC=${CC:-cc}
N=${N:-100000}
DIMS=${DIMS:-"256 1024"}
QUERIES=${QUERIES:-2000}
CHECKED=${CHECKED:-200}
RATE=${RATE:-500}
DURATION=${DURATION:-5}
SIM_PORT=${SIM_PORT:-18290}
OFF_PORT=${OFF_PORT:-18291}
HIT_PORT=${HIT_PORT:-18292}
T=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j2 >/dev/null
LIBS=$(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl)
# shellcheck disable=SC2086
"$CC" -O2 -Wall -Wextra -D_GNU_SOURCE -I"$ROOT/src" -o "$T/cache_bench" "$HERE/cache_bench.c" \
    "$BUILD/libsluicecore.a" $LIBS -lpthread -lm
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU"
echo
echo "## in-process"
first=1
for d in $DIMS; do
    if [ $first = 1 ]; then "$T/cache_bench" "$N" "$d" "$QUERIES" "$CHECKED"; first=0
    else "$T/cache_bench" "$N" "$d" "$QUERIES" "$CHECKED" | grep -E '^(floor|semantic|clustered)'; fi
done

echo
echo "## exact hits over HTTP (loadgen open, $RATE req/s, ${DURATION}s, µs from the time each request was due)"
cc -O2 -Wall -Wextra -o "$T/loadgen" "$ROOT/bench/overhead/loadgen.c"
wait_http() {
    for _ in $(seq 100); do
        curl -sf -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}
"$BUILD/sluice" sim --listen "127.0.0.1:$SIM_PORT" --quiet >"$T/sim.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SIM_PORT/health"
for mode in off hit; do
    port=$OFF_PORT; enabled=false
    [ $mode = hit ] && { port=$HIT_PORT; enabled=always; }
    cat >"$T/$mode.yaml" <<YAML
server: { listen: "127.0.0.1:$port", workers: 1, log_level: warn }
store: sqlite://$T/$mode.db
sim: false
providers:
  - { name: simup, kind: openai, base_url: "http://127.0.0.1:$SIM_PORT/v1" }
models:
  - { name: sim-small, provider: simup, model: sim-small }
cache: { enabled: $enabled }
YAML
    "$BUILD/sluice" serve --config "$T/$mode.yaml" >"$T/$mode.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/health"
done
for target in "sim:$SIM_PORT" "sluice-cache-off:$OFF_PORT" "sluice-cache-hit:$HIT_PORT"; do
    name=${target%%:*}; port=${target##*:}
    "$T/loadgen" open --port "$port" --rate "$RATE" --duration 1 --warmup 0 >/dev/null
    printf '%-18s %s\n' "$name" "$("$T/loadgen" open --port "$port" --rate "$RATE" --duration "$DURATION" --warmup 1)"
done

echo
echo "## time inside sluice (x-sluice-overhead-ms), 300 sequential requests each"
body='{"model":"sim-small","temperature":0.2,"max_tokens":64,"messages":[{"role":"user","content":"Summarise what an HTTP reverse proxy does."}]}'
for target in "cache-off:$OFF_PORT" "cache-hit:$HIT_PORT"; do
    name=${target%%:*}; port=${target##*:}
    for _ in $(seq 300); do
        curl -s -o /dev/null -D - -H 'content-type: application/json' -d "$body" \
            "http://127.0.0.1:$port/v1/chat/completions" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-sluice-overhead-ms"{print $2*1000}'
    done | sort -n | awk -v n="$name" '{v[NR]=$1} END {printf "%-10s overhead p50 %6.0f us  p99 %6.0f us  max %6.0f us (n=%d)\n", n, v[int(NR*0.5)+1], v[int(NR*0.99)+1], v[NR], NR}'
done
