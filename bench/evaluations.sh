#!/usr/bin/env bash
# `GET /v1/evaluations` at scale (issue 16): fills the evaluations table of
# an embedded store with ROWS records (default 10,000,000) spread over 1,000
# users (10,000 each: what the default retention keeps per user), written
# straight into the SQLite file, then measures the list's first page, a
# page deep in the user's records (`before=`), and a `request_id` lookup
# under wrk (2 threads, 8 connections, 8 s each).
# Usage: bench/evaluations.sh [rows]   (numbers go to docs/perf.md)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000000}
cargo build --release --bin valbox >/dev/null
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
port=18197
base=http://127.0.0.1:$port
start() {
    VALBOX_DATA_DIR=$data VALBOX_ADMIN_KEY=bench VALBOX_LOG=warn target/release/valbox serve \
        --listen 127.0.0.1:$port --prune-interval-ms 3600000 2>/dev/null &
    for _ in $(seq 300); do curl -sf $base/readyz >/dev/null && return; sleep 0.1; done
    exit 1
}
start
key=$(curl -sf -X POST $base/v1/users -H 'Authorization: Bearer bench' \
    -d '{"handle":"bench","email":"bench@example.com"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
kill %1; wait %1 2>/dev/null || true
echo "filling $rows records..."
time DB="$data/valbox.db" ROWS=$rows python3 - <<'PY'
import os, sqlite3, time
db = sqlite3.connect(os.environ["DB"])
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
rows, users = int(os.environ["ROWS"]), 1000
record = '{"target":"@bench.add@1","principal":"bench","author":"bench","mode":"api","depth":0,"ok":true,"error":null,"duration_us":40,"logs":[],"calls":[],"visible_to":"%s","redacted":false}'
now = int(time.time())
batch = []
for n in range(rows):
    viewer = "bench" if n % users == 0 else f"user{n % users}"
    batch.append((viewer, record % viewer, now, f"req-{n}"))
    if len(batch) == 100_000:
        db.executemany("INSERT INTO evaluations (viewer, record, created_at, request_id) VALUES (?, ?, ?, ?)", batch)
        db.commit()
        batch.clear()
db.executemany("INSERT INTO evaluations (viewer, record, created_at, request_id) VALUES (?, ?, ?, ?)", batch)
db.commit()
print(f"{db.execute('SELECT count(*) FROM evaluations').fetchone()[0]} rows, "
      f"{os.path.getsize(os.environ['DB']) >> 20} MiB")
PY
start
middle=$(curl -sf "$base/v1/evaluations?limit=100" -H "Authorization: Bearer $key" | python3 -c '
import json, sys; page = json.load(sys.stdin)["evaluations"]; print(page[-1]["id"] // 2)')
request=$(curl -sf "$base/v1/evaluations?limit=1&before=$middle" -H "Authorization: Bearer $key" | python3 -c '
import json, sys; print(json.load(sys.stdin)["evaluations"][0]["request_id"])')
for what in "first page:limit=100" "deep page:limit=100&before=$middle" "by request id:request_id=$request"; do
    echo "== ${what%%:*} (?${what#*:})"
    wrk -t2 -c8 -d8s --latency -H "Authorization: Bearer $key" "$base/v1/evaluations?${what#*:}" \
        | grep -E "Requests/sec|  50%|  99%" | tr -s ' ' | paste -sd ' '
done
