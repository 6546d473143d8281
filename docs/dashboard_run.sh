#!/usr/bin/env bash
# Produces docs/dashboard.png from a real run: mock-llm upstreams, the release gateway (two
# tenants with budgets, one rate-limited, two priced models with a fallback, the response
# cache, OTLP traces to a discarding
# collector), Prometheus (Debian's `prometheus`) scraping the admin listener every 2 s, and
# datamind-bench driving phases of load (chat, streams, cache hits, a failing primary that
# falls back, an unknown model). Then docs/render_dashboard.py evaluates every dashboard
# query against that Prometheus and draws the panels.
#
#   docs/dashboard_run.sh [--phase-seconds 40]
# Needs `prometheus`, python3-matplotlib (the renderer runs under $PYTHON, default
# /usr/bin/python3) and curl: installed from Debian's apt when missing (root or sudo; kept
# out of scripts/setup.sh so the test suite does not pay for them). Release binaries in
# $CARGO_TARGET_DIR/release are built when missing (cargo build --release -p
# datamind-gateway -p datamind-benches). Idempotent; loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/datamind/target}
REL=$CARGO_TARGET_DIR/release
PHASE=40
[ "${1:-}" = --phase-seconds ] && PHASE=$2

# --- what the run needs ---------------------------------------------------------------
want_apt=()
command -v prometheus >/dev/null || want_apt+=(prometheus)
"${PYTHON:-/usr/bin/python3}" -c 'import matplotlib' 2>/dev/null || want_apt+=(python3-matplotlib)
command -v curl >/dev/null || want_apt+=(curl)
if [ ${#want_apt[@]} -gt 0 ]; then
  echo "dashboard_run: installing ${want_apt[*]} (apt)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # Debian's prometheus package would also start its own service where systemd runs; this
  # script starts its own Prometheus on a free port either way.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want_apt[@]}" >/dev/null
fi
if [ ! -x "$REL/datamind-gateway" ] || [ ! -x "$REL/mock-llm" ] || [ ! -x "$REL/datamind-bench" ]; then
  echo "dashboard_run: building the release binaries" >&2
  (cd "$ROOT" && cargo build --release -q -p datamind-gateway -p datamind-benches --bins)
fi
WORK=$(mktemp -d /tmp/datamind-dash.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

start_mock() { # name → prints host:port
  "$REL/mock-llm" --listen 127.0.0.1:0 --name "$1" --chunks 12 --chunk-delay-ms 3 >"$WORK/$1.out" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 50); do grep -q listening "$WORK/$1.out" && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$WORK/$1.out"
}
PRIMARY=$(start_mock primary); BACKUP=$(start_mock backup)
SINK=$(port); python3 "$ROOT/benches/otlp_sink.py" "$SINK" & PIDS+=("$!")
API=$(port); ADMIN=$(port); PROM=$(port)
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat >"$WORK/gateway.yaml" <<CONF
server: { listen: "127.0.0.1:$API", admin_listen: "127.0.0.1:$ADMIN", threads: 2 }
access_log: { enabled: true, path: "$WORK/access.log" }
auth:
  keys:
    - { name: team-a, sha256: "$(sha sk-dash-team-a)", tenant: team-a }
    - { name: team-b, sha256: "$(sha sk-dash-team-b)", tenant: team-b }
cache: { enabled: true, mode: opt_in }
tenants:
  - { name: team-a, budget: { period: day, hard_usd: 50 } }
  - { name: team-b, limits: { rpm: 3000 }, budget: { period: day, hard_usd: 20 } }
prices:
  mock-chat-a: { input: 0.15, output: 0.60 }
  mock-chat-b: { input: 2.50, output: 10.00 }
providers:
  - { name: primary, kind: openai, base_url: "http://$PRIMARY/v1", api_key: x }
  - { name: backup, kind: openai, base_url: "http://$BACKUP/v1", api_key: x }
models:
  - name: gpt-4o-mini
    deployments: [ { provider: primary, model: mock-chat-a } ]
    fallbacks: [gpt-4o]
  - name: gpt-4o
    deployments: [ { provider: backup, model: mock-chat-b } ]
telemetry:
  traces: { enabled: true, protocol: http/protobuf, endpoint: "http://127.0.0.1:$SINK/v1/traces" }
CONF
"$REL/datamind-gateway" --config "$WORK/gateway.yaml" >"$WORK/gw.out" 2>"$WORK/gw.err" & PIDS+=("$!")
wait_http "http://127.0.0.1:$ADMIN/readyz"
cat >"$WORK/prometheus.yml" <<CONF
global: { scrape_interval: 2s, evaluation_interval: 2s }
scrape_configs:
  - job_name: datamind-gateway
    static_configs: [ { targets: ["127.0.0.1:$ADMIN"] } ]
CONF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM" >"$WORK/prom.log" 2>&1 & PIDS+=("$!")
wait_http "http://127.0.0.1:$PROM/-/ready"

load() { # seconds concurrency key model [extra bench args...]
  local secs=$1 c=$2 key=$3 model=$4; shift 4
  "$REL/datamind-bench" --url "http://127.0.0.1:$API/v1/chat/completions" -c "$c" --duration "$secs" \
    -H "authorization: Bearer $key" \
    --body "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hello from the dashboard run\"}]}" \
    "$@" >/dev/null || true  # error answers (the unknown model) are part of the picture
}
START=$(date +%s)
echo "phase 1: chat for two tenants" >&2
load "$PHASE" 4 sk-dash-team-a gpt-4o-mini & BG=$!; load "$PHASE" 2 sk-dash-team-b gpt-4o; wait "$BG"
echo "phase 2: streams and cache hits" >&2
load "$PHASE" 4 sk-dash-team-a gpt-4o-mini --stream & BG=$!; load "$PHASE" 2 sk-dash-team-b gpt-4o -H "x-datamind-cache: force"; wait "$BG"
echo "phase 3: the primary answers 503: fallback to gpt-4o; some unknown models" >&2
curl -fs -X POST "http://$PRIMARY/control" -d '{"status":503}' >/dev/null
load "$PHASE" 4 sk-dash-team-a gpt-4o-mini & BG=$!; load "$PHASE" 1 sk-dash-team-b no-such-model; wait "$BG"
curl -fs -X POST "http://$PRIMARY/control" -d '{"status":200}' >/dev/null
echo "phase 4: recovered, slower upstream" >&2
curl -fs -X POST "http://$BACKUP/control" -d '{"ttft_ms":40}' >/dev/null
load "$PHASE" 6 sk-dash-team-a gpt-4o-mini --stream & BG=$!; load "$PHASE" 2 sk-dash-team-b gpt-4o; wait "$BG"
sleep 4
END=$(date +%s)
"${PYTHON:-/usr/bin/python3}" "$ROOT/docs/render_dashboard.py" --prometheus "http://127.0.0.1:$PROM" --start "$START" --end "$END" \
  --dashboard "$ROOT/charts/datamind/files/dashboards/gateway.json" --out "$ROOT/docs/dashboard.png" \
  --subtitle "real run $(date -u +%Y-%m-%dT%H:%MZ): release gateway + mock-llm on 127.0.0.1, Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), rendered by docs/render_dashboard.py (not a Grafana screenshot)"
