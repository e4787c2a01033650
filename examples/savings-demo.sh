#!/usr/bin/env bash
# A one-minute look at the savings: starts `sluice sim` and `sluice serve` with
# examples/savings.yaml, sends simulated gpt-4o and claude-sonnet-4-5 traffic (some of it
# streamed, tagged by feature), stops sluice (the ledger is flushed), then prints
# `sluice cost report` and what the same tokens would have cost on DeepSeek and Qwen
# (`sluice cost whatif`). Run from the repository root after `make build`.
# Knobs: SLUICE_BIN (build/sluice), N requests per model (40), SIM_PORT (4190), PORT (4191).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLUICE_BIN:-build/sluice}
N=${N:-40}
SIM_PORT=${SIM_PORT:-4190}
PORT=${PORT:-4191}
dir=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

wait_up() { # url
    for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "savings-demo: $1 did not come up" >&2
    return 1
}

"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --quiet --ttft-ms 0 --chunk-delay-ms 0 --latency-ms 0 &
pids+=($!)
sed "s|sqlite://./savings.db|sqlite://$dir/savings.db|" examples/savings.yaml >"$dir/savings.yaml"
SIM_URL="http://127.0.0.1:$SIM_PORT" "$BIN" serve --config "$dir/savings.yaml" \
    --listen "127.0.0.1:$PORT" 2>"$dir/serve.log" &
serve=$!
pids+=($serve)
wait_up "http://127.0.0.1:$SIM_PORT/v1/models"
wait_up "http://127.0.0.1:$PORT/health"

words="the contract says payment is due thirty days after delivery and late payment costs interest"
for i in $(seq "$N"); do
    text=$(printf '%s ' $(for _ in $(seq $((i % 7 + 1))); do echo "$words"; done))
    stream=$([ $((i % 3)) -eq 0 ] && echo true || echo false)
    feature=$([ $((i % 2)) -eq 0 ] && echo summarize || echo chat)
    curl -sf "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' \
        -H "x-sluice-tag: feature=$feature" \
        -d "{\"model\":\"gpt-4o\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"Summarise: $text\"}]}" \
        >/dev/null
    curl -sf "http://127.0.0.1:$PORT/v1/messages" -H 'Content-Type: application/json' \
        -H "x-sluice-tag: feature=$feature" \
        -d "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":512,\"messages\":[{\"role\":\"user\",\"content\":\"Explain: $text\"}]}" \
        >/dev/null
done
kill -TERM "$serve"
wait "$serve"

store="sqlite://$dir/savings.db"
echo "== sluice cost report --by model"
"$BIN" cost report --store "$store" --by model
echo
echo "== sluice cost report --by tag"
"$BIN" cost report --store "$store" --by tag
echo
echo "== sluice cost whatif --map 'gpt-4o=deepseek-chat,claude-sonnet-4-5=qwen-plus'"
"$BIN" cost whatif --store "$store" --map 'gpt-4o=deepseek-chat,claude-sonnet-4-5=qwen-plus'
