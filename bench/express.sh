#!/usr/bin/env bash
# HTTP vals side by side (issue 11): `/v1/express` of a web-standard hello
# handler and of an Express-style one (a fresh sandbox instance per
# request), `/v1/run` of `add`, and workerd's hello worker (one reused
# isolate) when workerd is installed — `npm install workerd` anywhere, then
# WORKERD=/path/to/node_modules/.bin/workerd; skipped when it is not found.
# Usage: bench/express.sh [seconds] [connections]   (numbers go to docs/perf.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
connections=${2:-32}
workerd=${WORKERD:-$(command -v workerd || true)}
cargo build --release --bin valbox >/dev/null
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
VALBOX_DATA_DIR=$data VALBOX_ADMIN_KEY=bench VALBOX_MAX_CONCURRENT_CALLS=$((connections * 2)) VALBOX_MAX_CALLS_PER_USER=$((connections * 2)) \
  target/release/valbox serve --listen 127.0.0.1:18180 2>/dev/null &
for _ in $(seq 100); do curl -sf http://127.0.0.1:18180/healthz >/dev/null && break; sleep 0.1; done
key=$(curl -sf -X POST http://127.0.0.1:18180/v1/users -H 'Authorization: Bearer bench' \
  -d '{"handle":"bench","email":"bench@example.com"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
save() {
  curl -sf -X PUT "http://127.0.0.1:18180/v1/vals/$1" -H "Authorization: Bearer $key" \
    -d "{\"code\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$2"),\"privacy\":\"public\"}" >/dev/null
}
save add 'export function add(a, b) { return a + b }'
save web 'export default (req) => new Response("hello")'
save express 'export default (req, res) => res.send("hello")'
test "$(curl -sf http://127.0.0.1:18180/v1/express/bench.web)" = hello
test "$(curl -sf http://127.0.0.1:18180/v1/express/bench.express)" = hello
run() {
  echo "== $1"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "$2" | grep -E "Requests/sec|50%|99%|Non-2xx"
}
if [ -n "$workerd" ] && [ -x "$workerd" ]; then
  cat >"$data/hello.js" <<'JS'
export default { fetch() { return new Response("hello"); } };
JS
  cat >"$data/hello.capnp" <<'CAPNP'
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .hello)],
  sockets = [(name = "http", address = "127.0.0.1:18183", http = (), service = "main")],
);
const hello :Workerd.Worker = (
  modules = [(name = "hello", esModule = embed "hello.js")],
  compatibilityDate = "2024-09-23",
);
CAPNP
  "$workerd" serve "$data/hello.capnp" >/dev/null 2>&1 &
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18183/ >/dev/null && break; sleep 0.1; done
  run "workerd hello worker (reused isolate)" http://127.0.0.1:18183/
else
  echo "== workerd: not installed (npm install workerd; WORKERD=…/node_modules/.bin/workerd), skipped"
fi
# The web-standard handler last: its calls leave pooled slots that later
# calls of any val must fault back in (docs/perf.md, "HTTP vals").
run "valbox /v1/run/bench.add?args=[1,2]" 'http://127.0.0.1:18180/v1/run/bench.add?args=%5B1,2%5D'
run "valbox /v1/express Express hello (fresh instance per request)" http://127.0.0.1:18180/v1/express/bench.express
run "valbox /v1/express web-standard hello (fresh instance per request)" http://127.0.0.1:18180/v1/express/bench.web
run "valbox /v1/run/bench.add?args=[1,2] again, after the web-standard handler" 'http://127.0.0.1:18180/v1/run/bench.add?args=%5B1,2%5D'
