#!/usr/bin/env bash
# Installs what sluice needs to build and test, only when it is missing.
#   scripts/deps.sh          Debian packages for building and running
#   scripts/deps.sh --e2e    also the test tools and the npm packages of tests/e2e
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(cmake make gcc pkg-config libevent-dev libcurl4-openssl-dev libcjson-dev
      libfyaml-dev libsqlite3-dev libssl-dev sqlite3)
pkgs+=(libxml2-dev libpoppler-glib-dev libzip-dev)  # kb document extraction
pkgs+=(libhiredis-dev)  # govern.backend: redis://
if [ "${1:-}" = "--e2e" ]; then
  pkgs+=(libcmocka-dev clang libclang-rt-14-dev nodejs npm curl)
  pkgs+=(python3.11-doc debian-reference-zh-cn)  # kb chunking benchmark corpora
  pkgs+=(redis-server)  # tests/e2e/govern_redis.test.mjs
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # node may come from outside Debian's packages: accept any node >= 20 already on PATH.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    kept=(); for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || kept+=("$p"); done
    missing=("${kept[@]}")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--e2e" ] && [ -f tests/e2e/package-lock.json ]; then
  if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.stamp ]; then
    echo "deps: npm ci in tests/e2e"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp)
  fi
fi
