#!/usr/bin/env bash
# Where sluice's CPU goes on the non-stream path: sluice (workers: 1) on CPU 0 in front of
# `sluice sim` on CPU 1, closed-loop load from bench/overhead/loadgen, and
#   perf record -e cpu-clock (software clock: this VM has no hardware counters)
# on the sluice process; prints the top symbols. With TOOL=callgrind it runs sluice under
# valgrind --tool=callgrind instead (exact instruction counts, ~50x slower) for a short load.
#
#   bench/overhead/profile.sh            # perf, 8 s of load
#   TOOL=callgrind bench/overhead/profile.sh
# Knobs: SECS=8 CONNS=16 STREAM=0 (1: profile 20-chunk streams instead) OUT=dir (keep data)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
TOOL=${TOOL:-perf}
SECS=${SECS:-8}
CONNS=${CONNS:-16}
STREAM=${STREAM:-0}
SIM_PORT=${SIM_PORT:-18290}
SLUICE_PORT=${SLUICE_PORT:-18292}
T=${OUT:-$(mktemp -d /tmp/sluice-prof.XXXXXX)}
mkdir -p "$T"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    [ -n "${OUT:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
for p in "$SIM_PORT" "$SLUICE_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use" >&2; exit 1; fi
done
cc -O2 -o "$T/loadgen" "$HERE/loadgen.c"
wait_http() { for _ in $(seq 300); do curl -sf -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }

taskset -c 1 "$SLUICE" sim --listen "127.0.0.1:$SIM_PORT" --chunk-delay-ms 5 --quiet >"$T/sim.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SIM_PORT/health"
cat >"$T/sluice.yaml" <<EOF
server:
  listen: 127.0.0.1:$SLUICE_PORT
  workers: 1
  log_level: warn
store: sqlite://$T/sluice.db
sim: false
providers:
  - name: simup
    kind: openai
    base_url: http://127.0.0.1:$SIM_PORT/v1
models:
  - name: sim-small
    provider: simup
    model: sim-small
EOF
if [ "$TOOL" = callgrind ]; then
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$T/callgrind.out" \
        "$SLUICE" serve --config "$T/sluice.yaml" >"$T/sluice.log" 2>&1 &
else
    taskset -c 0 "$SLUICE" serve --config "$T/sluice.yaml" >"$T/sluice.log" 2>&1 &
fi
SPID=$!
PIDS+=("$SPID")
wait_http "http://127.0.0.1:$SLUICE_PORT/health"

load() {
    if [ "$STREAM" = 1 ]; then
        taskset -c 1 "$T/loadgen" stream --port "$SLUICE_PORT" --count $((SECS * 40)) --conns 8 \
            --duration "$SECS" --msg "Count for me @sim:words=20 @sim:stamp"
    else
        taskset -c 1 "$T/loadgen" closed --port "$SLUICE_PORT" --conns "$CONNS" --duration "$SECS" --warmup 0
    fi
}
if [ "$TOOL" = callgrind ]; then
    load
    kill -TERM "$SPID"
    for _ in $(seq 300); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    callgrind_annotate --inclusive=no "$T/callgrind.out" 2>/dev/null | head -60
    echo "--- inclusive ---"
    callgrind_annotate --inclusive=yes "$T/callgrind.out" 2>/dev/null | head -70
else
    perf record -e cpu-clock -F 4999 -g -p "$SPID" -o "$T/perf.data" -- sleep "$((SECS + 1))" \
        >"$T/perf.log" 2>&1 &
    PPID_=$!
    sleep 0.5
    load
    wait "$PPID_" || true
    perf report -i "$T/perf.data" --no-children -g none --sort dso,sym --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | grep '%' | head -60
    echo "--- by library ---"
    perf report -i "$T/perf.data" --no-children -g none --sort dso --stdio 2>/dev/null | grep '%' | head -15
fi
