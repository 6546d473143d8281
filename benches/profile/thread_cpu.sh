#!/usr/bin/env bash
# CPU per request of each of the gateway's threads (user and system, from /proc), and of the
# mock (and the OTLP sink when traced), over N requests at concurrency C after a warm-up:
#
#   [TRACED=1] [GW=path/to/datamind-gateway] [C=32] [N=200000] benches/profile/thread_cpu.sh
#
# Same config as callgrind.sh (API-key auth, metrics, access log; TRACED=1 exports every
# request's spans to benches/otlp_sink.py). Alternate plain and traced runs (and A/B
# builds with GW=) a few times: single runs on a shared machine differ by ±10%.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REL=${CARGO_TARGET_DIR:-/var/cache/datamind/target}/release
GW=${GW:-$REL/datamind-gateway}; C=${C:-32}; N=${N:-200000}
W=$(mktemp -d /tmp/datamind-threads.XXXXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KEY=sk-bench-key; sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
"$REL/mock-llm" --listen 127.0.0.1:0 --name up >"$W/mock.out" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -q '^listening on' "$W/mock.out" && break; sleep 0.1; done
MPORT=$(sed -n 's/^listening on .*://p' "$W/mock.out")
PORT=$(free_port); APORT=$(free_port); TEL=""
if [ -n "${TRACED:-}" ]; then
  SINK=$(free_port); python3 "$ROOT/benches/otlp_sink.py" "$SINK" >"$W/sink.out" 2>&1 & SP=$!; PIDS+=($SP)
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$SINK/healthz" && break; sleep 0.1; done
  TEL="telemetry: { traces: { enabled: true, protocol: http/protobuf, endpoint: \"http://127.0.0.1:$SINK/v1/traces\" } }"
fi
cat >"$W/gw.yaml" <<CONF
server: { listen: "127.0.0.1:$PORT", admin_listen: "127.0.0.1:$APORT", threads: 2 }
access_log: { enabled: true, path: $W/access.log }
auth: { keys: [ { name: bench, sha256: "$sha" } ] }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:$MPORT/v1", api_key: x } ]
models: [ { name: mock, deployments: [ { provider: up, model: mock } ] } ]
$TEL
CONF
"$GW" --config "$W/gw.yaml" >"$W/gw.out" 2>&1 & GP=$!; PIDS+=($GP)
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$APORT/readyz" && break; sleep 0.1; done
load() { "$REL/datamind-bench" --url "http://127.0.0.1:$PORT/v1/chat/completions" -H "Authorization: Bearer $KEY" -c "$C" --requests "$1" >/dev/null; }
snap() { for t in /proc/$GP/task/*; do echo "$(cat $t/comm) $(awk "{print \$14, \$15}" $t/stat)"; done | awk "{u[\$1]+=\$2; s[\$1]+=\$3} END {for (k in u) print k, u[k], s[k]}" | sort; [ -n "${SP:-}" ] && echo "SINK $(awk '{print $14, $15}' /proc/$SP/stat)"; echo "MOCK $(awk '{print $14, $15}' /proc/${PIDS[0]}/stat)"; }
load 20000
snap > "$W/a"; T0=$(date +%s.%N); load "$N"; T1=$(date +%s.%N); snap > "$W/b"
echo "req/s $(python3 -c "print(round($N/($T1-$T0)))")"
join "$W/a" "$W/b" | awk -v n="$N" '($4-$2+$5-$3)>0 {printf "%-14s user %6.2f sys %6.2f us/req\n", $1, ($4-$2)*10000/n, ($5-$3)*10000/n}'
