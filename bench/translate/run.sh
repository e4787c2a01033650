#!/usr/bin/env bash
# Translation cost per request, per whole reply and per stream chunk, for each
# client -> upstream direction (see bench/TRANSLATE.md). Builds translate_bench.c against
# build/libsluicecore.a, runs it (ROUNDS rounds, the median round reported), then runs
# one round of each direction under callgrind for instruction counts, and prints one
# markdown table.
#
# Knobs (environment): ROUNDS=5 CPU=1 (pin the timed run; "" = no pinning)
# CALLGRIND=1 (0 = skip) CG_SCALE=10 (callgrind runs 1/CG_SCALE of a round: the counts
# per operation are the same, see TRANSLATE.md; 1 = a whole round, ~5 min)
# CG_JOBS=2 (callgrind processes at once) QUIET_MAX=30 (seconds to wait for a load
# average under 0.5 before timing) BUILD_LIB=1 (0 = use build/libsluicecore.a as it is)
# PROFILE=0 (1 = also print the top functions of each stream profile) KEEP=0
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5}
CPU=${CPU-1}
CALLGRIND=${CALLGRIND:-1}
CG_SCALE=${CG_SCALE:-10}
CG_JOBS=${CG_JOBS:-2}
QUIET_MAX=${QUIET_MAX:-30}
BUILD_LIB=${BUILD_LIB:-1}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}
DIRS="oa-oa oa-an oa-ge an-oa an-an"

log() { printf '[translate %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d /tmp/sluice-translate.XXXXXX)
cleanup() { [ "$KEEP" = 1 ] && log "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT

cd "$ROOT"
if [ "$BUILD_LIB" = 1 ]; then
    log "make build (RelWithDebInfo library)"
    make build >"$WORK/make.log" 2>&1 || { tail -20 "$WORK/make.log"; die "make build failed"; }
fi
[ -f build/libsluicecore.a ] || die "build/libsluicecore.a is missing: run make build"
BIN=$WORK/translate_bench
# shellcheck disable=SC2046
cc -O2 -g -Wall -Isrc bench/translate/translate_bench.c build/libsluicecore.a \
    $(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl) \
    -lm -lpthread -o "$BIN" || die "cannot build translate_bench"
"$BIN" --data bench/translate/data --dump >"$WORK/dump.txt" || die "a direction failed (see --dump)"
grep -q FAILED "$WORK/dump.txt" && die "a direction failed: $(grep -B1 FAILED "$WORK/dump.txt")"

# Wait (a while) for a quiet machine: the VM has 2 cores and other benchmarks share it.
waited=0
while [ "$waited" -lt "$QUIET_MAX" ]; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$load" 'BEGIN { exit !(l < 0.5) }' && break
    [ "$waited" = 0 ] && log "load average $load: waiting up to ${QUIET_MAX}s for a quiet machine"
    sleep 2
    waited=$((waited + 2))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

PIN=()
if [ -n "$CPU" ] && command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
    PIN=(taskset -c "$CPU")
fi
log "timing: $ROUNDS rounds of each direction ${PIN:+(pinned to CPU $CPU)}"
t0=$(date +%s)
"${PIN[@]}" "$BIN" --data bench/translate/data --rounds "$ROUNDS" >"$WORK/time.txt"
log "timing done in $(( $(date +%s) - t0 ))s"

# Callgrind: one process per direction, collection on only inside the measured loops,
# one profile per loop (request, reply, stream).
: >"$WORK/ir.txt"
if [ "$CALLGRIND" = 1 ]; then
    if command -v valgrind >/dev/null; then
        log "callgrind: 1/$CG_SCALE round of each direction, $CG_JOBS at a time"
        t0=$(date +%s)
        mkdir -p "$WORK/cg"
        printf '%s\n' $DIRS | xargs -P "$CG_JOBS" -I{} sh -c \
            'valgrind --tool=callgrind --collect-atstart=no --compress-strings=no --compress-pos=no --callgrind-out-file="$1/cg/{}.%p" \
                 "$2" --data bench/translate/data --rounds 1 --scale "$3" --only {} --no-time \
                 >"$1/cg/{}.log" 2>&1 || { echo "callgrind {} failed" >&2; exit 1; }' \
            _ "$WORK" "$BIN" "$CG_SCALE"
        log "callgrind done in $(( $(date +%s) - t0 ))s"
        for f in "$WORK"/cg/*.*.[0-9]*; do
            what=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
            ir=$(sed -n 's/^totals: //p' "$f")
            [ -n "$what" ] && echo "$what $ir" >>"$WORK/ir.txt"
            if [ "$PROFILE" = 1 ] && [ "${what%%:*}" = stream ]; then
                echo "--- $what: top functions (inclusive Ir) ---" >>"$WORK/profile.txt"
                callgrind_annotate --inclusive=yes "$f" 2>/dev/null |
                    awk '/file:function/ { on = 1; getline; next } on && NF == 0 { exit } on' |
                    grep -v -e "(below main)" -e libc_start -e ":main " -e "loop_stream" -e "one_stream" -e "0x000000000001ab70" | head -14 >>"$WORK/profile.txt"
            fi
        done
    else
        log "valgrind not found: no instruction counts"
    fi
fi

# The table.
MACHINE="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)"
echo
echo "Machine: $MACHINE; load average before timing: $LOAD_BEFORE; $(date -u '+%Y-%m-%d %H:%M UTC')"
grep '^#' "$WORK/time.txt" | sed 's/^# /  /'
echo
awk -v scale="$CG_SCALE" -v irfile="$WORK/ir.txt" '
BEGIN {
    label["oa-oa"] = "1. OpenAI → OpenAI (fast path)"
    label["oa-an"] = "2. OpenAI → Anthropic"
    label["oa-ge"] = "3. OpenAI → Gemini"
    label["an-oa"] = "4. Anthropic → OpenAI"
    label["an-an"] = "5. Anthropic → Anthropic (pass-through)"
    nreq = int(2000 / scale); nrep = int(2000 / scale); nchunk = int(500 / scale) * 200
    while ((getline line < irfile) > 0) {
        split(line, w, " "); split(w[1], k, ":")
        ir[k[1], k[2]] = w[2]
    }
}
/^#/ || /^dir/ { next }
{
    n++; d[n] = $1
    rq[$1] = $2; rq99[$1] = $3; rp[$1] = $4; rp99[$1] = $5
    ch[$1] = $6; ch99[$1] = $7; chm[$1] = $8
}
function irs(part, dir, cnt) { return ((part, dir) in ir) ? ir[part, dir] / cnt : 0 }
function fmt_ir(v) { return v == 0 ? "–" : (v >= 10000 ? sprintf("%.0fk", v / 1000) : sprintf("%.1fk", v / 1000)) }
END {
    print "| direction | request µs (p99) | reply µs (p99) | chunk µs (p99) | chunk µs, whole stream ÷ 200 | Ir / request | Ir / reply | Ir / chunk |"
    print "|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) {
        x = d[i]
        printf "| %s | %.1f (%.0f) | %.1f (%.0f) | %.2f (%.1f) | %.2f | %s | %s | %s |\n", label[x],
            rq[x], rq99[x], rp[x], rp99[x], ch[x], ch99[x], chm[x],
            fmt_ir(irs("request", x, nreq)), fmt_ir(irs("reply", x, nrep)), fmt_ir(irs("stream", x, nchunk))
    }
    print ""
    f = "oa-oa"
    if (!(f in rq)) exit
    print "Relative to the fast path (1), time medians / instruction counts:"
    print ""
    print "| direction | request | reply | chunk |"
    print "|---|---|---|---|"
    for (i = 1; i <= n; i++) {
        x = d[i]
        if (x == f) continue
        printf "| %s | %.1f× / %s | %.1f× / %s | %.1f× / %s |\n", label[x],
            rq[x] / rq[f], ratio(irs("request", x, nreq), irs("request", f, nreq)),
            rp[x] / rp[f], ratio(irs("reply", x, nrep), irs("reply", f, nrep)),
            ch[x] / ch[f], ratio(irs("stream", x, nchunk), irs("stream", f, nchunk))
    }
}
function ratio(a, b) { return (a == 0 || b == 0) ? "–" : sprintf("%.1f×", a / b) }
' "$WORK/time.txt"
if [ "$PROFILE" = 1 ] && [ -f "$WORK/profile.txt" ]; then
    echo
    cat "$WORK/profile.txt"
fi
