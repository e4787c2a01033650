#!/usr/bin/env bash
# Budgets, rate limits and the ledger: admit+settle latency over 10,000 keys from 1-8
# threads, ledger rows per second through the writer thread, and report time over
# ROWS (default 10 million) ledger rows. Builds the core library in BUILD (default
# build/, as `make` does) and links the bench program against it with cc -O2.
# Knobs (environment): BUILD=build CC=cc ROWS=10000000 DIR=(a temp dir; ~3 GB at 10M rows)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CC=${CC:-cc}
ROWS=${ROWS:-10000000}
T=$(mktemp -d)
DIR=${DIR:-$T}
trap 'rm -rf "$T"' EXIT

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target sluicecore -j"$(nproc)" >/dev/null
LIBS=$(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl hiredis)
# shellcheck disable=SC2086
"$CC" -O2 -Wall -Wextra -D_GNU_SOURCE -I"$ROOT/src" -o "$T/govern_bench" "$HERE/govern_bench.c" \
  "$BUILD/libsluicecore.a" $LIBS -lpthread -lm
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU"
"$T/govern_bench" "$DIR" "$ROWS"
