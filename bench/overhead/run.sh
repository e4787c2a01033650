#!/usr/bin/env bash
# The overhead benchmark (`make bench`): client -> sim, client -> nginx -> sim and
# client -> sluice -> sim, on loopback, in one run, repeated ROUNDS times; prints markdown
# tables of medians. See bench/RESULTS.md for what it measures and a recorded run.
#
# Core layout (2 cores): the proxy (nginx, 1 worker, or sluice, workers: 1) on CPU 0;
# `sluice sim` and the load generator on CPU 1.
#
# Knobs (environment): ROUNDS=5 DUR_CLOSED=3 DUR_OPEN=3 RATES="500 2000" CONNS=64
# STREAMS=60 STREAM_CONNS=4 HOLD=1000 HOLD_SECS=12 WRK=1 QUIET_MAX=8 (seconds to wait
# for a quiet machine before each round) PRIO=normal|rt (rt: SCHED_FIFO, see below)
# KEEP=0 (keep the temp dir) RAW_OUT=FILE (copy of the raw result lines)
# SIM_PORT=18190 NGINX_PORT=18191 SLUICE_PORT=18192 SLUICE=build/sluice
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
ROUNDS=${ROUNDS:-5}
DUR_CLOSED=${DUR_CLOSED:-3}
DUR_OPEN=${DUR_OPEN:-3}
RATES=${RATES:-"500 2000"}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-60}
STREAM_CONNS=${STREAM_CONNS:-4}
HOLD=${HOLD:-1000}
HOLD_SECS=${HOLD_SECS:-12}
WRK=${WRK:-1}
KEEP=${KEEP:-0}
QUIET_MAX=${QUIET_MAX:-8}
PRIO=${PRIO:-normal}
SIM_PORT=${SIM_PORT:-18190}
NGINX_PORT=${NGINX_PORT:-18191}
SLUICE_PORT=${SLUICE_PORT:-18192}
CHUNK_DELAY_MS=5
STREAM_WORDS=20

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$SLUICE" ] || die "$SLUICE not built (make build)"
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-light)"
command -v taskset >/dev/null || die "taskset is missing (util-linux)"
command -v curl >/dev/null || die "curl is missing"

T=$(mktemp -d /tmp/sluice-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- machine and core layout ----
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then PROXY_CPU=0; LOAD_CPU=1; else PROXY_CPU=0; LOAD_CPU=0; fi
CLK_TCK=$(getconf CLK_TCK)
CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((HOLD * 2 + 256)) ] || die "ulimit -n $(ulimit -n) is too low for HOLD=$HOLD"
log "nproc=$NCPU cpu='$CPU_MODEL' kernel=$(uname -r) proxy on CPU $PROXY_CPU, sim + load on CPU $LOAD_CPU"

for p in "$SIM_PORT" "$NGINX_PORT" "$SLUICE_PORT"; do
    # sluice and the sim bind with SO_REUSEPORT/SO_REUSEADDR: a leftover would share the port
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use"; fi
done

# ---- tools ----
cc -O2 -Wall -Wextra -o "$T/loadgen" "$HERE/loadgen.c"
# PRIO=rt runs the sim, the proxies and the load generator SCHED_FIFO, so that other
# processes on a shared machine cannot hold them off the CPU for a scheduler slice (~3 ms).
case $PRIO in
rt) RUN=(chrt -f 10) ;;
normal) RUN=() ;;
*) die "PRIO must be normal or rt" ;;
esac
LG() { "${RUN[@]}" taskset -c "$LOAD_CPU" "$T/loadgen" "$@"; }

wait_http() { # url, deadline 10 s
    for _ in $(seq 100); do
        curl -sf -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# ---- upstream: sluice sim ----
"${RUN[@]}" taskset -c "$LOAD_CPU" "$SLUICE" sim --listen "127.0.0.1:$SIM_PORT" --chunk-delay-ms "$CHUNK_DELAY_MS" \
    --words-per-chunk 1 --quiet >"$T/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
wait_http "http://127.0.0.1:$SIM_PORT/health" || die "sim did not start: $(cat "$T/sim.log")"

# ---- nginx ----
mkdir -p "$T/nginx/logs"
sed -e "s#@PREFIX@#$T/nginx#g" -e "s/@LISTEN_PORT@/$NGINX_PORT/" -e "s/@SIM_PORT@/$SIM_PORT/" \
    "$HERE/nginx.conf" >"$T/nginx/nginx.conf"
"${RUN[@]}" taskset -c "$PROXY_CPU" nginx -c "$T/nginx/nginx.conf" -p "$T/nginx/" >"$T/nginx.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/health" || die "nginx did not start: $(cat "$T/nginx.log" "$T/nginx/nginx-error.log" 2>/dev/null)"

# ---- sluice ----
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
  - name: sim-large
    provider: simup
    model: sim-large
EOF
"${RUN[@]}" taskset -c "$PROXY_CPU" "$SLUICE" serve --config "$T/sluice.yaml" >"$T/sluice.log" 2>&1 &
SLUICE_PID=$!
PIDS+=("$SLUICE_PID")
wait_http "http://127.0.0.1:$SLUICE_PORT/health" || die "sluice did not start: $(cat "$T/sluice.log")"

# ---- process readings ----
pids_of() { # the proxy's processes: nginx = master + its workers
    case $1 in
    nginx) echo "$NGINX_PID"; cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null || true ;;
    sluice) echo "$SLUICE_PID" ;;
    sim) echo "$SIM_PID" ;;
    *) ;;
    esac
}
cpu_ns() { # CPU time of the proxy's processes, all threads (schedstat: exact ns, not ticks)
    local t=0 p f v
    for p in $(pids_of "$1"); do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r v _ <"$f" 2>/dev/null || v=0
            t=$((t + v))
        done
    done
    echo "$t"
}
mem_kb() { # VmRSS or VmHWM of the proxy's processes, summed (kB)
    local t=0 p v
    for p in $(pids_of "$1"); do
        v=$(awk -v k="$2:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
machine_idle_ns() { # idle + iowait of all CPUs (tickless idle time is exact; busy ticks are not)
    awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%.0f\n", ($5 + $6) * 1e9 / hz; exit }' /proc/stat
}
ours_ns() { echo $(($(cpu_ns nginx) + $(cpu_ns sluice) + $(cpu_ns sim))); }
# Waits (at most QUIET_MAX s) until processes other than ours use < 15% of the machine:
# this VM is shared, and a compile or a fuzzer next door moves every figure.
wait_quiet() {
    local i b0 o0 b1 o1 w0 w1 pct=0
    for i in $(seq $((QUIET_MAX * 2))); do
        b0=$(machine_idle_ns); o0=$(ours_ns); w0=$(date +%s%N)
        sleep 0.5
        b1=$(machine_idle_ns); o1=$(ours_ns); w1=$(date +%s%N)
        pct=$(( ((w1 - w0) * NCPU - (b1 - b0) - (o1 - o0)) * 100 / ((w1 - w0) * NCPU) ))
        [ "$pct" -lt 15 ] && return 0
    done
    log "machine still busy with other processes (${pct}% of the CPUs); going on"
}
port_of() { case $1 in direct) echo "$SIM_PORT" ;; nginx) echo "$NGINX_PORT" ;; sluice) echo "$SLUICE_PORT" ;; esac; }

RES=$T/results.txt
: >"$RES"
sleep 1
for p in nginx sluice; do
    echo "mem path=$p phase=idle rss_kb=$(mem_kb $p VmRSS) hwm_kb=$(mem_kb $p VmHWM)" >>"$RES"
done

# Runs one load test on one path and records its line with the proxy's CPU time.
measure() { # round path test loadgen-args...
    local round=$1 path=$2 test=$3
    shift 3
    local t0 t1 out b0 b1 o0 o1 w0 w1 lg foreign
    t0=$(cpu_ns "$path"); b0=$(machine_idle_ns); o0=$(ours_ns); w0=$(date +%s%N)
    out=$(LG "$@" --port "$(port_of "$path")") || out="error=loadgen_failed"
    t1=$(cpu_ns "$path"); b1=$(machine_idle_ns); o1=$(ours_ns); w1=$(date +%s%N)
    lg=$(echo "$out" | grep -oE 'self_cpu_us=[0-9]+' | cut -d= -f2)
    # CPU used by other processes (and the kernel's softirq work) during the test,
    # in % of the whole machine: not idle, minus our processes
    foreign=$(( ((w1 - w0) * NCPU - (b1 - b0) - (o1 - o0) - ${lg:-0} * 1000) * 100 / ((w1 - w0) * NCPU) ))
    [ "$foreign" -lt 0 ] && foreign=0
    echo "round=$round path=$path test=$test cpu_ns=$((t1 - t0)) foreign_pct=$foreign $out" >>"$RES"
    log "r$round $path $test: $(echo "$out" | grep -oE '(rps|achieved_rps|lat_p50|lat_p99|delay_p50|delay_p99|errors|non200)=[^ ]+' | tr '\n' ' ')other=${foreign}%"
}

PATHS="direct nginx sluice"
STREAM_MSG="Count for me @sim:words=$STREAM_WORDS @sim:stamp"
log "warm-up"
for path in $PATHS; do
    LG closed --conns "$CONNS" --duration 1 --warmup 0 --port "$(port_of $path)" >/dev/null
    LG stream --count 8 --conns "$STREAM_CONNS" --msg "$STREAM_MSG" --port "$(port_of $path)" >/dev/null
done

START=$(date +%s)
for round in $(seq "$ROUNDS"); do
    wait_quiet
    for path in $PATHS; do
        measure "$round" "$path" closed closed --conns "$CONNS" --duration "$DUR_CLOSED" --warmup 1
    done
    for rate in $RATES; do
        for path in $PATHS; do
            measure "$round" "$path" "open$rate" open --rate "$rate" --conns "$CONNS" --duration "$DUR_OPEN" --warmup 1
        done
    done
    for path in $PATHS; do
        measure "$round" "$path" stream stream --count "$STREAMS" --conns "$STREAM_CONNS" \
            --expect "$STREAM_WORDS" --msg "$STREAM_MSG"
    done
done
log "rounds took $(($(date +%s) - START)) s"
for p in nginx sluice; do
    echo "mem path=$p phase=after_load rss_kb=$(mem_kb $p VmRSS) hwm_kb=$(mem_kb $p VmHWM)" >>"$RES"
done

# ---- cross-check with wrk (closed loop, 1 thread, same connections) ----
if [ "$WRK" = 1 ] && command -v wrk >/dev/null; then
    BODY='{"model":"sim-small","temperature":0.2,"max_tokens":64,"user":"bench-overhead","messages":[{"role":"user","content":"You are a concise assistant. Answer in one short paragraph and do not add any preamble. Summarise what an HTTP reverse proxy does, and why keep-alive connections to the upstream matter."}]}'
    cat >"$T/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
EOF
    for path in $PATHS; do
        out=$("${RUN[@]}" taskset -c "$LOAD_CPU" timeout 20 wrk -t1 -c"$CONNS" -d3s -s "$T/post.lua" \
            "http://127.0.0.1:$(port_of $path)/v1/chat/completions" 2>&1 || true)
        rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
        non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
        echo "wrk path=$path rps=${rps:-0} non2xx=${non2xx:-0}" >>"$RES"
        log "wrk $path: ${rps:-?} req/s"
    done
fi

# ---- memory while holding HOLD streams open ----
HOLD_MSG="Hold this stream open @sim:words=400 @sim:delay=50"
for p in sluice nginx; do
    log "holding $HOLD streams through $p for $HOLD_SECS s"
    : >"$T/hold-$p.txt"
    LG hold --conns "$HOLD" --duration "$HOLD_SECS" --msg "$HOLD_MSG" --port "$(port_of $p)" \
        >"$T/hold-$p.txt" 2>&1 &
    HPID=$!
    PIDS+=("$HPID")
    peak=0
    ready=0
    for _ in $(seq $((HOLD_SECS * 4 + 40))); do
        kill -0 "$HPID" 2>/dev/null || break
        grep -q '^ready' "$T/hold-$p.txt" && ready=1
        if [ "$ready" = 1 ]; then
            v=$(mem_kb $p VmRSS)
            [ "$v" -gt "$peak" ] && peak=$v
        fi
        sleep 0.25
    done
    wait "$HPID" 2>/dev/null || true
    summary=$(grep '^mode=hold' "$T/hold-$p.txt" || echo "error=hold_failed")
    readyline=$(grep '^ready' "$T/hold-$p.txt" || echo "ready=none")
    echo "mem path=$p phase=hold rss_kb=$peak hwm_kb=$(mem_kb $p VmHWM) $summary ${readyline/ready /ready_}" >>"$RES"
    sleep 2
    echo "mem path=$p phase=after_hold rss_kb=$(mem_kb $p VmRSS) hwm_kb=$(mem_kb $p VmHWM)" >>"$RES"
done

# ---- report ----
{
    echo
    echo "## sluice overhead benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "machine: nproc=$NCPU, $CPU_MODEL, kernel $(uname -r); nginx $(nginx -v 2>&1 | sed 's/.*\///');" \
        "proxy on CPU $PROXY_CPU, sim + load generator on CPU $LOAD_CPU; scheduling $PRIO; $ROUNDS rounds, medians" \
        "(min-max over rounds in brackets)"
} >"$T/report.md"
awk -v conns="$CONNS" -v rates="$RATES" -v streams="$STREAMS" -v sconns="$STREAM_CONNS" \
    -v hold="$HOLD" -v delay="$CHUNK_DELAY_MS" -f "$HERE/summarize.awk" "$RES" >>"$T/report.md"
cat "$T/report.md"
if [ -n "${RAW_OUT:-}" ]; then cp "$RES" "$RAW_OUT"; fi
