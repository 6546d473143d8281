#!/usr/bin/env bash
# Builds (release) and runs the gateway on config/gateway.yaml, or on the config given.
# Works on a fresh machine: installs cmake (needed by Pingora's zlib-ng) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "run: installing cmake" >&2
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake >/dev/null
fi
exec cargo run --release -p datamind-gateway -- --config "${1:-config/gateway.yaml}"
