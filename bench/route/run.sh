#!/usr/bin/env bash
# The routing microbenchmark: sl_route_plan with 100 deployments for each strategy, and
# one acquire + observe pair (failover.sh and strategy.sh measure failover time and the
# latency strategy end to end). Builds the core library in BUILD (default build/, as
# `make` does) and links the bench program against it with cc -O2.
# Knobs (environment): BUILD=build CC=cc
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CC=${CC:-cc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target sluicecore -j"$(nproc)" >/dev/null
LIBS=$(pkg-config --libs libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl)
# shellcheck disable=SC2086
"$CC" -O2 -Wall -Wextra -D_GNU_SOURCE -I"$ROOT/src" -o "$T/route_bench" "$HERE/route_bench.c" \
  "$BUILD/libsluicecore.a" $LIBS -lpthread -lm
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
"$T/route_bench"
