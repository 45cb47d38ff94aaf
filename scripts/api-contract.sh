#!/usr/bin/env bash
# Checks the running API against its own OpenAPI document with schemathesis
# (`--checks all`): starts `valbox serve` on a free port with a fresh data
# dir, creates a user and a few vals for the calls to find, and runs a
# bounded number of examples per operation. Needs target/release/valbox
# (built by the test command); installs schemathesis into target/ (pinned).
# Settings: tests/api-contract/schemathesis.toml; VALBOX_CONTRACT_EXAMPLES
# (default 30) examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$version"
fi

binary=target/release/valbox
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin=contract-admin-key
VALBOX_ADMIN_KEY=$admin VALBOX_LOG=warn "$binary" serve --data-dir "$data" --listen "127.0.0.1:$port" \
    --max-concurrent-calls 64 --max-calls-per-user 64 --deadline-ms 2000 --min-schedule-interval 1s \
    2>"$data/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

key=$(curl -fs -X POST "$base/v1/users" -H "Authorization: Bearer $admin" \
    -H 'content-type: application/json' -d '{"handle": "alice", "email": "alice@example.com"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
save() {
    curl -fs -X PUT "$base/v1/vals/$1" -H "Authorization: Bearer $key" \
        -H 'content-type: application/json' -d "$2" >/dev/null
}
save add '{"code": "export function add(a, b) { return a + b }", "privacy": "public"}'
save hello '{"code": "export default (req) => new Response(\"hi\")", "privacy": "public"}'
save secretive '{"code": "export const secretive = 1", "privacy": "private"}'
curl -fs -X PUT "$base/v1/secrets/token" -H "Authorization: Bearer $key" \
    -H 'content-type: application/json' -d '{"value": "s3cret"}' >/dev/null
check() {
    VALBOX_CONTRACT_KEY=$key VALBOX_CONTRACT_ADMIN=$admin \
        "$venv/bin/schemathesis" --config-file tests/api-contract/schemathesis.toml run "$base/openapi.json" \
        --checks all \
        --max-examples "${VALBOX_CONTRACT_EXAMPLES:-30}" \
        --seed 1 \
        --generation-database none \
        --no-color \
        --report-dir "$data/report" "$@"
}
# Deleting users and revoking keys can end the run's own user or key (the
# stateful phase follows links from the listings), so those operations run
# last, on their own.
check --exclude-tag admin --exclude-operation-id revoke_key "$@"
check --include-operation-id revoke_key "$@"
check --include-tag admin "$@"
