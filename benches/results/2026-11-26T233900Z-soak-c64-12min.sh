#!/usr/bin/env bash
# Standalone soak with memory breakdown: MIN minutes at c=64, samples every 30 s.
set -uo pipefail
REL=/var/cache/datamind/tgt-fat/release; MIN=${MIN:-12}
W=$(mktemp -d /tmp/s8/soak.XXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KEY=sk-bench-key; sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
"$REL/mock-llm" --listen 127.0.0.1:0 --name up >"$W/mock.out" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -q '^listening on' "$W/mock.out" && break; sleep 0.1; done
MPORT=$(sed -n 's/^listening on .*://p' "$W/mock.out"); PORT=$(free_port); APORT=$(free_port)
cat >"$W/gw.yaml" <<CONF
server: { listen: "127.0.0.1:$PORT", admin_listen: "127.0.0.1:$APORT", threads: 2 }
access_log: { enabled: true, path: $W/access.log }
auth: { keys: [ { name: bench, sha256: "$sha" } ] }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:$MPORT/v1", api_key: x } ]
models: [ { name: mock, deployments: [ { provider: up, model: mock } ] } ]
CONF
MIMALLOC_SHOW_STATS=1 "$REL/datamind-gateway" --config "$W/gw.yaml" >"$W/gw.out" 2>"$W/gw.err" & GP=$!; PIDS+=($GP)
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$APORT/readyz" && break; sleep 0.1; done
for ((m = 1; m <= MIN; m++)); do
  : >"$W/access.log"
  "$REL/datamind-bench" --url "http://127.0.0.1:$PORT/v1/chat/completions" -H "Authorization: Bearer $KEY" -c 64 --duration 60 >"$W/bench.out" 2>&1
  r=$(grep -E '^(Rss|Anonymous|Pss_File)' /proc/$GP/smaps_rollup | awk '{printf "%s %d ", $1, $2/1024}')
  echo "min=$m $(grep -E 'req/s|throughput' "$W/bench.out" | head -1) $r threads=$(ls /proc/$GP/task | wc -l) maps=$(wc -l < /proc/$GP/maps)"
done
kill -TERM $GP; sleep 5
grep -iE "reserved|committed|process|segments|pages" "$W/gw.err" | head -30
