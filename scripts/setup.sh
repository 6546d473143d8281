#!/usr/bin/env bash
# Installs what a fresh machine lacks for building and testing DataMind; skips what is there.
# Idempotent and quiet when everything is present. Needs root (or sudo) only for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${DATAMIND_CACHE:-/var/cache/datamind}"
want_apt=()
command -v cmake >/dev/null || want_apt+=(cmake)            # Pingora's zlib-ng build
command -v cc >/dev/null || want_apt+=(build-essential)
command -v nginx >/dev/null || want_apt+=(nginx-light)       # benchmark peer (smoke run in tests)
command -v jq >/dev/null || want_apt+=(jq)                    # benches/run.sh reports (smoke run in tests)
command -v curl >/dev/null || want_apt+=(curl)                # TLS/h2 e2e tests
command -v openssl >/dev/null || want_apt+=(openssl)          # self-signed certs in tests
command -v redis-server >/dev/null || want_apt+=(redis-server) # shared limits/spend tests (started per test, by PID)
python3 -c 'import venv, ensurepip' 2>/dev/null || want_apt+=(python3-venv)
if [ ${#want_apt[@]} -gt 0 ]; then
  echo "setup: installing ${want_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${want_apt[@]}" >/dev/null
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target" >&2
  rustup target add wasm32-unknown-unknown >/dev/null
fi
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null
fi
cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest >/dev/null

# Python venv with the official OpenAI SDK (and pytest) for the client tests.
VENV="${DATAMIND_VENV:-$CACHE/venv}"
REQ=tests/python/requirements.txt
if [ -f "$REQ" ]; then
  stamp="$VENV/.requirements.sha256"
  sum=$(sha256sum "$REQ" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    echo "setup: creating the Python venv at $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
    echo "$sum" > "$stamp"
  fi
fi
