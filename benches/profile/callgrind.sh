#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind (callgrind): a measure that a noisy
# shared machine does not blur, for A/B work on the hot path. Kernel time (syscalls, wake-ups)
# is not counted: pair it with run.sh's CPU ms/req.
#
#   benches/profile/callgrind.sh [--gateway BIN] [--requests 2000] [-c 4] [--top 30] [--traced]
#   benches/profile/callgrind.sh --nginx [--requests 2000] [-c 4]
#
# Starts mock-llm and the gateway (under callgrind) with the bench config (API-key auth,
# metrics, access log), warms up with 300 requests, zeroes the counters, sends N requests,
# dumps, and prints instructions per request and the functions with the most self cost.
# --traced: every request's spans exported over OTLP/HTTP to benches/otlp_sink.py (the
# `datamind_traced` bench target), so the difference to a plain run is the cost of tracing.
# --steal: one work-stealing runtime over all worker threads (server.work_stealing: true).
# --nginx: the same count for nginx as run.sh configures it (one worker, master_process off,
# so the one process under callgrind serves everything), the reference the bar is set by.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REL=${CARGO_TARGET_DIR:-/var/cache/datamind/target}/release
GW="$REL/datamind-gateway" N=2000 C=4 TOP=30
while [ $# -gt 0 ]; do
  case "$1" in
    --gateway) GW=$2; shift ;;
    --requests) N=$2; shift ;;
    -c) C=$2; shift ;;
    --top) TOP=$2; shift ;;
    --traced) TRACED=1 ;;
    --nginx) NGINX=1 ;;
    --steal) STEAL=", work_stealing: true" ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ -z "${NGINX:-}" ] || { GW=/usr/sbin/nginx; [ -x "$GW" ] || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }; }
for b in "$GW" "$REL/mock-llm" "$REL/datamind-bench"; do
  [ -x "$b" ] || { echo "missing $b (cargo build --release -p datamind-gateway -p datamind-benches)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/datamind-callgrind.XXXXXX); mkdir -p "$W/logs"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KEY=sk-bench-key; sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
"$REL/mock-llm" --listen 127.0.0.1:0 --name up >"$W/mock.out" 2>"$W/mock.err" & PIDS+=($!)
for _ in $(seq 50); do grep -q '^listening on' "$W/mock.out" && break; sleep 0.1; done
MPORT=$(sed -n 's/^listening on .*://p' "$W/mock.out")
PORT=$(free_port); APORT=$(free_port)
TELEMETRY=""
if [ -n "${TRACED:-}" ]; then
  SINK=$(free_port)
  python3 "$ROOT/benches/otlp_sink.py" "$SINK" >"$W/sink.out" 2>&1 & PIDS+=($!)
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$SINK/healthz" && break; sleep 0.1; done
  TELEMETRY="telemetry: { traces: { enabled: true, protocol: http/protobuf, endpoint: \"http://127.0.0.1:$SINK/v1/traces\" } }"
fi
if [ -n "${NGINX:-}" ]; then
  # shellcheck source=../peers/nginx_conf.sh
  source "$ROOT/benches/peers/nginx_conf.sh"
  nginx_conf "$W/nginx" "$PORT" "$MPORT" "$KEY" 1
  READY=(-H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/models")
  valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" /usr/sbin/nginx -p "$W/nginx" \
    -c "$W/nginx/nginx.conf" -g 'daemon off; master_process off;' >"$W/gw.out" 2>"$W/gw.err" &
  GP=$!; PIDS+=($GP)
else
cat >"$W/gw.yaml" <<CONF
server: { listen: "127.0.0.1:$PORT", admin_listen: "127.0.0.1:$APORT", threads: 2${STEAL:-} }
access_log: { enabled: true, path: $W/logs/access.log }
auth: { keys: [ { name: bench, sha256: "$sha" } ] }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:$MPORT/v1", api_key: x } ]
models: [ { name: mock, deployments: [ { provider: up, model: mock } ] } ]
$TELEMETRY
CONF
  valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$GW" --config "$W/gw.yaml" >"$W/gw.out" 2>"$W/gw.err" &
  GP=$!; PIDS+=($GP)
fi
[ -n "${READY:-}" ] || READY=("http://127.0.0.1:$APORT/readyz")
for _ in $(seq 300); do curl -sf -o /dev/null "${READY[@]}" && break; sleep 0.2; done
load() { "$REL/datamind-bench" --url "http://127.0.0.1:$PORT/v1/chat/completions" -H "Authorization: Bearer $KEY" -c "$C" --requests "$1" >/dev/null; }
load 300
callgrind_control -z "$GP" >/dev/null
load "$N"
callgrind_control -d "$GP" >/dev/null
for _ in $(seq 50); do [ -s "$W/cg.out.1" ] && break; sleep 0.2; done
python3 "$ROOT/benches/profile/callgrind_summary.py" "$W/cg.out.1" "$N" "$TOP"
echo "profile: $W/cg.out.1 (callgrind_annotate / kcachegrind)"
