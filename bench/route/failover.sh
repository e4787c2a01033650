#!/usr/bin/env bash
# Time from a provider dying to traffic moving off it (bench/route/failover.mjs), against
# the release build. PRIO=rt (default) runs everything SCHED_FIFO so that other work on a
# shared machine does not hold the load generator or sluice off the CPU.
# Usage: bench/route/failover.sh [kill|fail|hang|hang-hedge|hang-hedge-hc ...]   Knobs: SLUICE=build/sluice PRIO=rt|normal RATE=200
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export SLUICE_BIN=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE_BIN" ] || { echo "no $SLUICE_BIN: run make build first" >&2; exit 1; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
case ${PRIO:-rt} in
rt) exec chrt -f 10 node "$HERE/failover.mjs" "$@" ;;
*) exec node "$HERE/failover.mjs" "$@" ;;
esac
