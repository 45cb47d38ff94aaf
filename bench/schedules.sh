#!/usr/bin/env bash
# Schedule lag: N schedules of 1 s (default 200) on one `valbox serve`
# (embedded store, in-process queue, 2 job workers) for S seconds (default
# 20); each run logs `Date.now() - scheduledAt`, read back from the
# evaluation records. Prints p50/p99/max lag, runs per schedule and
# missed or doubled ticks. Usage: bench/schedules.sh [schedules] [seconds]
# (numbers go to docs/perf.md).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200}
seconds=${2:-20}
cargo build --release --bin valbox >/dev/null
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
base=http://127.0.0.1:18195
VALBOX_DATA_DIR=$data VALBOX_ADMIN_KEY=bench target/release/valbox serve --listen 127.0.0.1:18195 \
  --min-schedule-interval 1s 2>/dev/null &
for _ in $(seq 100); do curl -sf $base/healthz >/dev/null && break; sleep 0.1; done
key=$(curl -sf -X POST $base/v1/users -H 'Authorization: Bearer bench' \
  -d '{"handle":"bench","email":"bench@example.com"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
code='export default (i) => { console.log(JSON.stringify({at: i.scheduledAt.getTime(), lag: Date.now() - i.scheduledAt.getTime()})) }'
for n in $(seq 1 "$count"); do
  curl -sf -X PUT "$base/v1/vals/tick$n" -H "Authorization: Bearer $key" \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"code": sys.argv[1], "schedule": {"every": "1s"}}))' "$code")" >/dev/null
done
sleep "$seconds"
for n in $(seq 1 "$count"); do
  curl -sf -X PATCH "$base/v1/vals/tick$n" -H "Authorization: Bearer $key" -d '{"paused": true}' >/dev/null
done
sleep 2
BASE=$base KEY=$key COUNT=$count python3 - <<'PY'
import json, os, urllib.request
base, key = os.environ["BASE"], os.environ["KEY"]
runs, before = {}, ""
while True:
    req = urllib.request.Request(f"{base}/v1/evaluations?limit=100{before}", headers={"Authorization": f"Bearer {key}"})
    page = json.load(urllib.request.urlopen(req))["evaluations"]
    for e in page:
        logs = e["record"]["logs"]
        if logs:
            runs.setdefault(e["record"]["target"].split("@")[1], []).append(json.loads(logs[0]["message"]))
    if len(page) < 100:
        break
    before = f"&before={page[-1]['id']}"
lags = sorted(r["lag"] for rs in runs.values() for r in rs)
doubled = sum(len(rs) - len({r["at"] for r in rs}) for rs in runs.values())
gaps = sum(1 for rs in runs.values() for a, b in zip(sorted(r["at"] for r in rs), sorted(r["at"] for r in rs)[1:]) if b - a != 1000)
print(f"{len(runs)} schedules, {len(lags)} runs ({len(lags) / max(len(runs), 1):.1f} per schedule)")
print(f"lag p50 {lags[len(lags) // 2]} ms, p99 {lags[len(lags) * 99 // 100]} ms, max {lags[-1]} ms")
print(f"ticks run twice: {doubled}; gaps between consecutive runs other than 1 s: {gaps}")
PY
