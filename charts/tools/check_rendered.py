#!/usr/bin/env python3
"""Checks `helm template` output of charts/datamind offline.

usage: check_rendered.py --rendered FILE --values-name NAME [--values FILE ...]
                         [--kube-version 1.32.0] [--gateway-out DIR] [--seed-sizes]

Each check prints one line, "PASS <check> <values-name>" or "FAIL <check> <values-name>",
with its problems indented below; the exit code is 1 when any check failed.

Checks:
  k8s-schema     every core object against the Kubernetes JSON schemas of kubernetes-validate
                 (strict: unknown fields are errors), all errors per object
  cr-fields      every custom resource (operators', KEDA, Istio, prometheus-operator) against
                 cr-subset.schema.json: unknown fields rejected, KEDA trigger metadata keys checked
  selectors      workload selectors match their pod labels; every Service, PDB, component
                 NetworkPolicy and autoscaler points at something the chart renders
  security       every container: requests and limits, non-root, no privilege escalation,
                 all capabilities dropped, read-only root filesystem, seccomp RuntimeDefault
  pdb            every Deployment/StatefulSet has a PDB selecting it, or a stated reason
                 (annotation datamind.io/no-pdb-reason); every DaemonSet states its reason
  default-deny   with networking.networkPolicies.enabled, every namespace of the chart has a
                 default-deny NetworkPolicy for ingress and egress
  no-secrets     no Secret objects, no secret-looking env var with a literal value, no key,
                 token or private key in plain text, every api_key in the gateway config is ${VAR}
  gateway        terminationGracePeriodSeconds above shutdown_grace_seconds, probes on the admin
                 listener, every ${VAR} of the config backed by a secretKeyRef env; writes
                 gateway.yaml and env.list to --gateway-out for `datamind-gateway check`
  seed-sizes     (--seed-sizes) the sizes the seed topology asks for
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource

HERE = Path(__file__).resolve().parent
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
OPERATOR_GROUPS = ("postgresql.cnpg.io", "kafka.strimzi.io", "flink.apache.org")
OPTIONAL_GROUPS = ("keda.sh", "security.istio.io", "monitoring.coreos.com")  # also validate-crds.mjs


# === helpers ===

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def ident(o: dict) -> str:
    md = o.get("metadata", {})
    return f"{o.get('kind')} {md.get('namespace', '-')}/{md.get('name')}"


def group_of(o: dict) -> str:
    av = o.get("apiVersion", "")
    return av.split("/")[0] if "/" in av else ""


def subset(sel: dict, labels: dict) -> bool:
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def pod_template(o: dict) -> dict | None:
    if o["kind"] in WORKLOADS:
        return o["spec"]["template"]
    if o["kind"] == "Pod":
        return o
    return None


class Check:
    def __init__(self, name: str):
        self.name, self.problems = name, []

    def fail(self, msg: str) -> None:
        self.problems.append(msg)


# === k8s-schema ===

class CoreSchemas:
    """kubernetes-validate's bundled schemas, one validator per kind, all errors reported."""

    def __init__(self, kube_version: str):
        import kubernetes_validate.utils as kv
        self.kv = kv
        mm = kv.major_minor(kube_version)
        version = [v for v in kv.all_versions() if kv.major_minor(v) <= mm][-1]
        self.dir = Path(kv.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
        defs = json.loads((self.dir / "_definitions.json").read_text())
        self.registry = Resource.from_contents(defs) @ Registry()
        self.cache: dict[str, jsonschema.protocols.Validator | None] = {}

    def validator(self, o: dict):
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", o["apiVersion"])
        name = f"{o['kind'].lower()}-{api}.json"
        if name not in self.cache:
            path = self.dir / name
            if not path.exists():
                self.cache[name] = None
            else:
                schema = json.loads(path.read_text())
                registry = Resource.from_contents(schema) @ self.registry
                self.cache[name] = jsonschema.validators.Draft202012Validator(schema, registry=registry)
        return self.cache[name]


def check_k8s_schema(docs, kube_version) -> Check:
    c = Check("k8s-schema")
    schemas = CoreSchemas(kube_version)
    for o in docs:
        if group_of(o) in OPERATOR_GROUPS + OPTIONAL_GROUPS:
            continue
        v = schemas.validator(o)
        if v is None:
            c.fail(f"{ident(o)}: no Kubernetes {kube_version} schema for {o['apiVersion']} {o['kind']}")
            continue
        for e in sorted(v.iter_errors(o), key=lambda e: list(map(str, e.absolute_path))):
            path = ".".join(map(str, e.absolute_path)) or "(root)"
            c.fail(f"{ident(o)}: {path}: {e.message[:300]}")
    return c


# === cr-fields ===

def check_cr_fields(docs) -> Check:
    c = Check("cr-fields")
    bundle = json.loads((HERE / "cr-subset.schema.json").read_text())
    for o in docs:
        if group_of(o) not in OPERATOR_GROUPS + OPTIONAL_GROUPS:
            continue
        key = f"{o['apiVersion']} {o['kind']}"
        if key not in bundle:
            c.fail(f"{ident(o)}: no schema for {key} in cr-subset.schema.json")
            continue
        schema = {"definitions": bundle["definitions"], **bundle[key]}
        for e in jsonschema.Draft7Validator(schema).iter_errors(o):
            path = ".".join(map(str, e.absolute_path)) or "(root)"
            c.fail(f"{ident(o)}: {path}: {e.message[:300]}")
    return c


# === selectors ===

def operator_pod_labels(o: dict) -> list[dict]:
    """Labels the chart puts on pods an operator creates from this CR."""
    s = o.get("spec", {})
    if o["kind"] == "Cluster":
        return [s.get("inheritedMetadata", {}).get("labels", {})]
    if o["kind"] == "KafkaNodePool":
        return [s.get("template", {}).get("pod", {}).get("metadata", {}).get("labels", {})]
    if o["kind"] == "FlinkDeployment":
        common = s.get("podTemplate", {}).get("metadata", {}).get("labels", {})
        return [{**common, **s.get(r, {}).get("podTemplate", {}).get("metadata", {}).get("labels", {})}
                for r in ("jobManager", "taskManager")]
    return []


def check_selectors(docs) -> Check:
    c = Check("selectors")
    pods: list[tuple[str, dict]] = []  # (namespace, labels)
    targets = set()
    for o in docs:
        ns = o["metadata"].get("namespace")
        if o["kind"] in WORKLOADS:
            sel = o["spec"]["selector"].get("matchLabels", {})
            labels = o["spec"]["template"]["metadata"].get("labels", {})
            if not subset(sel, labels):
                c.fail(f"{ident(o)}: selector {sel} does not match its pod labels")
            pods.append((ns, labels))
            targets.add((o["apiVersion"], o["kind"], ns, o["metadata"]["name"]))
        elif group_of(o) in OPERATOR_GROUPS:
            pods.extend((ns, l) for l in operator_pod_labels(o) if l)
            targets.add((o["apiVersion"], o["kind"], ns, o["metadata"]["name"]))

    def selects(ns, sel):
        return any(pns == ns and subset(sel, l) for pns, l in pods)

    for o in docs:
        ns = o["metadata"].get("namespace")
        k = o["kind"]
        if k == "Service" and o["spec"].get("selector"):
            if not selects(ns, o["spec"]["selector"]):
                c.fail(f"{ident(o)}: selector {o['spec']['selector']} matches no pod the chart renders")
        elif k == "PodDisruptionBudget":
            if not selects(ns, o["spec"]["selector"].get("matchLabels", {})):
                c.fail(f"{ident(o)}: selects no pod the chart renders")
        elif k == "NetworkPolicy":
            sel = o["spec"]["podSelector"].get("matchLabels", {})
            if sel and "datamind.io/helm-test" not in sel and not selects(ns, sel):
                c.fail(f"{ident(o)}: podSelector {sel} matches no pod the chart renders")
        elif k in ("HorizontalPodAutoscaler", "ScaledObject"):
            ref = o["spec"]["scaleTargetRef"]
            key = (ref.get("apiVersion", "apps/v1"), ref["kind"], ns, ref["name"])
            if key not in targets:
                c.fail(f"{ident(o)}: scaleTargetRef {key[1]} {key[3]} is not rendered")
    return c


# === security ===

def check_security(docs) -> Check:
    c = Check("security")
    for o in docs:
        t = pod_template(o)
        if t is None:
            continue
        spec = t["spec"]
        psc = spec.get("securityContext", {})
        for ct in spec.get("initContainers", []) + spec.get("containers", []):
            where = f"{ident(o)} container {ct['name']}"
            res = ct.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        c.fail(f"{where}: resources.{part}.{r} is not set")
            sc = ct.get("securityContext", {})
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if non_root is not True:
                c.fail(f"{where}: runAsNonRoot is not true")
            if uid == 0:
                c.fail(f"{where}: runs as uid 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                c.fail(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                c.fail(f"{where}: privileged")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                c.fail(f"{where}: capabilities.drop lacks ALL")
            if sc.get("capabilities", {}).get("add"):
                c.fail(f"{where}: adds capabilities {sc['capabilities']['add']}")
            if sc.get("readOnlyRootFilesystem") is not True:
                c.fail(f"{where}: readOnlyRootFilesystem is not true")
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
            if seccomp != "RuntimeDefault":
                c.fail(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            c.fail(f"{ident(o)}: uses host namespaces")
    return c


# === pdb ===

def check_pdb(docs) -> Check:
    c = Check("pdb")
    pdbs = [o for o in docs if o["kind"] == "PodDisruptionBudget"]
    for o in docs:
        if o["kind"] not in WORKLOADS:
            continue
        reason = o["metadata"].get("annotations", {}).get("datamind.io/no-pdb-reason", "").strip()
        labels = o["spec"]["template"]["metadata"].get("labels", {})
        ns = o["metadata"]["namespace"]
        covered = any(p["metadata"]["namespace"] == ns and subset(p["spec"]["selector"].get("matchLabels", {}), labels)
                      for p in pdbs)
        if o["kind"] == "DaemonSet" and not reason:
            c.fail(f"{ident(o)}: DaemonSet without a datamind.io/no-pdb-reason annotation")
        elif not covered and not reason:
            c.fail(f"{ident(o)}: no PodDisruptionBudget selects it and no datamind.io/no-pdb-reason is given")
        elif covered and reason:
            c.fail(f"{ident(o)}: has both a PodDisruptionBudget and a no-pdb reason")
    return c


# === default-deny ===

def check_default_deny(docs, values) -> Check:
    c = Check("default-deny")
    if not values["networking"]["networkPolicies"]["enabled"]:
        if any(o["kind"] == "NetworkPolicy" for o in docs):
            c.fail("networkPolicies.enabled is false but NetworkPolicies were rendered")
        return c
    namespaces = {o["metadata"]["namespace"] for o in docs if o["metadata"].get("namespace")}
    namespaces |= {o["metadata"]["name"] for o in docs if o["kind"] == "Namespace"}
    for ns in sorted(namespaces):
        if not any(o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == ns
                   and o["spec"].get("podSelector") == {}
                   and set(o["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                   and not o["spec"].get("ingress") and not o["spec"].get("egress")
                   for o in docs):
            c.fail(f"namespace {ns}: no default-deny NetworkPolicy (podSelector {{}}, Ingress+Egress, no rules)")
    return c


# === no-secrets ===

SECRET_NAME = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET|SALT|CREDENTIAL|DATABASE_URL)", re.I)
SECRET_TEXT = [
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "an OpenAI-style key (sk-...)"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "a Hugging Face token"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "credentials in a URL"),
]


def check_no_secrets(docs, text) -> Check:
    c = Check("no-secrets")
    for o in docs:
        if o["kind"] == "Secret":
            c.fail(f"{ident(o)}: the chart must not render Secrets (reference existing ones)")
        t = pod_template(o)
        if t is not None:
            for ct in t["spec"].get("containers", []) + t["spec"].get("initContainers", []):
                for e in ct.get("env", []):
                    if "value" in e and SECRET_NAME.search(e["name"]) and e["value"] not in ("", None):
                        c.fail(f"{ident(o)} container {ct['name']}: env {e['name']} has a literal value; use secretKeyRef")
    for pattern, what in SECRET_TEXT:
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            c.fail(f"rendered line {line}: looks like {what}")
    for o in docs:
        if o["kind"] == "ConfigMap" and "gateway.yaml" in o.get("data", {}):
            cfg = yaml.safe_load(o["data"]["gateway.yaml"])
            for i, p in enumerate(cfg.get("providers", [])):
                key = p.get("api_key")
                if key is not None and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", str(key)):
                    c.fail(f"{ident(o)}: providers[{i}].api_key is not a ${{VAR}} reference")
    return c


# === gateway ===

def check_gateway(docs, out: Path | None) -> Check:
    c = Check("gateway")
    cms = [o for o in docs if o["kind"] == "ConfigMap" and "gateway.yaml" in o.get("data", {})]
    deps = [o for o in docs if o["kind"] == "Deployment"
            and o["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway"]
    if len(cms) != 1 or len(deps) != 1:
        c.fail(f"expected one gateway ConfigMap and one Deployment, found {len(cms)} and {len(deps)}")
        return c
    text = cms[0]["data"]["gateway.yaml"]
    cfg = yaml.safe_load(text)
    dep = deps[0]
    spec = dep["spec"]["template"]["spec"]
    ct = spec["containers"][0]
    grace = cfg.get("server", {}).get("shutdown_grace_seconds", 30)
    pre_stop = 0
    cmd = ct.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(cmd) == 2 and cmd[0].endswith("sleep"):
        pre_stop = int(cmd[1])
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    if tgps <= grace + pre_stop:
        c.fail(f"terminationGracePeriodSeconds {tgps} is not above preStop {pre_stop}s + shutdown_grace_seconds {grace}")
    admin_port = int(str(cfg["server"]["admin_listen"]).rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in ct.get("ports", [])}
    if ports.get("admin") != admin_port:
        c.fail(f"container port 'admin' is {ports.get('admin')}, the config's admin_listen port is {admin_port}")
    api_port = int(str(cfg["server"]["listen"]).rsplit(":", 1)[1])
    if ports.get("api") != api_port:
        c.fail(f"container port 'api' is {ports.get('api')}, the config's listen port is {api_port}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = ct.get(probe, {}).get("httpGet", {})
        if g.get("path") != path or g.get("port") not in ("admin", admin_port):
            c.fail(f"{probe} is {g}, expected GET {path} on the admin port")
    env = {e["name"]: e for e in ct.get("env", [])}
    # Same rules as the gateway: comment lines are not interpolated, $${ is a literal.
    refs = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        refs |= set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", line))
    for var in sorted(refs):
        e = env.get(var)
        if e is None:
            c.fail(f"config uses ${{{var}}} but the Deployment sets no env {var}")
        elif "secretKeyRef" not in e.get("valueFrom", {}):
            c.fail(f"env {var} is not a secretKeyRef")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gateway.yaml").write_text(text)
        (out / "env.list").write_text("".join(f"{n}\n" for n in sorted(env) if "valueFrom" in env[n]))
    return c


# === seed-sizes ===

SEED = {
    # component: (kind, replicas or None when autoscaled, (min, max) or None)
    "gateway": ("Deployment", None, (3, 20)),
    "langgraph-orchestrator": ("Deployment", 2, None),
    "crewai-teams": ("Deployment", None, (3, 50)),
    "autogen-critic": ("Deployment", 1, None),
    "workforce-manager": ("Deployment", 2, None),
    "python-sandbox": ("Deployment", None, (5, 30)),
    "sql-executor": ("Deployment", None, (3, 30)),
    "visualization": ("Deployment", None, (3, 30)),
    "knowledge-base": ("Deployment", None, (3, 30)),
    "report-generator": ("Deployment", None, (2, 30)),
    "data-connector": ("Deployment", None, (3, 30)),
    "vllm": ("StatefulSet", None, (1, 5)),
    "ollama": ("Deployment", 2, None),
    "clickhouse": ("StatefulSet", 3, None),
    "qdrant": ("StatefulSet", 3, None),
    "redis": ("StatefulSet", 3, None),
    "mongodb": ("StatefulSet", 3, None),
    "otel-collector": ("DaemonSet", None, None),
}


def check_seed_sizes(docs) -> Check:
    c = Check("seed-sizes")
    by_component = {}
    for o in docs:
        comp = o["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        by_component.setdefault(comp, []).append(o)
    for comp, (kind, replicas, bounds) in SEED.items():
        objs = by_component.get(comp, [])
        w = [o for o in objs if o["kind"] == kind]
        if len(w) != 1:
            c.fail(f"{comp}: expected one {kind}, found {len(w)}")
            continue
        if replicas is not None and w[0]["spec"].get("replicas") != replicas:
            c.fail(f"{comp}: replicas {w[0]['spec'].get('replicas')}, seed says {replicas}")
        if bounds:
            a = [o for o in objs if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
            got = [(o["spec"].get("minReplicas", o["spec"].get("minReplicaCount")),
                    o["spec"].get("maxReplicas", o["spec"].get("maxReplicaCount"))) for o in a]
            if got != [bounds]:
                c.fail(f"{comp}: autoscaling {got}, seed says {bounds}")
        if comp == "python-sandbox":
            res = w[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
            if (str(res.get("cpu")), res.get("memory")) != ("2", "4Gi"):
                c.fail(f"python-sandbox requests {res}, seed says 2 CPU / 4Gi")
        if comp == "vllm":
            lim = w[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
            if not lim.get("nvidia.com/gpu"):
                c.fail("vllm has no nvidia.com/gpu limit")
    # Operator-backed data services and their sizes.
    def one(kind):
        return [o for o in docs if o["kind"] == kind]
    checks = [
        ("Cluster", lambda o: o["spec"]["instances"] == 3, "PostgreSQL Cluster with 3 instances"),
        ("KafkaNodePool", lambda o: o["spec"]["replicas"] == 5, "Kafka node pool of 5 brokers"),
        ("FlinkDeployment", lambda o: o["spec"]["jobManager"]["replicas"] == 1 and o["spec"]["taskManager"]["replicas"] == 4,
         "FlinkDeployment with 1 JobManager and 4 TaskManagers"),
    ]
    for kind, ok, what in checks:
        objs = one(kind)
        if len(objs) != 1 or not ok(objs[0]):
            c.fail(f"expected a {what}")
    flink = [o for o in docs if o["kind"] == "ScaledObject" and o["spec"]["scaleTargetRef"]["kind"] == "FlinkDeployment"]
    if [(o["spec"]["minReplicaCount"], o["spec"]["maxReplicaCount"]) for o in flink] != [(4, 20)]:
        c.fail("expected a ScaledObject 4→20 on the FlinkDeployment")
    triggers = {o["metadata"]["labels"]["app.kubernetes.io/component"]: sorted(t["type"] for t in o["spec"]["triggers"])
                for o in one("ScaledObject")}
    want = {"crewai-teams": ["kafka"], "python-sandbox": ["cpu", "prometheus"], "vllm": ["prometheus", "prometheus"],
            "flink-taskmanager": ["kafka"]}
    for comp, types in want.items():
        if triggers.get(comp) != types:
            c.fail(f"{comp}: KEDA triggers {triggers.get(comp)}, expected {types}")
    # The inference pool's "query queue depth" trigger reads the gateway's own gauge for the
    # deployments of the provider that points at the pool, never the in-flight count.
    queries = {o["metadata"]["labels"]["app.kubernetes.io/component"]:
               [t["metadata"].get("query", "") for t in o["spec"]["triggers"] if t["type"] == "prometheus"]
               for o in one("ScaledObject")}
    if not any(q.startswith("sum(datamind_deployment_queue_depth{") and 'deployment=~"(vllm)/.+"' in q
               for q in queries.get("vllm", [])):
        c.fail(f"vllm: no queue-depth trigger on datamind_deployment_queue_depth for the vllm provider: {queries.get('vllm')}")
    if any("datamind_requests_in_flight" in q for qs in queries.values() for q in qs):
        c.fail("a KEDA trigger scales on datamind_requests_in_flight; the queue-depth trigger reads datamind_deployment_queue_depth")
    if not any(o["kind"] == "PeerAuthentication" and o["spec"]["mtls"]["mode"] == "STRICT" for o in docs):
        c.fail("no PeerAuthentication with mTLS STRICT")
    return c


# === main ===

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rendered", required=True, type=Path)
    ap.add_argument("--values-name", required=True)
    ap.add_argument("--values", action="append", default=[], type=Path,
                    help="values files given to helm, in order (merged over the chart's values.yaml)")
    ap.add_argument("--chart", type=Path, default=HERE.parent / "datamind")
    ap.add_argument("--kube-version", default="1.32.0")
    ap.add_argument("--gateway-out", type=Path)
    ap.add_argument("--seed-sizes", action="store_true")
    a = ap.parse_args()

    text = a.rendered.read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    values = yaml.safe_load((a.chart / "values.yaml").read_text())
    for f in a.values:
        values = deep_merge(values, yaml.safe_load(f.read_text()) or {})

    checks = [
        check_k8s_schema(docs, a.kube_version),
        check_cr_fields(docs),
        check_selectors(docs),
        check_security(docs),
        check_pdb(docs),
        check_default_deny(docs, values),
        check_no_secrets(docs, text),
        check_gateway(docs, a.gateway_out),
    ]
    if a.seed_sizes:
        checks.append(check_seed_sizes(docs))
    failed = 0
    for c in checks:
        print(f"{'FAIL' if c.problems else 'PASS'} {c.name} {a.values_name}")
        for p in c.problems[:40]:
            print(f"    {p}")
        if len(c.problems) > 40:
            print(f"    ... and {len(c.problems) - 40} more")
        failed += bool(c.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
