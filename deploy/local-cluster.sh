#!/usr/bin/env bash
# The multi-node stack on one box, for trying it: a PostgreSQL cluster and
# a Redis server of its own, two `valbox serve` nodes and two `valbox
# worker`s, all on loopback ports, state under a folder of its own.
#
#   deploy/local-cluster.sh start [DIR]   # default DIR: ./cluster
#   deploy/local-cluster.sh stop [DIR]
#
# Ports: PostgreSQL 55432, Redis 56379, nodes 8080 and 8081 (override with
# VALBOX_CLUSTER_PG_PORT, VALBOX_CLUSTER_REDIS_PORT, VALBOX_CLUSTER_PORT_A,
# VALBOX_CLUSTER_PORT_B). The admin key is printed at start. `stop` sends
# SIGTERM to every process it started (by the PIDs it wrote), waits for
# them, and stops PostgreSQL. Needs the packages scripts/setup.sh installs
# and a built target/release/valbox.
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:-}
dir=$(realpath -m "${2:-cluster}")
pg_port=${VALBOX_CLUSTER_PG_PORT:-55432}
redis_port=${VALBOX_CLUSTER_REDIS_PORT:-56379}
ports=("${VALBOX_CLUSTER_PORT_A:-8080}" "${VALBOX_CLUSTER_PORT_B:-8081}")
binary=$(pwd)/target/release/valbox
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

# PostgreSQL refuses to run as root: run its tools as `postgres` then.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_port() {
    for _ in $(seq 1 300); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "local-cluster: nothing listens on port $1 (see $dir/*.log)" >&2
    exit 1
}

start() {
    [ -x "$binary" ] || { echo "local-cluster: build first: cargo build --release" >&2; exit 1; }
    [ -n "$pg_bin" ] || { echo "local-cluster: PostgreSQL is not installed (scripts/setup.sh)" >&2; exit 1; }
    mkdir -p "$dir/pids"
    if [ ! -d "$dir/pg" ]; then
        mkdir -p "$dir/pg"
        [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir/pg"
        as_postgres "$pg_bin/initdb" -A trust -U valbox -D "$dir/pg/data" >"$dir/initdb.log"
    fi
    as_postgres "$pg_bin/pg_ctl" start -w -D "$dir/pg/data" -l "$dir/pg/log" \
        -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1" >/dev/null
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes \
        --dir "$dir" --daemonize no >"$dir/redis.log" 2>&1 &
    echo $! >"$dir/pids/redis"
    wait_port "$redis_port"
    [ -f "$dir/admin.key" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin.key"
    export VALBOX_DATABASE_URL="postgres://valbox@127.0.0.1:$pg_port/postgres"
    export VALBOX_REDIS_URL="redis://127.0.0.1:$redis_port/0"
    export VALBOX_ADMIN_KEY=$(cat "$dir/admin.key")
    # Every node seals secrets with the same master key.
    [ -f "$dir/master.key" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/master.key"
    export VALBOX_MASTER_KEY=$(cat "$dir/master.key")
    export VALBOX_LOG_FORMAT=json
    for n in 0 1; do
        mkdir -p "$dir/node$n"
        VALBOX_DATA_DIR="$dir/node$n" "$binary" serve --listen "127.0.0.1:${ports[$n]}" \
            --job-workers 0 >"$dir/node$n.log" 2>&1 &
        echo $! >"$dir/pids/node$n"
        VALBOX_DATA_DIR="$dir/node$n" "$binary" worker >"$dir/worker$n.log" 2>&1 &
        echo $! >"$dir/pids/worker$n"
    done
    for port in "${ports[@]}"; do wait_port "$port"; done
    echo "local-cluster: nodes on http://127.0.0.1:${ports[0]} and http://127.0.0.1:${ports[1]}"
    echo "local-cluster: admin key $VALBOX_ADMIN_KEY (also in $dir/admin.key); logs in $dir/*.log"
}

# SIGTERM to the processes named by pid files matching $1, then wait for them.
stop_processes() {
    for pidfile in "$dir"/pids/$1; do
        [ -f "$pidfile" ] || continue
        kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pidfile in "$dir"/pids/$1; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    done
}

stop() {
    # Nodes and workers first (they finish what they hold), then their stores.
    stop_processes "node*"
    stop_processes "worker*"
    stop_processes "redis"
    if [ -d "$dir/pg/data" ]; then
        as_postgres "$pg_bin/pg_ctl" stop -w -D "$dir/pg/data" >/dev/null 2>&1 || true
    fi
    echo "local-cluster: stopped"
}

case "$command" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: deploy/local-cluster.sh start|stop [DIR]" >&2; exit 2 ;;
esac
