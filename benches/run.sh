#!/usr/bin/env bash
# Scenario runner: DataMind next to its peers, on this machine, against one mock-llm.
#
#   benches/run.sh --smoke            # a few hundred requests per target and scenario (< 1 min)
#   benches/run.sh [--repeats 3] [--duration 8] [--targets direct,nginx,datamind,datamind_cache,datamind_limits,datamind_limits_redis,litellm,portkey]
#                  [--scenarios chat_c32,stream_c1000,...] [--soak MINUTES]
#                  [--bin-dir DIR] [--out DIR] [--no-build]
#
# Targets: direct (the mock itself), nginx (plain reverse proxy, config per
# shared/notes/benchmarking.md), datamind (release gateway with a generated config: auth,
# JSON parsing, routing, metrics and the access log on), datamind_anthropic (the same gateway,
# OpenAI clients served by an Anthropic-format upstream: request and stream translation),
# datamind_cache (the gateway with the response cache on: the hit path), datamind_limits
# (rate limits, a budget and spend tracking on, in-process), datamind_limits_redis (the same
# shared in a local redis-server), datamind_traced (the gateway exporting OTLP traces of
# every request to a local discarding collector), datamind_conductor (the gateway with a
# placement policy shaped like config/examples/conductor.yaml), datamind_steal (one
# work-stealing runtime over all workers, server.work_stealing: true), datamind_unpinned
# (worker threads not pinned, server.pin_threads: false), datamind_nolog (the access log
# off: its cost), nginx_pinned (nginx with worker_cpu_affinity auto), and
# litellm / portkey when benches/peers/setup.sh installed them. Each scenario runs every target
# in turn, rotating the order each repeat (A B C, B C A, ...); the load generator samples the
# target's CPU and RSS. Results: benches/results/<date>.md, .json and .svg (--out elsewhere).
# --soak N: after the scenarios, N one-minute runs of the gateway alone at c=64, RSS each minute.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=peers/nginx_conf.sh
source "$ROOT/benches/peers/nginx_conf.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/datamind/target}
REL="$CARGO_TARGET_DIR/release"
PEERS_DIR=${PEERS_DIR:-/var/cache/datamind/peers}
KEY=sk-bench-key

SMOKE=0 REPEATS=3 DURATION=8 WARMUP=1 BUILD=1 TARGETS="" ONLY="" SOAK=0 OUT="$ROOT/benches/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --repeats) REPEATS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --scenarios) ONLY=$2; shift ;;
    --soak) SOAK=$2; shift ;;
    --bin-dir) REL=$(cd "$2" && pwd); BUILD=0; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$SMOKE" = 1 ]; then REPEATS=1; WARMUP=0; fi

WORK=$(mktemp -d /tmp/datamind-bench.XXXXXX); chmod 755 "$WORK"  # nginx workers read their config and temp dirs
mkdir -p "$WORK/logs"  # access logs, not beside the configs: the reload watcher would see every flush
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[run.sh] $*" >&2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
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
declare -A URL PID HDR STREAMS MODEL ADMIN
URL[direct]="http://$MOCK_ADDR"; PID[direct]=$MOCK_PID; HDR[direct]=""; STREAMS[direct]=1

start_nginx() { # [target name] [main-context directive]
  local name=${1:-nginx} nginx=/usr/sbin/nginx port; [ -x "$nginx" ] || return 1
  port=$(free_port)
  nginx_conf "$WORK/$name" "$port" "$MOCK_PORT" "$KEY" 2 "${2:-}"
  "$nginx" -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -g 'daemon off;' 2>"$WORK/$name/stderr" &
  PID[$name]=$!; PIDS+=("${PID[$name]}")
  URL[$name]="http://127.0.0.1:$port"; HDR[$name]="Authorization: Bearer $KEY"; STREAMS[$name]=1
  wait_http "${URL[$name]}/v1/models" 10 -H "Authorization: Bearer $KEY"
}
# nginx with each worker pinned to a CPU (not its default): the reference for the
# gateway's pinned threads (server.pin_threads, on by default where threads = CPUs).
start_nginx_pinned() { start_nginx nginx_pinned "worker_cpu_affinity auto;"; }

start_datamind() { # [target name] [extra YAML] [extra server YAML, indented]
  local name=${1:-datamind} extra=${2:-} server_extra=${3:-}
  local gw="${GW_BIN:-$REL/datamind-gateway}" port admin sha; [ -x "$gw" ] || return 1
  port=$(free_port); admin=$(free_port)
  sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
  cat >"$WORK/$name.yaml" <<CONF
server:
  listen: "127.0.0.1:$port"
  admin_listen: "127.0.0.1:$admin"
  threads: 2
$server_extra
access_log:
  enabled: ${ACCESS_LOG_ON:-true}
  path: $WORK/logs/$name-access.log
auth:
  keys:
    - name: bench
      sha256: "$sha"
providers:
  - name: up
    kind: openai
    base_url: http://127.0.0.1:$MOCK_PORT/v1
    api_key: x
  - name: up-anthropic
    kind: anthropic
    base_url: http://127.0.0.1:$MOCK_PORT/v1
    api_key: x
models:
  - name: mock
    deployments:
      - provider: up
        model: mock
  - name: mock-anthropic
    deployments:
      - provider: up-anthropic
        model: claude-mock
$extra
CONF
  "$gw" --config "$WORK/$name.yaml" >"$WORK/$name.out" 2>&1 &
  PID[$name]=$!; PIDS+=("${PID[$name]}")
  URL[$name]="http://127.0.0.1:$port"; HDR[$name]="Authorization: Bearer $KEY"; STREAMS[$name]=1
  ADMIN[$name]="http://127.0.0.1:$admin"
  wait_http "http://127.0.0.1:$admin/healthz" 20 || return 1
  if [ "$name" = datamind ]; then
    # The same process behind an Anthropic-format upstream: translation both ways.
    URL[datamind_anthropic]=${URL[datamind]}; PID[datamind_anthropic]=${PID[datamind]}
    HDR[datamind_anthropic]=${HDR[datamind]}; STREAMS[datamind_anthropic]=1
    MODEL[datamind_anthropic]=mock-anthropic
  fi
}
start_datamind_anthropic() { [ -n "${URL[datamind_anthropic]:-}" ]; }
# The same gateway with its access log off: what the log costs (nginx runs without one).
start_datamind_nolog() { ACCESS_LOG_ON=false start_datamind datamind_nolog; }
# One work-stealing runtime over all worker threads (server.work_stealing: true; the
# default is one runtime per thread).
start_datamind_steal() { start_datamind datamind_steal "" "  work_stealing: true"; }
# Per-thread runtimes left to the scheduler (server.pin_threads: false; the default pins
# them here, where the bench's 2 threads match the machine's 2 CPUs).
start_datamind_unpinned() { start_datamind datamind_unpinned "" "  pin_threads: false"; }
# A/B of two builds: GATEWAY_B=/path/to/other/datamind-gateway, same config as `datamind`
# (datamind_b) or `datamind_traced` (datamind_traced_b).
start_datamind_b() { [ -x "${GATEWAY_B:-}" ] && GW_BIN=$GATEWAY_B start_datamind datamind_b; }
start_datamind_traced_b() {
  [ -x "${GATEWAY_B:-}" ] && GW_BIN=$GATEWAY_B start_datamind_traced datamind_traced_b
}

# The same gateway with the in-memory response cache; every bench request opts in
# (x-datamind-cache: force), so after a scenario's first request this measures the hit path.
start_datamind_cache() {
  start_datamind datamind_cache "cache: { enabled: true, mode: opt_in }" || return 1
  HDR[datamind_cache]+=$'\nx-datamind-cache: force'
}

# The gateway with rate limits, a budget and spend tracking on for the bench key's tenant
# (limits far above any bench rate, so nothing is refused: this measures the admission and
# settle work), in-process; and the same with the limits shared in a local redis-server.
LIMITS_YAML='tenants:
  - name: default
    limits: { rpm: 1000000000, tpm: 1000000000000, max_concurrent: 1000000, models: { mock: { rpm: 1000000000 } } }
    budget: { period: day, hard_usd: 1000000000 }
prices:
  mock: { input: 0.15, output: 0.60 }
  claude-mock: { input: 0.80, output: 4.00 }'
start_datamind_limits() {
  start_datamind datamind_limits "$LIMITS_YAML"
}
start_datamind_limits_redis() {
  command -v redis-server >/dev/null || return 1
  local port; port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --logfile "$WORK/redis.log" >/dev/null 2>&1 &
  PIDS+=("$!")
  start_datamind datamind_limits_redis "$LIMITS_YAML
redis: { url: \"redis://127.0.0.1:$port\" }" || return 1
  # Ready means the limiter is sharing its counters in Redis.
  local admin; admin=$(sed -n 's/^  admin_listen: "\(.*\)"$/\1/p' "$WORK/datamind_limits_redis.yaml")
  for _ in $(seq 100); do
    curl -sf "http://$admin/metrics" | grep -q '^datamind_ratelimit_mode{mode="shared"} 1' && return 0
    sleep 0.1
  done
  log "datamind_limits_redis: the limiter never reached Redis"; return 1
}

# The same gateway exporting every request's spans (server + attempt) over OTLP/HTTP to a
# local collector that accepts and discards them (benches/otlp_sink.py): tracing on versus
# the plain `datamind` target is the cost of tracing.
start_datamind_traced() {
  local name=${1:-datamind_traced} sink_port; sink_port=$(free_port)
  python3 "$ROOT/benches/otlp_sink.py" "$sink_port" >"$WORK/$name-otlp-sink.out" 2>&1 &
  PIDS+=("$!")
  wait_http "http://127.0.0.1:$sink_port/healthz" 10 || return 1
  start_datamind "$name" "telemetry:
  traces:
    enabled: true
    protocol: http/protobuf
    endpoint: http://127.0.0.1:$sink_port/v1/traces"
}

# The gateway with Conductor's placement policy shaped like config/examples/conductor.yaml:
# seven deployments over five "clouds" (all served by the one mock), six rules, live
# statistics; a bench request falls through five `when`s to the AWS-burst rule, which filters
# and orders all seven deployments. Next to `datamind`, this is the cost of the policy.
start_datamind_conductor() {
  local name=datamind_conductor gw="$REL/datamind-gateway" port admin sha; [ -x "$gw" ] || return 1
  port=$(free_port); admin=$(free_port)
  sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
  {
    cat <<CONF
server: { listen: "127.0.0.1:$port", admin_listen: "127.0.0.1:$admin", threads: 2 }
access_log: { enabled: true, path: $WORK/logs/$name-access.log }
auth: { keys: [ { name: bench, sha256: "$sha" } ] }
providers:
CONF
    for p in aws-use1:aws:us-east-1 aws-euw1:aws:eu-west-1 gcp:gcp:asia-east1 azure:azure:westeurope \
             vllm-0:onprem:dc1 vllm-1:onprem:dc1 edge:cloudflare:edge; do
      IFS=: read -r pn cloud region <<<"$p"
      echo "  - { name: $pn, kind: openai, base_url: \"http://127.0.0.1:$MOCK_PORT/v1\", api_key: x, cloud: $cloud, region: $region }"
    done
    echo "models:"
    echo "  - name: mock"
    echo "    deployments:"
    for pn in aws-use1 aws-euw1 gcp azure vllm-0 vllm-1 edge; do
      echo "      - { provider: $pn, model: mock, context_window: 1048576 }"
    done
    cat <<'CONF'
policy:
  headers: [x-priority]
  rules:
    - { name: oversized-output, when: "has(request.max_tokens) && request.max_tokens > 32768", deny: { status: 400, message: too large } }
    - name: eu-residency
      when: request.tenant.residency == "eu"
      filter: (deployment.cloud == "azure" && deployment.region == "westeurope") || deployment.cloud == "onprem"
      order: deployment.ttft_p95_ms
    - name: long-prompt-onprem
      when: request.estimated_prompt_tokens > 100000
      filter: deployment.cloud == "onprem" && deployment.context_window >= request.estimated_prompt_tokens
      affinity: { key: 'request.session != "" ? request.session : request.prefix' }
    - { name: small-at-edge, when: 'request.model == "chat-small"', order: 'deployment.cloud == "cloudflare" ? 0 : 1' }
    - name: cheapest-fast
      when: '"cost" in request.tags || ("x-priority" in request.headers && request.headers["x-priority"] == "low")'
      filter: deployment.healthy && deployment.ttft_p95_ms < 800.0
      order: deployment.price_input + deployment.price_output
    - name: aws-burst-to-gcp
      filter: deployment.cloud != "aws" || deployment.in_flight < 64
      order: 'deployment.cloud == "aws" ? 0 : (deployment.cloud == "gcp" ? 1 : 2)'
CONF
  } >"$WORK/$name.yaml"
  "$gw" --config "$WORK/$name.yaml" >"$WORK/$name.out" 2>&1 &
  PID[$name]=$!; PIDS+=("${PID[$name]}")
  URL[$name]="http://127.0.0.1:$port"; HDR[$name]="Authorization: Bearer $KEY"; STREAMS[$name]=1
  wait_http "http://127.0.0.1:$admin/healthz" 20 || return 1
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
  TARGETS=direct,nginx,datamind,datamind_traced,datamind_anthropic,datamind_cache,datamind_limits,datamind_limits_redis,datamind_conductor
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
  "prompt_1mib|{\"ttft_ms\":0,\"chunk_delay_ms\":0}|-c 4 --body @BODY_1MIB ${BOUND[*]}"
  "chat_c32|{\"ttft_ms\":0,\"chunk_delay_ms\":0}|-c 32 ${BOUND[*]}"
  "chat_c64|{\"ttft_ms\":0,\"chunk_delay_ms\":0}|-c 64 ${BOUND[*]}"
  "stream_c32|{\"ttft_ms\":0,\"chunk_delay_ms\":5,\"chunks\":20}|-c 32 --stream ${SBOUND[*]}"
)
if [ "$SMOKE" = 1 ]; then
  SCENARIOS+=("stream_c200|{\"ttft_ms\":0,\"chunk_delay_ms\":5,\"chunks\":20}|-c 200 --stream --requests 400 --duration 3")
else
  SCENARIOS+=("slow_c256|{\"ttft_ms\":100,\"chunk_delay_ms\":0}|-c 256 ${BOUND[*]}")
  SCENARIOS+=("stream_c1000|{\"ttft_ms\":0,\"chunk_delay_ms\":5,\"chunks\":20}|-c 1000 --stream ${SBOUND[*]}")
fi
if [ -n "$ONLY" ]; then
  kept=(); for sc in "${SCENARIOS[@]}"; do [[ ",$ONLY," == *",${sc%%|*},"* ]] && kept+=("$sc"); done
  SCENARIOS=("${kept[@]}")
fi
# Request bodies per model: the load generator's small chat request, and a 1 MiB prompt.
body_for() { # kind model -> path
  local f="$WORK/body-$1-$2.json"
  [ -f "$f" ] || python3 - "$1" "$2" "$f" <<'PY'
import json, sys
kind, model, path = sys.argv[1:]
text = "Say hello in five words." if kind == "small" else ("lorem ipsum dolor sit amet " * 40000)[: 1 << 20]
json.dump({"model": model, "messages": [{"role": "user", "content": text}]}, open(path, "w"))
PY
  echo "$f"
}

RESULTS="$WORK/results.jsonl"; : >"$RESULTS"
for scenario in "${SCENARIOS[@]}"; do
  IFS='|' read -r name control args <<<"$scenario"
  curl -s -o /dev/null -X POST "http://$MOCK_ADDR/control" -d "$control"
  for ((r = 0; r < REPEATS; r++)); do
    n=${#ACTIVE[@]}
    for ((i = 0; i < n; i++)); do
      t=${ACTIVE[$(((i + r) % n))]}
      [[ "$args" == *--stream* && "${STREAMS[$t]}" != 1 ]] && continue
      # A thousand concurrent streams would only time out on the Python/Node peers.
      [[ "$name" == stream_c1000 && ( "$t" == litellm || "$t" == portkey ) ]] && continue
      hdr=(); while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done <<<"${HDR[$t]}"
      model=${MODEL[$t]:-mock}
      targs=${args//BODY_1MIB/$(body_for 1mib "$model")}
      [[ "$targs" == *--body* ]] || targs+=" --body @$(body_for small "$model")"
      log "$name repeat $((r + 1)) target $t"
      # shellcheck disable=SC2086
      if out=$("$BENCH" --url "${URL[$t]}/v1/chat/completions" "${hdr[@]}" --pid "${PID[$t]}" --json $targs); then
        jq -c --arg s "$name" --arg t "$t" --argjson r "$r" '{scenario:$s,target:$t,repeat:$r,report:.}' <<<"$out" >>"$RESULTS"
      else
        log "$name/$t failed"
      fi
    done
  done
done

# --- soak: the gateway alone at c=64, one report per minute ------------------------------
if [ "$SOAK" -gt 0 ] && [ -n "${URL[datamind]:-}" ]; then
  curl -s -o /dev/null -X POST "http://$MOCK_ADDR/control" -d '{"ttft_ms":0,"chunk_delay_ms":0}'
  for ((m = 0; m < SOAK; m++)); do
    log "soak minute $((m + 1))/$SOAK"
    # ~1 GB of access log a minute: emptied each minute (the gateway appends, so it keeps
    # writing to the file as before) instead of filling the disk with 10 GB.
    : >"$WORK/logs/datamind-access.log"
    if out=$("$BENCH" --url "${URL[datamind]}/v1/chat/completions" -H "${HDR[datamind]}" --pid "${PID[datamind]}" \
        --json -c 64 --duration 60 --body @"$(body_for small mock)"); then
      # Evidence for RSS steps: access-log lines dropped so far (its queue full), the CPU
      # seconds of the gateway's access-log thread, and the machine's load.
      dropped=$(curl -s "${ADMIN[datamind]}/metrics" | awk '/^datamind_access_log_dropped_total /{print $2}')
      logcpu=$(for t in /proc/"${PID[datamind]}"/task/*; do
        if [ "$(cat "$t/comm")" = access-log ]; then awk '{print ($14 + $15) / 100}' "$t/stat"; fi
      done)
      # Transparent huge pages in the gateway's memory (the gateway turns THP off; a step in
      # RSS with this column rising is khugepaged filling sparse heap regions).
      huge=$(awk '/^AnonHugePages:/{print $2 / 1024}' /proc/"${PID[datamind]}"/smaps_rollup 2>/dev/null)
      jq -c --argjson r "$m" --arg d "${dropped:-}" --arg c "${logcpu:-}" --arg l "$(cut -d' ' -f1 /proc/loadavg)" \
        --arg h "${huge:-}" \
        '{scenario:"soak_c64",target:"datamind",repeat:$r,report:.,
          access_log_dropped:($d|tonumber? // null),access_log_cpu_s:($c|tonumber? // null),loadavg:($l|tonumber? // null),
          anon_huge_mib:($h|tonumber? // null)}' \
        <<<"$out" >>"$RESULTS"
    fi
  done
fi

# --- report --------------------------------------------------------------------------------
mkdir -p "$OUT"
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ); [ "$SMOKE" = 1 ] && STAMP+="-smoke"
JSON="$OUT/$STAMP.json"; MD="$OUT/$STAMP.md"; SVG="$OUT/$STAMP.svg"
jq -s --arg host "$(uname -srm), $(nproc) cores" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{machine:$host, loadavg_end:$load, runs:.}' "$RESULTS" >"$JSON"
python3 - "$JSON" "$MD" "$SMOKE" "$SVG" <<'PY'
import json, math, statistics, sys
data = json.load(open(sys.argv[1])); smoke = sys.argv[3] == "1"
cells, soak = {}, []
for run in data["runs"]:
    if run["scenario"] == "soak_c64":
        soak.append(dict(run["report"], _extra={k: run.get(k) for k in
                    ("access_log_dropped", "access_log_cpu_s", "loadavg", "anon_huge_mib")})); continue
    cells.setdefault(run["scenario"], {}).setdefault(run["target"], []).append(
        dict(run["report"], _repeat=run.get("repeat")))
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda v, p=2: "–" if v is None else f"{v:.{p}f}"
out = [f"# Gateway benchmark {'(smoke) ' if smoke else ''}— {sys.argv[1].rsplit('/',1)[-1][:-5]}", "",
       f"Machine: {data['machine']}; load average at the end: {data['loadavg_end']}. "
       "Medians over repeats; everything on 127.0.0.1, so compare ratios and CPU per request.", ""]
for scenario, targets in cells.items():
    direct = med([r["throughput"] for r in targets.get("direct", [])])
    nginx = med([r["throughput"] for r in targets.get("nginx", [])])
    out += [f"## {scenario}", "",
            "| target | req/s | × direct | × nginx | p50 ms | p99 ms | first chunk p50 ms | chunk gap p99 ms | CPU ms/req | RSS peak MiB | errors | loadavg |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for target, reps in targets.items():
        tp = med([r["throughput"] for r in reps])
        fc = [r["first_chunk_ms"]["p50"] for r in reps if r.get("first_chunk_ms")]
        cpu = [r["process"]["cpu_ms_per_request"] for r in reps if r.get("process")]
        rss = [r["process"]["rss_peak_mib"] for r in reps if r.get("process")]
        gap = [r["chunk_gap_ms"]["p99"] for r in reps if r.get("chunk_gap_ms")]
        errs = sum(r["errors"] for r in reps)
        out.append(f"| {target} | {fmt(tp,0)} | {fmt(tp/direct if direct else None,3)} | {fmt(tp/nginx if nginx else None,3)} | "
                   f"{fmt(med([r['latency_ms']['p50'] for r in reps]),3)} | {fmt(med([r['latency_ms']['p99'] for r in reps]),3)} | "
                   f"{fmt(med(fc),3)} | {fmt(med(gap),3)} | {fmt(med(cpu),4)} | {fmt(med(rss),1)} | {errs} | {fmt(med([r.get('loadavg_1m') or 0 for r in reps]),2)} |")
    out.append("")
# Paired ratios: targets run back to back within a repeat (A B C, then B C A, ...), so the
# ratio of two targets' throughput in the same repeat cancels most of what the machine's
# load did to both; the median and range of those ratios say more than a ratio of medians.
PAIRS = [("datamind", "nginx"), ("datamind_traced", "datamind"), ("datamind_b", "datamind"),
         ("datamind_traced_b", "datamind_b"), ("datamind_steal", "datamind"),
         ("datamind_nolog", "datamind"), ("datamind_unpinned", "datamind"),
         ("datamind", "nginx_pinned"), ("nginx_pinned", "nginx")]
paired = []
for scenario, targets in cells.items():
    for a, b in PAIRS:
        if a not in targets or b not in targets:
            continue
        by_rep = {r["_repeat"]: r["throughput"] for r in targets[b]}
        ratios = sorted(r["throughput"] / by_rep[r["_repeat"]] for r in targets[a]
                        if by_rep.get(r["_repeat"]))
        if ratios:
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
            paired.append(f"| {scenario} | {a} / {b} | {len(ratios)} | {med(ratios):.3f} | "
                          f"{q[0]:.3f}–{q[2]:.3f} | {ratios[0]:.3f}–{ratios[-1]:.3f} |")
if paired:
    out += ["## Paired throughput ratios (same repeat)", "",
            "| scenario | ratio | repeats | median | quartiles | range |", "|---|---|---|---|---|---|",
            *paired, ""]
if soak:
    rss = [r["process"]["rss_mean_mib"] for r in soak if r.get("process")]
    out += ["## soak_c64 (datamind alone, one row per minute)", "",
            "| minute | req/s | p99 ms | RSS mean MiB | huge pages MiB | errors | access-log lines dropped (total) | access-log thread CPU s (total) | loadavg |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(soak):
        x = r.get("_extra") or {}
        out.append(f"| {i + 1} | {r['throughput']:.0f} | {r['latency_ms']['p99']:.3f} | "
                   f"{fmt(r['process']['rss_mean_mib'] if r.get('process') else None,1)} | "
                   f"{fmt(x.get('anon_huge_mib'), 0)} | {r['errors']} | "
                   f"{fmt(x.get('access_log_dropped'), 0)} | {fmt(x.get('access_log_cpu_s'), 1)} | "
                   f"{fmt(x.get('loadavg'), 2)} |")
    if len(rss) > 1:
        out += ["", f"RSS drift, last minute over first: {100 * (rss[-1] / rss[0] - 1):+.1f}%"]
    if len(rss) > 2:
        # The first minute is the ramp from whatever the scenarios before left behind.
        out += [f"RSS drift after the first minute (steady state), last over second: "
                f"{100 * (rss[-1] / rss[1] - 1):+.1f}%; range over minutes 2-{len(rss)}: "
                f"{min(rss[1:]):.1f}-{max(rss[1:]):.1f} MiB"]
    out.append("")
open(sys.argv[2], "w").write("\n".join(out))

# SVG: throughput per scenario and target, relative to direct, on a log axis.
colors = {"direct": "#777", "nginx": "#2a9d8f", "datamind": "#e76f51", "datamind_anthropic": "#f4a261",
          "datamind_limits": "#b5651d", "datamind_limits_redis": "#8c2f39",
          "litellm": "#264653", "portkey": "#8d99ae"}
rows = []
for scenario, targets in cells.items():
    direct = med([r["throughput"] for r in targets.get("direct", [])])
    for target, reps in targets.items():
        tp = med([r["throughput"] for r in reps])
        if direct and tp:
            rows.append((scenario, target, tp, tp / direct))
W, bar, left, right = 900, 16, 230, 120
H = 50 + len(rows) * (bar + 4) + 12 * len(cells)
lo = 1e-3
x = lambda v: left + (W - left - right) * (math.log10(max(v, lo)) - math.log10(lo)) / -math.log10(lo)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<text x="10" y="20" font-size="14">Throughput relative to direct (log scale) — {sys.argv[1].rsplit("/",1)[-1][:-5]}</text>']
for v in (0.001, 0.01, 0.1, 1):
    svg.append(f'<line x1="{x(v):.1f}" y1="30" x2="{x(v):.1f}" y2="{H - 5}" stroke="#ddd"/>'
               f'<text x="{x(v):.1f}" y="42" text-anchor="middle" fill="#555">{v:g}×</text>')
y, last = 50, None
for scenario, target, tp, rel in rows:
    if scenario != last:
        y += 12; last = scenario
    svg.append(f'<text x="10" y="{y + 12}">{scenario} · {target}</text>'
               f'<rect x="{left}" y="{y}" width="{max(x(rel) - left, 1):.1f}" height="{bar}" fill="{colors.get(target, "#999")}"/>'
               f'<text x="{x(rel) + 4:.1f}" y="{y + 12}">{tp:,.0f} req/s ({rel:.3f}×)</text>')
    y += bar + 4
svg.append("</svg>")
open(sys.argv[4], "w").write("\n".join(svg))
PY
log "wrote $MD, $JSON and $SVG"
cat "$MD"
