#!/usr/bin/env bash
# Installs the peer gateways that benches/run.sh compares DataMind with, from the package
# registries only (see shared/notes/benchmarking.md). Idempotent; installs only what is named:
#   benches/peers/setup.sh nginx            # Debian nginx-light (plain reverse proxy baseline)
#   benches/peers/setup.sh litellm portkey  # LiteLLM Proxy (PyPI) and Portkey gateway (npm)
# Peers live under $PEERS_DIR (default /var/cache/datamind/peers); run.sh looks there.
set -euo pipefail

PEERS_DIR=${PEERS_DIR:-/var/cache/datamind/peers}
LITELLM_VERSION=${LITELLM_VERSION:-1.108.7}
PORTKEY_VERSION=${PORTKEY_VERSION:-1.15.2}
mkdir -p "$PEERS_DIR"

setup_nginx() {
  if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
    echo "nginx: present ($(/usr/sbin/nginx -v 2>&1))"
    return
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light
  # The package starts a system nginx on :80; the benchmark runs its own instances.
  systemctl disable --now nginx 2>/dev/null || service nginx stop 2>/dev/null || true
}

setup_litellm() {
  local venv="$PEERS_DIR/litellm-venv"
  if [ -x "$venv/bin/litellm" ]; then
    echo "litellm: present ($venv)"
    return
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
  echo "litellm: installed in $venv"
}

setup_portkey() {
  local dir="$PEERS_DIR/portkey"
  if [ -f "$dir/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
    echo "portkey: present ($dir)"
    return
  fi
  mkdir -p "$dir"
  (cd "$dir" && npm init -y >/dev/null && npm install --silent "@portkey-ai/gateway@$PORTKEY_VERSION")
  # Known upstream bugs (#1389, #1550): its streaming appends to a fetch Response's immutable
  # Headers and answers 500 "TypeError: immutable". run.sh therefore measures Portkey on
  # non-streamed scenarios only.
  echo "portkey: installed in $dir"
}

[ $# -gt 0 ] || set -- nginx
for peer in "$@"; do
  case "$peer" in
    nginx) setup_nginx ;;
    litellm) setup_litellm ;;
    portkey) setup_portkey ;;
    *) echo "unknown peer: $peer (nginx|litellm|portkey)" >&2; exit 2 ;;
  esac
done
