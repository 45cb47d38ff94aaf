#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up, formatting, lints, tests,
# and the API contract check.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
# The API against its own OpenAPI document (schemathesis, --checks all).
./scripts/api-contract.sh
