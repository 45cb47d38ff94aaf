#!/usr/bin/env bash
# Scale-out benchmark (issue 13): `/v1/run` of a trivial public val under
# wrk (32 connections) on
#   1. one embedded node (SQLite, in-process queue),
#   2. one node on PostgreSQL (+ Redis),
#   3. two nodes on the same PostgreSQL + Redis, load split over both
#      (two wrk processes of 16 connections, one per node, run together),
# each node pinned to one core with taskset (node 1 on core 0, node 2 on
# core 1) so the two-node ratio measures the design rather than the core
# count; PostgreSQL, Redis and wrk are not pinned. Starts its own
# PostgreSQL cluster and Redis on free ports.
# Usage: bench/scale.sh [seconds]   (numbers go to docs/perf.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
cargo build --release --bin valbox >/dev/null
binary=$(pwd)/target/release/valbox
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d)
chmod 755 "$work"
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    as_postgres "$pg_bin/pg_ctl" stop -m immediate -D "$work/pg/data" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
wait_ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done; exit 1; }

pg_port=$(free_port)
mkdir -p "$work/pg"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$work/pg"
as_postgres "$pg_bin/initdb" -A trust -U valbox -D "$work/pg/data" >/dev/null
as_postgres "$pg_bin/pg_ctl" start -w -D "$work/pg/data" -l "$work/pg/log" \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
redis_port=$(free_port)
redis-server --port "$redis_port" --save "" --appendonly no >/dev/null 2>&1 &
database="postgres://valbox@127.0.0.1:$pg_port/postgres"
master=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# node CORE PORT DATA [extra env...]: starts `valbox serve` pinned to CORE.
node() {
    local core=$1 port=$2 data=$3
    shift 3
    env VALBOX_DATA_DIR="$data" VALBOX_ADMIN_KEY=bench VALBOX_MASTER_KEY="$master" \
        VALBOX_MAX_CONCURRENT_CALLS=128 VALBOX_MAX_CALLS_PER_USER=128 VALBOX_LOG=warn "$@" \
        taskset -c "$core" "$binary" serve --listen "127.0.0.1:$port" 2>>"$work/nodes.log" &
    wait_ready "$port"
}
prepare() {
    local port=$1
    local key
    key=$(curl -sf -X POST "http://127.0.0.1:$port/v1/users" -H 'Authorization: Bearer bench' \
        -d '{"handle":"bench","email":"bench@example.com"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
    curl -sf -X PUT "http://127.0.0.1:$port/v1/vals/add" -H "Authorization: Bearer $key" \
        -d '{"code":"export function add(a, b) { return a + b }","privacy":"public"}' >/dev/null
}
url() { echo "http://127.0.0.1:$1/v1/run/bench.add?args=%5B1,2%5D"; }
measure() { wrk -t"$1" -c"$2" -d"${seconds}s" --latency "$3" | grep -E "Requests/sec|  99%|Non-2xx" | tr -s ' ' | paste -sd ' '; }

echo "== 1. one embedded node (core 0)"
port=$(free_port)
node 0 "$port" "$work/embedded"
prepare "$port"
curl -sf "$(url "$port")" >/dev/null
measure 2 32 "$(url "$port")"
kill %2 2>/dev/null || true
pkill -f "serve --listen 127.0.0.1:$port" || true
sleep 1

pg_env=(VALBOX_DATABASE_URL="$database" VALBOX_REDIS_URL="redis://127.0.0.1:$redis_port/0")
echo "== 2. one node on PostgreSQL + Redis (core 0)"
port_a=$(free_port)
node 0 "$port_a" "$work/a" "${pg_env[@]}"
prepare "$port_a"
curl -sf "$(url "$port_a")" >/dev/null
measure 2 32 "$(url "$port_a")"

echo "== 3. two nodes on PostgreSQL + Redis (cores 0 and 1), 16 connections each"
port_b=$(free_port)
node 1 "$port_b" "$work/b" "${pg_env[@]}"
curl -sf "$(url "$port_b")" >/dev/null
measure 1 16 "$(url "$port_a")" >"$work/wrk-a" &
first=$!
measure 1 16 "$(url "$port_b")" >"$work/wrk-b"
wait "$first"
echo "node a: $(cat "$work/wrk-a")"
echo "node b: $(cat "$work/wrk-b")"
python3 - "$work/wrk-a" "$work/wrk-b" <<'PY'
import re, sys
total = sum(float(re.search(r"Requests/sec: ([0-9.]+)", open(f).read()).group(1)) for f in sys.argv[1:])
print(f"two nodes together: {total:.0f} req/s")
PY
