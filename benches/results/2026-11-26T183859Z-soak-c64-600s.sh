#!/usr/bin/env bash
# 10-minute soak at c=64: the gateway alone, RSS and dropped access-log lines every 10 s.
# Usage: SECS=600 REL=<dir with datamind-gateway, mock-llm, datamind-bench> ./this.sh
set -euo pipefail
REL=${REL:-${CARGO_TARGET_DIR:-/var/cache/datamind/target}/release}
W=$(mktemp -d); mkdir -p $W/logs  # the access log grows ~16 MB/s: keep 10 GB free for 600 s
KEY=sk-bench-key
"$REL/mock-llm" --listen 127.0.0.1:0 --name up >$W/mock.out 2>$W/mock.err & MP=$!
sleep 0.3; MA=$(sed -n 's/^listening on //p' $W/mock.out); MPORT=${MA##*:}
sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
cat > $W/gw.yaml <<CONF
server: { listen: "127.0.0.1:18080", admin_listen: "127.0.0.1:19090", threads: 2 }
access_log: { enabled: true, path: $W/logs/access.log }
auth: { keys: [ { name: bench, sha256: "$sha" } ] }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:$MPORT/v1", api_key: x } ]
models: [ { name: mock, deployments: [ { provider: up, model: mock } ] } ]
CONF
"$REL/datamind-gateway" --config $W/gw.yaml >$W/gw.out 2>$W/gw.err & GP=$!
for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:19090/readyz && break; sleep 0.1; done
"$REL/datamind-bench" --url http://127.0.0.1:18080/v1/chat/completions -H "Authorization: Bearer $KEY" -c 64 --duration ${SECS:-150} >/dev/null & BP=$!
for i in $(seq $(( ${SECS:-150} / 10 ))); do
  sleep 10
  rss=$(awk '/VmRSS/{print $2}' /proc/$GP/status)
  drop=$(curl -s http://127.0.0.1:19090/metrics | grep -E '^datamind_access_log_dropped_total' | awk '{print $2}')
  echo "t=${i}0s rss_kib=$rss access_log_dropped=${drop:-?} log_bytes=$(stat -c %s $W/logs/access.log)"
done
wait $BP || true
kill $GP $MP; wait 2>/dev/null || true; rm -rf $W
