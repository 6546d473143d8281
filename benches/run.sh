#!/usr/bin/env bash
# Scenario runner: DataMind next to its peers, on this machine, against one mock-llm.
#
#   benches/run.sh --smoke            # a few hundred requests per target and scenario (< 1 min)
#   benches/run.sh [--repeats 3] [--duration 8] [--targets direct,nginx,datamind,datamind_cache,litellm,portkey]
#
# Targets: direct (the mock itself), nginx (plain reverse proxy, config per
# shared/notes/benchmarking.md), datamind (release gateway with a generated config),
# datamind_cache (the same with the response cache on: the hit path), and
# litellm / portkey when benches/peers/setup.sh installed them. Each scenario runs every target
# in turn, rotating the order each repeat (A B C, B C A, ...); the load generator samples the
# target's CPU and RSS. Results: benches/results/<date>.md and .json.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/datamind/target}
REL="$CARGO_TARGET_DIR/release"
PEERS_DIR=${PEERS_DIR:-/var/cache/datamind/peers}
KEY=sk-bench-key

SMOKE=0 REPEATS=3 DURATION=8 WARMUP=1 BUILD=1 TARGETS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --repeats) REPEATS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$SMOKE" = 1 ]; then REPEATS=1; WARMUP=0; fi

WORK=$(mktemp -d /tmp/datamind-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[run.sh] $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url seconds [curl args...]
  local url=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 10))); do
    if curl -s -o /dev/null --max-time 1 "$@" "$url"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# --- build -------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  log "building release binaries (mock-llm, datamind-bench, datamind-gateway)"
  (cd "$ROOT" && cargo build --release -q -p datamind-benches --bins) >&2
  (cd "$ROOT" && cargo build --release -q -p datamind-gateway) >&2 || log "gateway build failed: datamind target skipped"
fi
BENCH="$REL/datamind-bench"
[ -x "$BENCH" ] && [ -x "$REL/mock-llm" ] || { log "missing $BENCH or mock-llm"; exit 1; }

# --- the upstream ------------------------------------------------------------------------
"$REL/mock-llm" --listen 127.0.0.1:0 --name bench-upstream >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!; PIDS+=("$MOCK_PID")
for _ in $(seq 50); do grep -q listening "$WORK/mock.out" && break; sleep 0.1; done
MOCK_ADDR=$(sed -n 's/^listening on //p' "$WORK/mock.out")
[ -n "$MOCK_ADDR" ] || { log "mock-llm did not start"; exit 1; }
MOCK_PORT=${MOCK_ADDR##*:}
log "mock-llm on $MOCK_ADDR"

# --- targets: each sets URL_<t>, PID_<t>, HDR_<t> (extra -H args, one per line) -----------
declare -A URL PID HDR STREAMS
URL[direct]="http://$MOCK_ADDR"; PID[direct]=$MOCK_PID; HDR[direct]=""; STREAMS[direct]=1

start_nginx() {
  local nginx=/usr/sbin/nginx port; [ -x "$nginx" ] || return 1
  port=$(free_port); mkdir -p "$WORK/nginx/logs"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  client_max_body_size 64m;
  upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$port reuseport;
    location / {
      if (\$http_authorization != "Bearer $KEY") { return 401; }
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer x";
      proxy_buffering off;
    }
  }
}
CONF
  "$nginx" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/stderr" &
  PID[nginx]=$!; PIDS+=("${PID[nginx]}")
  URL[nginx]="http://127.0.0.1:$port"; HDR[nginx]="Authorization: Bearer $KEY"; STREAMS[nginx]=1
  wait_http "${URL[nginx]}/v1/models" 10 -H "Authorization: Bearer $KEY"
}

start_datamind() { # [target name] [extra YAML]
  local name=${1:-datamind} extra=${2:-}
  local gw="$REL/datamind-gateway" port admin sha; [ -x "$gw" ] || return 1
  port=$(free_port); admin=$(free_port)
  sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
  cat >"$WORK/$name.yaml" <<CONF
server:
  listen: "127.0.0.1:$port"
  admin_listen: "127.0.0.1:$admin"
  threads: 2
access_log:
  enabled: false
auth:
  keys:
    - name: bench
      sha256: "$sha"
providers:
  - name: up
    kind: openai
    base_url: http://127.0.0.1:$MOCK_PORT/v1
    api_key: x
models:
  - name: mock
    deployments:
      - provider: up
        model: mock
$extra
CONF
  "$gw" --config "$WORK/$name.yaml" >"$WORK/$name.out" 2>&1 &
  PID[$name]=$!; PIDS+=("${PID[$name]}")
  URL[$name]="http://127.0.0.1:$port"; HDR[$name]="Authorization: Bearer $KEY"; STREAMS[$name]=1
  wait_http "http://127.0.0.1:$admin/healthz" 20
}

# The same gateway with the in-memory response cache; every bench request opts in
# (x-datamind-cache: force), so after a scenario's first request this measures the hit path.
start_datamind_cache() {
  start_datamind datamind_cache "cache: { enabled: true, mode: opt_in }" || return 1
  HDR[datamind_cache]+=$'\nx-datamind-cache: force'
}

start_litellm() {
  local venv="$PEERS_DIR/litellm-venv" port; [ -x "$venv/bin/litellm" ] || return 1
  port=$(free_port)
  cat >"$WORK/litellm.yaml" <<CONF
model_list:
  - model_name: mock
    litellm_params: { model: openai/mock, api_base: "http://127.0.0.1:$MOCK_PORT/v1", api_key: x }
general_settings: { master_key: $KEY }
CONF
  LITELLM_TELEMETRY=False LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
    "$venv/bin/litellm" --config "$WORK/litellm.yaml" --host 127.0.0.1 --port "$port" --num_workers 1 \
    >"$WORK/litellm.out" 2>&1 &
  PID[litellm]=$!; PIDS+=("${PID[litellm]}")
  URL[litellm]="http://127.0.0.1:$port"; HDR[litellm]="Authorization: Bearer $KEY"; STREAMS[litellm]=1
  wait_http "${URL[litellm]}/health/liveliness" 90
}

start_portkey() {
  local js="$PEERS_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" port
  [ -f "$js" ] || return 1
  port=$(free_port)
  node "$js" --port="$port" --headless >"$WORK/portkey.out" 2>&1 &
  PID[portkey]=$!; PIDS+=("${PID[portkey]}")
  URL[portkey]="http://127.0.0.1:$port"; STREAMS[portkey]=0
  HDR[portkey]=$'Authorization: Bearer x\nx-portkey-provider: openai\nx-portkey-custom-host: '"http://127.0.0.1:$MOCK_PORT/v1"
  wait_http "${URL[portkey]}/" 30
}

if [ -z "$TARGETS" ]; then
  TARGETS=direct,nginx,datamind,datamind_cache
  [ -x "$PEERS_DIR/litellm-venv/bin/litellm" ] && TARGETS+=,litellm
  [ -f "$PEERS_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" ] && TARGETS+=,portkey
fi
ACTIVE=()
for t in ${TARGETS//,/ }; do
  if [ "$t" = direct ] || "start_$t"; then ACTIVE+=("$t"); log "target $t: ${URL[$t]} (pid ${PID[$t]})"
  else log "target $t unavailable: skipped"; fi
done

# --- scenarios: name | mock /control | bench args -----------------------------------------
if [ "$SMOKE" = 1 ]; then
  BOUND=(--requests 300 --duration 3); SBOUND=(--requests 100 --duration 3)
else
  BOUND=(--duration "$DURATION" --warmup "$WARMUP"); SBOUND=("${BOUND[@]}")
fi
SCENARIOS=(
  "chat_c1|{\"ttft_ms\":0,\"chunk_delay_ms\":0}|-c 1 ${BOUND[*]}"
  "chat_c32|{\"ttft_ms\":0,\"chunk_delay_ms\":0}|-c 32 ${BOUND[*]}"
  "chat_c64|{\"ttft_ms\":0,\"chunk_delay_ms\":0}|-c 64 ${BOUND[*]}"
  "stream_c32|{\"ttft_ms\":0,\"chunk_delay_ms\":5,\"chunks\":20}|-c 32 --stream ${SBOUND[*]}"
)
[ "$SMOKE" = 1 ] || SCENARIOS+=("slow_c256|{\"ttft_ms\":100,\"chunk_delay_ms\":0}|-c 256 ${BOUND[*]}")

RESULTS="$WORK/results.jsonl"; : >"$RESULTS"
for scenario in "${SCENARIOS[@]}"; do
  IFS='|' read -r name control args <<<"$scenario"
  curl -s -o /dev/null -X POST "http://$MOCK_ADDR/control" -d "$control"
  for ((r = 0; r < REPEATS; r++)); do
    n=${#ACTIVE[@]}
    for ((i = 0; i < n; i++)); do
      t=${ACTIVE[$(((i + r) % n))]}
      [[ "$args" == *--stream* && "${STREAMS[$t]}" != 1 ]] && continue
      hdr=(); while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done <<<"${HDR[$t]}"
      log "$name repeat $((r + 1)) target $t"
      # shellcheck disable=SC2086
      if out=$("$BENCH" --url "${URL[$t]}/v1/chat/completions" "${hdr[@]}" --pid "${PID[$t]}" --json $args); then
        jq -c --arg s "$name" --arg t "$t" --argjson r "$r" '{scenario:$s,target:$t,repeat:$r,report:.}' <<<"$out" >>"$RESULTS"
      else
        log "$name/$t failed"
      fi
    done
  done
done

# --- report --------------------------------------------------------------------------------
mkdir -p "$ROOT/benches/results"
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ); [ "$SMOKE" = 1 ] && STAMP+="-smoke"
JSON="$ROOT/benches/results/$STAMP.json"; MD="$ROOT/benches/results/$STAMP.md"
jq -s --arg host "$(uname -srm), $(nproc) cores" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{machine:$host, loadavg_end:$load, runs:.}' "$RESULTS" >"$JSON"
python3 - "$JSON" "$MD" "$SMOKE" <<'PY'
import json, statistics, sys
data = json.load(open(sys.argv[1])); smoke = sys.argv[3] == "1"
cells = {}
for run in data["runs"]:
    cells.setdefault(run["scenario"], {}).setdefault(run["target"], []).append(run["report"])
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda v, p=2: "–" if v is None else f"{v:.{p}f}"
out = [f"# Gateway benchmark {'(smoke) ' if smoke else ''}— {sys.argv[1].rsplit('/',1)[-1][:-5]}", "",
       f"Machine: {data['machine']}; load average at the end: {data['loadavg_end']}. "
       "Medians over repeats; everything on 127.0.0.1, so compare ratios and CPU per request.", ""]
for scenario, targets in cells.items():
    direct = med([r["throughput"] for r in targets.get("direct", [])])
    out += [f"## {scenario}", "",
            "| target | req/s | × direct | p50 ms | p99 ms | first chunk p50 ms | CPU ms/req | RSS peak MiB | errors | loadavg |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for target, reps in targets.items():
        tp = med([r["throughput"] for r in reps])
        fc = [r["first_chunk_ms"]["p50"] for r in reps if r.get("first_chunk_ms")]
        cpu = [r["process"]["cpu_ms_per_request"] for r in reps if r.get("process")]
        rss = [r["process"]["rss_peak_mib"] for r in reps if r.get("process")]
        errs = sum(r["errors"] for r in reps)
        out.append(f"| {target} | {fmt(tp,0)} | {fmt(tp/direct if direct else None,3)} | "
                   f"{fmt(med([r['latency_ms']['p50'] for r in reps]),3)} | {fmt(med([r['latency_ms']['p99'] for r in reps]),3)} | "
                   f"{fmt(med(fc),3)} | {fmt(med(cpu),4)} | {fmt(med(rss),1)} | {errs} | {fmt(med([r.get('loadavg_1m') or 0 for r in reps]),2)} |")
    out.append("")
open(sys.argv[2], "w").write("\n".join(out))
PY
log "wrote $MD and $JSON"
cat "$MD"
