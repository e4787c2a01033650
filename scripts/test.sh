#!/usr/bin/env bash
# Runs every test against the given build (default build-asan): cmocka unit tests
# under ctest, the data-driven wire cases and the end-to-end SDK tests, then prints
# one closing line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
export SLUICE_BIN=$PWD/$build/sluice
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log=$(mktemp -d)
passed=0 failed=0

count_tap() { # file -> adds its "# pass N" / "# fail N"
  local p f
  p=$(grep -E '^# pass [0-9]+' "$1" | awk '{s+=$3} END {print s+0}')
  f=$(grep -E '^# fail [0-9]+' "$1" | awk '{s+=$3} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  echo "$2: $p passed, $f failed"
}

echo "== unit tests (ctest)"
(cd "$build" && ctest --output-on-failure -j 2) >"$log/unit.txt" 2>&1
cat "$log/unit.txt" | grep -E "Test +#|tests passed|Failed|\*\*\*" || true
total=$(grep -oE 'out of [0-9]+' "$log/unit.txt" | awk '{print $3}' | tail -1)
fails=$(grep -oE '[0-9]+ tests failed' "$log/unit.txt" | awk '{print $1}' | tail -1)
total=${total:-0}; fails=${fails:-0}
if [ "$total" -eq 0 ]; then echo "unit: no tests ran"; failed=$((failed + 1)); fi
passed=$((passed + total - fails)); failed=$((failed + fails))
[ "$fails" -gt 0 ] && grep -B5 -A40 "Failed\|FAILED" "$log/unit.txt" | head -200

for suite in tests/cases/lib/lib.test.mjs tests/cases/run.test.mjs "tests/e2e/*.test.mjs"; do
  echo "== $suite"
  # shellcheck disable=SC2086
  node --test --test-reporter=tap --test-concurrency=1 $suite >"$log/tap.txt" 2>&1
  rc=$?
  grep -E '^(not ok|ok) ' "$log/tap.txt" | sed 's/^/  /' | head -400
  grep -q '^# pass' "$log/tap.txt" || { echo "$suite: runner failed (rc $rc)"; tail -50 "$log/tap.txt"; failed=$((failed + 1)); continue; }
  count_tap "$log/tap.txt" "$suite"
  if grep -q '^not ok' "$log/tap.txt"; then
    grep -A40 '^not ok\|^    not ok' "$log/tap.txt" | head -300
  fi
done

echo "== fuzz targets (short run; make fuzz runs them longer)"
scripts/fuzz.sh "${FUZZ_SECONDS:-5}" >"$log/fuzz.txt" 2>&1
rc=$?
grep -E '^(ok|not ok) - fuzz' "$log/fuzz.txt" | sed 's/^/  /'
p=$(grep -c '^ok - fuzz' "$log/fuzz.txt"); f=$(grep -c '^not ok - fuzz' "$log/fuzz.txt")
want=$(ls tests/fuzz/fuzz_*.c | wc -l)
missing=$((want - p - f))  # a target that never reported (the script stopped) is a failure
if [ "$missing" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
  echo "fuzz: $((p + f)) of $want targets reported (exit $rc)"; tail -30 "$log/fuzz.txt"
  f=$((f + (missing > 0 ? missing : 1)))
fi
[ "$f" -gt 0 ] && grep -A30 '^not ok - fuzz' "$log/fuzz.txt" | head -80
passed=$((passed + p)); failed=$((failed + f))

rm -rf "$log"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
