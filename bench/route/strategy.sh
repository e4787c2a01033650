#!/usr/bin/env bash
# Added latency of the `latency` strategy against `fallback`, end to end: one sluice
# (1 worker, CPU 0) in front of one `sluice sim` (CPU 1) with two deployments; the load
# generator of bench/overhead (CPU 1) sends the same non-stream request to the model
# itself (no group), to a fallback group and to a latency group of the same two
# deployments, in alternating rounds, closed loop on one connection, then open loop.
# Knobs (environment): SLUICE=build/sluice ROUNDS=3 DURATION=4 RATE=500 PRIO=rt|normal
# (rt, the default, runs sim, sluice and load generator SCHED_FIFO, as bench/overhead does).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4}
RATE=${RATE:-500}
SIM_PORT=${SIM_PORT:-18461}
PORT=${PORT:-18462}
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
[ -x "$SLUICE" ] || { echo "no $SLUICE: run make build first" >&2; exit 1; }
case ${PRIO:-rt} in rt) RUN=(chrt -f 10) ;; *) RUN=() ;; esac
if [ "$(nproc)" -ge 2 ]; then PROXY_CPU=0; LOAD_CPU=1; else PROXY_CPU=0; LOAD_CPU=0; fi

cc -O2 -Wall -Wextra -o "$T/loadgen" "$ROOT/bench/overhead/loadgen.c"
wait_http() {
    for _ in $(seq 100); do curl -sf -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
    return 1
}
"${RUN[@]}" taskset -c "$LOAD_CPU" "$SLUICE" sim --listen "127.0.0.1:$SIM_PORT" --quiet >"$T/sim.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SIM_PORT/health"
cat >"$T/sluice.yaml" <<YAML
server: { listen: 127.0.0.1:$PORT, workers: 1, log_level: warn }
store: sqlite://$T/sluice.db
sim: false
providers:
  - { name: pa, kind: openai, base_url: http://127.0.0.1:$SIM_PORT/v1, api_key: k }
  - { name: pb, kind: openai, base_url: http://127.0.0.1:$SIM_PORT/v1, api_key: k }
models:
  - { name: a, provider: pa, model: sim-a }
  - { name: b, provider: pb, model: sim-b }
groups:
  - { name: g-fallback, strategy: fallback, deployments: [a, b] }
  - { name: g-latency, strategy: latency, deployments: [a, b] }
YAML
"${RUN[@]}" taskset -c "$PROXY_CPU" "$SLUICE" serve --config "$T/sluice.yaml" >"$T/serve.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/health"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU"
echo "| round | target | mode | req/s | p50 µs | p90 µs | p99 µs |"
echo "|---|---|---|---|---|---|---|"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
for r in $(seq "$ROUNDS"); do
    for target in a g-fallback g-latency; do
        for mode in closed open; do
            if [ "$mode" = closed ]; then
                out=$("${RUN[@]}" taskset -c "$LOAD_CPU" "$T/loadgen" closed --port "$PORT" --conns 1 \
                    --duration "$DURATION" --model "$target")
            else
                out=$("${RUN[@]}" taskset -c "$LOAD_CPU" "$T/loadgen" open --port "$PORT" --rate "$RATE" \
                    --duration "$DURATION" --model "$target")
            fi
            rps=$(field rps "$out")
            [ "$mode" = open ] && rps=$(field achieved_rps "$out")
            [ "$(field non200 "$out")" = 0 ] && [ "$(field errors "$out")" = 0 ] || echo "errors: $out" >&2
            echo "| $r | $target | $mode | $rps | $(field lat_p50 "$out") | $(field lat_p90 "$out") | $(field lat_p99 "$out") |"
        done
    done
done
