#!/usr/bin/env bash
# HTTP benchmark: `/v1/run` of a trivial val (a fresh sandbox per request)
# next to a bare hyper hello-world, both under wrk on loopback in one run.
# Usage: bench/http.sh [seconds] [connections]   (numbers go to docs/perf.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
cargo build --release --bin valbox --example hello >/dev/null
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
VALBOX_DATA_DIR=$data VALBOX_ADMIN_KEY=bench VALBOX_MAX_CONCURRENT_CALLS=$((connections * 2)) VALBOX_MAX_CALLS_PER_USER=$((connections * 2)) \
  target/release/valbox serve --listen 127.0.0.1:18180 2>/dev/null &
target/release/examples/hello 127.0.0.1:18181 &
for _ in $(seq 100); do curl -sf http://127.0.0.1:18180/healthz >/dev/null && break; sleep 0.1; done
key=$(curl -sf -X POST http://127.0.0.1:18180/v1/users -H 'Authorization: Bearer bench' \
  -d '{"handle":"bench","email":"bench@example.com"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
curl -sf -X PUT http://127.0.0.1:18180/v1/vals/add -H "Authorization: Bearer $key" \
  -d '{"code":"export function add(a, b) { return a + b }","privacy":"public"}' >/dev/null
test "$(curl -sf 'http://127.0.0.1:18180/v1/run/bench.add?args=%5B1,2%5D')" = 3
echo "== bare hyper hello-world"
wrk -t2 -c"$connections" -d"${seconds}s" --latency http://127.0.0.1:18181/ | grep -E "Requests/sec|99%|50%"
echo "== valbox /v1/run/bench.add?args=[1,2] (fresh instance per request)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency 'http://127.0.0.1:18180/v1/run/bench.add?args=%5B1,2%5D' | grep -E "Requests/sec|99%|50%|Non-2xx"
