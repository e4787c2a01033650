#!/usr/bin/env bash
# Admit + settle latency, memory backend next to the Redis backend (redis_bench.c):
# starts its own redis-server on a free loopback port (no persistence), builds the core
# library in BUILD (default build/) and links the bench against it with cc -O2.
# Knobs (environment): BUILD=build CC=cc PAIRS=20000
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CC=${CC:-cc}
PAIRS=${PAIRS:-20000}
T=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >"$T/redis.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null; rm -rf "$T"' EXIT

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target sluicecore -j2 >/dev/null
LIBS=$(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl hiredis)
# shellcheck disable=SC2086
"$CC" -O2 -Wall -Wextra -D_GNU_SOURCE -I"$ROOT/src" -o "$T/redis_bench" "$HERE/redis_bench.c" \
  "$BUILD/libsluicecore.a" $LIBS -lpthread -lm
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU; $(redis-server --version | cut -d' ' -f1-3)"
"$T/redis_bench" "redis://127.0.0.1:$PORT/0" "$PAIRS"
