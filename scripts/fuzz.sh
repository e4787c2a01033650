#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz/ with clang (ASan + UBSan) and runs each
# for SECONDS (default 60; make test uses a short run). Seeds come from the wire cases
# and the examples; crashes are written to build-fuzz/crash-<target>-*.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; shift || true
out=build-fuzz
mkdir -p "$out/obj" "$out/corpus"
command -v clang >/dev/null || { echo "fuzz: clang is missing (apt-get install clang)"; exit 1; }
libs="libevent libevent_pthreads libcurl libcjson libfyaml sqlite3 openssl libxml-2.0 poppler-glib libzip hiredis"
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -DSL_VERSION=\"fuzz\" -DSL_GIT=\"fuzz\" -Isrc -fsanitize=address,undefined -fno-sanitize-recover=undefined $(pkg-config --cflags $libs)"
ldlibs="$(pkg-config --libs $libs) -lm -lpthread"

# Objects of every source but the CLI entry point, rebuilt when the source changed.
objs=()
while IFS= read -r src; do
  obj="$out/obj/$(echo "${src#src/}" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find src -name '*.h' -newer "$obj" -print -quit)" ]; then
    clang $cflags -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done < <(find src -name '*.c' ! -path 'src/cli/main.c' | sort)
ar rcs "$out/libsluicefuzz.a" "${objs[@]}"

seed() { # target dir...
  local t=$1; shift
  mkdir -p "$out/corpus/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$out/corpus/$t/$(echo "$f" | tr / _)"; done
  return 0
}
seed fuzz_sse tests/cases/*/upstream_response.sse
seed fuzz_json_members tests/cases/*/client_request.json tests/cases/*/upstream_response.json
seed fuzz_config examples/sluice.yaml
# fuzz_chunk: three leading bytes choose profile/unit, size and overlap (tests/fuzz/fuzz_chunk.c).
mkdir -p "$out/corpus/fuzz_chunk" "$out/corpus/fuzz_extract"
for f in README.md docs/*.md; do
  printf '\x00\x40\x08' | cat - "$f" | head -c 20000 > "$out/corpus/fuzz_chunk/$(basename "$f")"
  printf '\x03' | cat - "$f" | head -c 20000 > "$out/corpus/fuzz_extract/$(basename "$f")"
done
printf '\x00\x20\x04\xe7\xac\xac\xe4\xb8\x80\xe6\x9d\xa1 \xe7\x94\xb2\xe3\x80\x82\n| a | b |\n| --- | --- |\n| 1 | 2 |\n' > "$out/corpus/fuzz_chunk/contract"
printf '\x00<html><body><h1>T</h1><ul><li>a</li></ul><table><tr><td>x</td></tr></table><pre>p</pre></body></html>' > "$out/corpus/fuzz_extract/html"
# fuzz_formats: two leading bytes choose the decoder (see tests/fuzz/fuzz_formats.c).
mkdir -p "$out/corpus/fuzz_formats"
i=0
for f in tests/cases/*/client_request.json tests/cases/*/upstream_response.*; do
  for pick in 0 1 2 3 4; do
    printf "\\x$(printf %02x $pick)\\x$(printf %02x $((i % 3)))" | cat - "$f" > "$out/corpus/fuzz_formats/s$i-$pick"
  done
  i=$((i + 1))
done

# fuzz_rerank: one leading byte chooses the parser (see tests/fuzz/fuzz_rerank.c).
mkdir -p "$out/corpus/fuzz_rerank"
for f in tests/cases/2[23]?-rerank-*/client_request.json tests/cases/2[23]?-rerank-*/upstream_response*.json; do
  for pick in 0 1 2 3 4 5; do
    printf "\\x$(printf %02x $pick)" | cat - "$f" > "$out/corpus/fuzz_rerank/$(echo "$f" | tr / _)-$pick"
  done
done

# fuzz_kb_terms: plain text, Chinese and English.
mkdir -p "$out/corpus/fuzz_kb_terms"
printf '\xe4\xbb\x98\xe6\xac\xbe\xe6\x96\xb9\xe5\xbc\x8f: Net-30 Days, Stra\xc3\x9fe' > "$out/corpus/fuzz_kb_terms/mixed"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls tests/fuzz/fuzz_*.c | xargs -n1 basename | sed 's/\.c$//'))
status=0
for t in "${targets[@]}"; do
  if ! clang $cflags -fsanitize=fuzzer "tests/fuzz/$t.c" "$out/libsluicefuzz.a" $ldlibs -o "$out/$t" \
       >"$out/$t.build.log" 2>&1; then
    echo "not ok - fuzz $t: does not build"; tail -30 "$out/$t.build.log"; status=1
    continue
  fi
  if "$out/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
       -artifact_prefix="$out/crash-$t-" "$out/corpus/$t" >"$out/$t.log" 2>&1; then
    echo "ok - fuzz $t (${secs}s, $(grep -oE 'Done [0-9]+ runs' "$out/$t.log" | awk '{print $2}') runs)"
  else
    echo "not ok - fuzz $t: see $out/$t.log"; tail -30 "$out/$t.log"; status=1
  fi
done
exit $status
