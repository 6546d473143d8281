#!/usr/bin/env bash
# The edge worker's whole test run, offline after the first install:
#   install (skipped when present) → build → native cargo test → node --test under
#   workerd (miniflare) → wrangler deploy --dry-run with the bundle size.
# Tools live outside the repo, in $DATAMIND_CACHE/edge-tools; cargo output in
# $DATAMIND_CACHE/edge-target. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")"

WORKER_BUILD_VERSION=0.8.7
# Must equal the wasm-bindgen version in Cargo.lock (pinned in Cargo.toml).
WASM_BINDGEN_VERSION=0.2.130
GZIP_LIMIT=$((1024 * 1024))

export DATAMIND_CACHE="${DATAMIND_CACHE:-/var/cache/datamind}"
if ! mkdir -p "$DATAMIND_CACHE" 2>/dev/null || [ ! -w "$DATAMIND_CACHE" ]; then
  DATAMIND_CACHE="$PWD/.cache"; mkdir -p "$DATAMIND_CACHE"
fi
export EDGE_TOOLS="${EDGE_TOOLS:-$DATAMIND_CACHE/edge-tools}"
export CARGO_TARGET_DIR="${EDGE_TARGET_DIR:-$DATAMIND_CACHE/edge-target}"
export PATH="$EDGE_TOOLS/bin:$PATH"
export CARGO_TERM_COLOR=never
# Keep wrangler and miniflare off the network (telemetry, update check, cf.json).
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false WRANGLER_HIDE_BANNER=true \
       CLOUDFLARE_CF_FETCH_ENABLED=false CI=true

step() { echo "== edge-worker: $* ($(date +%T))" >&2; }
t0=$(date +%s)

step "install (skips what is present)"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
lock_bindgen=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print}' Cargo.lock)
if [ "$lock_bindgen" != "$WASM_BINDGEN_VERSION" ]; then
  echo "Cargo.lock has wasm-bindgen $lock_bindgen, test.sh pins $WASM_BINDGEN_VERSION" >&2; exit 1
fi
if ! "$EDGE_TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  # Not --locked: its lockfile wants a webpki-roots release the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$EDGE_TOOLS"
fi
if ! "$EDGE_TOOLS/bin/worker-build" --version 2>/dev/null | grep -qx "$WORKER_BUILD_VERSION"; then
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --root "$EDGE_TOOLS"
fi
if [ ! -x node_modules/.bin/wrangler ] || ! cmp -s package-lock.json node_modules/.package-lock.json.src 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.src
fi

# `cargo metadata` (run by worker-build) wants every platform's crates on disk.
# Not --locked: gateway/llm (another team's crate) may add dependencies; existing pins stay.
cargo fetch --quiet

step "build (worker-build --release, offline)"
CARGO_NET_OFFLINE=true ./build.sh

step "native cargo test (pure logic)"
CARGO_NET_OFFLINE=true cargo test --lib --quiet

step "node --test (miniflare / workerd)"
node --test --test-reporter=spec --test-timeout=120000 tests/

step "wrangler deploy --dry-run"
out="$DATAMIND_CACHE/edge-dry-run"
rm -rf "$out"
node_modules/.bin/wrangler deploy --dry-run --outdir "$out" 2>&1 | grep -v '^\s*$' | tail -n 25
raw=$(cat build/index.js build/index_bg.wasm | wc -c)
gz=$(cat build/index.js build/index_bg.wasm | gzip -9 | wc -c)
wasm=$(wc -c < build/index_bg.wasm)
wasm_gz=$(gzip -9 < build/index_bg.wasm | wc -c)
echo "bundle: wasm ${wasm} B (gzip ${wasm_gz} B); index.js + wasm ${raw} B (gzip ${gz} B); limit ${GZIP_LIMIT} B gzip"
if [ "$gz" -ge "$GZIP_LIMIT" ]; then
  echo "bundle over 1 MiB gzip" >&2; exit 1
fi
step "ok in $(( $(date +%s) - t0 )) s"
