#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, format, lints, the wasm build of the portable
# crate, then every unit and end-to-end test (real gateway, mock upstream, OpenAI SDK).
set -euo pipefail
cd "$(dirname "$0")/.."

export DATAMIND_CACHE="${DATAMIND_CACHE:-/var/cache/datamind}"
if ! mkdir -p "$DATAMIND_CACHE" 2>/dev/null || [ ! -w "$DATAMIND_CACHE" ]; then
  DATAMIND_CACHE="$PWD/.cache"; mkdir -p "$DATAMIND_CACHE"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DATAMIND_CACHE/target}"
export DATAMIND_VENV="${DATAMIND_VENV:-$DATAMIND_CACHE/venv}"
export CARGO_TERM_COLOR=never

step() { echo "== $* ($(date +%T))" >&2; }

step setup
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "datamind-llm builds for wasm32-unknown-unknown"
cargo build --quiet -p datamind-llm --target wasm32-unknown-unknown

step "build binaries"
cargo build --quiet --workspace --bins

step "helm chart (offline: lint, render, schemas, policies, gateway check)"
charts/test.sh

step "edge worker (build, cargo test, node --test under workerd, wrangler dry-run)"
edge-worker/test.sh

step "tests"
cargo nextest run --workspace --no-fail-fast --failure-output final "$@"
