#!/usr/bin/env bash
# Bounded load test: benign /v1/run calls under wrk while hostile clients
# send infinite loops, memory bombs, deep recursion and SSRF attempts.
# Reports benign latency unloaded and loaded, and benign failures.
# Usage: bench/load.sh [seconds] [hostile connections]   (numbers go to docs/perf.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
hostile=${2:-4}
cargo build --release --bin valbox >/dev/null
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
base=http://127.0.0.1:18190
VALBOX_DATA_DIR=$data VALBOX_ADMIN_KEY=load VALBOX_DEADLINE_MS=1000 \
  target/release/valbox serve --listen 127.0.0.1:18190 2>/dev/null &
for _ in $(seq 100); do curl -sf $base/healthz >/dev/null && break; sleep 0.1; done
user() { curl -sf -X POST $base/v1/users -H 'Authorization: Bearer load' \
  -d "{\"handle\":\"$1\",\"email\":\"$1@example.com\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'; }
good=$(user good)
evil=$(user evil)
curl -sf -X PUT $base/v1/vals/add -H "Authorization: Bearer $good" \
  -d '{"code":"export function add(a, b) { return a + b }","privacy":"public"}' >/dev/null
url="$base/v1/run/good.add?args=%5B1,2%5D"
echo "== benign only (${seconds}s)"
wrk -t1 -c4 -d"${seconds}s" --latency "$url" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
# Hostile clients keep their connections open (wrk with bench/hostile.lua),
# so what the attackers cost is the server's work, not process start-ups.
EVIL_KEY=$evil wrk -t1 -c"$hostile" -d"$((seconds + 2))s" -s bench/hostile.lua "$base" > "$data/hostile.txt" &
attackers=$!
sleep 1
echo "== benign with $hostile hostile clients (${seconds}s)"
wrk -t1 -c4 -d"${seconds}s" --latency "$url" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
wait $attackers
echo "== hostile requests (all should fail)"
grep -E "requests in|Non-2xx" "$data/hostile.txt"
