#!/usr/bin/env bash
# Starts valbox on its embedded defaults (127.0.0.1:8080, ./data), after set-up.
# Extra arguments go to `valbox serve` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release --bin valbox -- serve "$@"
