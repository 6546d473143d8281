#!/usr/bin/env bash
# Builds build/index.js + build/index_bg.wasm with worker-build, never downloading:
# wasm-bindgen comes from `cargo install wasm-bindgen-cli` (same version as Cargo.lock),
# wasm-opt from npm `binaryen`, esbuild from wrangler's npm dependency. Extra arguments go
# to worker-build (e.g. --dev, --no-opt).
set -euo pipefail
cd "$(dirname "$0")"
CACHE="${DATAMIND_CACHE:-/var/cache/datamind}"
TOOLS="${EDGE_TOOLS:-$CACHE/edge-tools}"
export PATH="$TOOLS/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/edge-target}"
NM="$PWD/node_modules/.bin"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || true)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$NM/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$NM/wasm-opt}"
for tool in worker-build "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  if [ -z "$tool" ] || ! command -v "$tool" >/dev/null; then
    echo "build.sh: missing ${tool:-wasm-bindgen}; run ./test.sh once (it installs the tools) or see README.md" >&2
    exit 1
  fi
done
# Up to date? (wrangler's [build] command calls this again on deploy; wasm-opt alone takes
# ~20 s, so skip when no input is newer than the output.) EDGE_FORCE_BUILD=1 rebuilds.
if [ $# -eq 0 ] && [ -z "${EDGE_FORCE_BUILD:-}" ] && [ -f build/index.js ] && [ -f build/index_bg.wasm ] \
   && [ -z "$(find src ../gateway/llm/src ../gateway/llm/Cargo.toml ../Cargo.toml Cargo.toml Cargo.lock build.sh \
             -newer build/index_bg.wasm -print -quit)" ]; then
  echo "build.sh: build/ is up to date" >&2
  exit 0
fi
exec worker-build --release "$@"
