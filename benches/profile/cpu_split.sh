#!/usr/bin/env bash
# Where a proxied request's CPU goes, per target, and how much of the machine sat idle:
# user and system µs per request of the proxy (all its processes and threads), of the mock
# and of the load generator, their context switches, and idle from /proc/stat, over N
# requests at concurrency C. Targets run one after another against one mock, ROUNDS times.
#
#   [C=32] [N=200000] [ROUNDS=4] [TARGETS=datamind,datamind_unpinned,nginx,nginx_pinned]
#   [GW=path/to/datamind-gateway] benches/profile/cpu_split.sh
#
# datamind: the bench config (API-key auth, metrics, access log; threads 2, defaults
# otherwise); datamind_unpinned: the same with server.pin_threads false; nginx and
# nginx_pinned as run.sh starts them. Every process stays in this script's session, as
# run.sh keeps them (with sched_autogroup a daemonized proxy gets its own scheduling group
# and a different share of the machine). /proc counts in 10 ms ticks: 0.05 µs per request
# at 200,000 requests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../peers/nginx_conf.sh
source "$ROOT/benches/peers/nginx_conf.sh"
REL=${CARGO_TARGET_DIR:-/var/cache/datamind/target}/release
GW=${GW:-$REL/datamind-gateway}; C=${C:-32}; N=${N:-200000}; ROUNDS=${ROUNDS:-4}
TARGETS=${TARGETS:-datamind,datamind_unpinned,nginx,nginx_pinned}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
for b in "$GW" "$REL/mock-llm" "$REL/datamind-bench"; do
  [ -x "$b" ] || { echo "missing $b (cargo build --release -p datamind-gateway -p datamind-benches)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/datamind-cpusplit.XXXXXX); chmod 755 "$W"; PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KEY=sk-bench-key; sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
"$REL/mock-llm" --listen 127.0.0.1:0 --name up >"$W/mock.out" 2>&1 & MP=$!; PIDS+=($MP)
for _ in $(seq 50); do grep -q '^listening on' "$W/mock.out" && break; sleep 0.1; done
MPORT=$(sed -n 's/^listening on .*://p' "$W/mock.out")
declare -A PORT PID
start() { # target
  local t=$1 port admin; port=$(free_port)
  case "$t" in
    datamind|datamind_unpinned)
      admin=$(free_port); mkdir -p "$W/$t"
      cat >"$W/$t/gw.yaml" <<CONF
server: { listen: "127.0.0.1:$port", admin_listen: "127.0.0.1:$admin", threads: 2$([ "$t" = datamind_unpinned ] && echo ", pin_threads: false") }
access_log: { enabled: true, path: $W/$t-access.log }
auth: { keys: [ { name: bench, sha256: "$sha" } ] }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:$MPORT/v1", api_key: x } ]
models: [ { name: mock, deployments: [ { provider: up, model: mock } ] } ]
CONF
      "$GW" --config "$W/$t/gw.yaml" >"$W/$t/out" 2>&1 & PID[$t]=$!
      for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz" && break; sleep 0.1; done ;;
    nginx|nginx_pinned)
      nginx_conf "$W/$t" "$port" "$MPORT" "$KEY" 2 "$([ "$t" = nginx_pinned ] && echo 'worker_cpu_affinity auto;')"
      /usr/sbin/nginx -p "$W/$t" -c "$W/$t/nginx.conf" -g 'daemon off;' 2>"$W/$t/stderr" & PID[$t]=$!
      for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  PIDS+=("${PID[$t]}"); PORT[$t]=$port
}
load() { "$REL/datamind-bench" --url "http://127.0.0.1:$1/v1/chat/completions" \
  -H "Authorization: Bearer $KEY" -c "$C" --requests "$2"; }
# utime stime voluntary involuntary, summed over a process tree's threads; then idle total.
snap() {
  python3 - "$@" <<'PY'
import os, sys
def tree(root):
    seen, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in seen: continue
        seen.add(p)
        for t in os.listdir(f"/proc/{p}/task"):
            try: todo += [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
            except OSError: pass
    return seen
out = []
for root in map(int, sys.argv[1:]):
    tot = [0, 0, 0, 0]
    for p in tree(root):
        for t in os.listdir(f"/proc/{p}/task"):
            try:
                st = open(f"/proc/{p}/task/{t}/stat").read().rsplit(")", 1)[1].split()
                tot[0] += int(st[11]); tot[1] += int(st[12])
                for l in open(f"/proc/{p}/task/{t}/status"):
                    if l.startswith("voluntary_ctxt"): tot[2] += int(l.split()[1])
                    if l.startswith("nonvoluntary_ctxt"): tot[3] += int(l.split()[1])
            except OSError: pass
    out += tot
cpu = open("/proc/stat").readline().split()[1:]
out += [int(cpu[3]) + int(cpu[4]), sum(int(x) for x in cpu[:8])]
print(" ".join(map(str, out)))
PY
}
one() { # target
  local t=$1 before after
  before=$(snap "${PID[$t]}" "$MP")
  /usr/bin/time -f "%U %S %w %c" -o "$W/time" "$REL/datamind-bench" \
    --url "http://127.0.0.1:${PORT[$t]}/v1/chat/completions" -H "Authorization: Bearer $KEY" \
    -c "$C" --requests "$N" >"$W/bench"
  after=$(snap "${PID[$t]}" "$MP")
  python3 - "$t" "$before" "$after" "$(cat "$W/time")" "$N" "$(sed -n 's/.*→ *\([0-9.]*\) req.*/\1/p' "$W/bench")" <<'PY'
import sys
name, b, a, t, n, rps = sys.argv[1:]
d = [int(x) - int(y) for x, y in zip(a.split(), b.split())]; t = t.split(); n = int(n)
us = lambda ticks: ticks * 10000 / n
print(f"{name:18s} {float(rps or 0):8.0f}/s | proxy u {us(d[0]):5.2f} s {us(d[1]):5.2f} cs {d[2]/n:4.2f}+{d[3]/n:4.2f}"
      f" | mock u {us(d[4]):5.2f} s {us(d[5]):5.2f} | load u {float(t[0])*1e6/n:5.2f} s {float(t[1])*1e6/n:5.2f}"
      f" | idle {100*d[8]/d[9]:4.1f}%")
PY
}
for t in ${TARGETS//,/ }; do start "$t"; load "${PORT[$t]}" 5000 >/dev/null; done
echo "µs per request (user u, system s; cs: voluntary+involuntary context switches), c=$C, $N requests"
for _ in $(seq "$ROUNDS"); do for t in ${TARGETS//,/ }; do one "$t"; done; done
