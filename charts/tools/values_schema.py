#!/usr/bin/env python3
"""Generates charts/datamind/values.schema.json: every key of values.yaml, unknown keys
rejected, types, ranges and enums. Edit this file, not the JSON, then run it:
  python3 charts/tools/values_schema.py          # rewrite the schema
  python3 charts/tools/values_schema.py --check  # exit 1 when the committed schema differs
charts/test.sh runs --check, so the two cannot drift.
"""
import json
import sys
from pathlib import Path

S=lambda **k: {"type":"string",**k}
I=lambda **k: {"type":"integer",**k}
B={"type":"boolean"}
def O(props, req=None, extra=False, **k):
    d={"type":"object","properties":props,"additionalProperties":extra}
    if req: d["required"]=req
    d.update(k); return d
def A(items, **k): return {"type":"array","items":items,**k}
strmap={"type":"object","additionalProperties":{"type":"string"}}
anyobj={"type":"object"}
name_re="^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
quantity={"anyOf":[S(pattern="^[0-9]+(\\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"),{"type":"number","minimum":0}]}
resources=O({"requests":{"type":"object","properties":{"cpu":quantity,"memory":quantity},"additionalProperties":quantity,"required":["cpu","memory"]},
             "limits":{"type":"object","properties":{"cpu":quantity,"memory":quantity},"additionalProperties":quantity,"required":["cpu","memory"]}},
            req=["requests","limits"])
seccomp=O({"type":{"enum":["RuntimeDefault","Localhost","Unconfined"]},"localhostProfile":S()},req=["type"])
podsc=O({"runAsNonRoot":{"const":True},"runAsUser":I(minimum=1),"runAsGroup":I(minimum=0),"fsGroup":I(minimum=0),
         "fsGroupChangePolicy":{"enum":["Always","OnRootMismatch"]},"supplementalGroups":A(I()),"seccompProfile":seccomp},req=["runAsNonRoot"])
ctsc=O({"runAsNonRoot":{"const":True},"runAsUser":I(minimum=1),"runAsGroup":I(minimum=0),"allowPrivilegeEscalation":{"const":False},
        "readOnlyRootFilesystem":B,"privileged":{"const":False},
        "capabilities":O({"drop":A(S()),"add":A(S(),maxItems=0)}),"seccompProfile":seccomp},req=["runAsNonRoot","allowPrivilegeEscalation"])
image=O({"registry":S(),"repository":S(minLength=1),"tag":{"type":["string","number"]},"digest":S(pattern="^(sha256:[a-f0-9]{64})?$"),
         "pullPolicy":{"enum":["Always","IfNotPresent","Never"]}},req=["repository"])
port=O({"name":S(pattern="^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",maxLength=15),"port":I(minimum=1,maximum=65535)},req=["name","port"])
probe=O({"type":{"enum":["http","tcp"]},"path":S(pattern="^/"),"port":S(),"initialDelaySeconds":I(minimum=0)},req=["type","port"])
secretRef=O({"secretName":S(pattern=name_re),"key":S(minLength=1),"optional":B},req=["secretName","key"])
groups=["gateway","agents","mcp-tools","inference","data","observability"]
groupEnum={"enum":groups}
keda=O({"cpuPercent":I(minimum=1,maximum=100),
        "kafkaLag":O({"topic":S(minLength=1),"consumerGroup":S(minLength=1),"lagThreshold":I(minimum=1)},req=["topic","consumerGroup","lagThreshold"]),
        "gatewayQueueDepth":I(minimum=1),"gpuMemoryPercent":I(minimum=1,maximum=100)})
autoscaling=O({"enabled":B,"minReplicas":I(minimum=0),"maxReplicas":I(minimum=1),"keda":keda})
sidecar=O({"name":S(pattern=name_re),"image":image,"command":A(S()),"args":A(S()),"ports":A(port),"resources":resources},req=["name","image","resources"])
componentProps={
 "enabled":B,"group":groupEnum,"kind":{"enum":["Deployment","StatefulSet","DaemonSet"]},
 "replicas":I(minimum=0),"replicasWithoutOperator":I(minimum=0),"image":image,"command":A(S()),"args":A(S()),
 "env":{"type":"object","propertyNames":{"pattern":"^[A-Za-z_][A-Za-z0-9_]*$"},"additionalProperties":{"type":["string","number","boolean"]}},
 "secretEnv":{"type":"object","propertyNames":{"pattern":"^[A-Za-z_][A-Za-z0-9_]*$"},"additionalProperties":secretRef},
 "ports":A(port),"probe":{"anyOf":[probe,{"type":"object","maxProperties":0}]},"gpu":I(minimum=0),
 "persistence":O({"enabled":B,"size":S(pattern="^[0-9]+(Mi|Gi|Ti)$"),"mountPath":S(pattern="^/"),"storageClass":S()}),
 "writablePaths":A(S(pattern="^/")),"seededPaths":A(S(pattern="^/")),"configFiles":{"type":"object","additionalProperties":{"type":"string"}},"configMountPath":S(pattern="^/"),
 "sidecars":A(sidecar),"podSecurityContext":podsc,"containerSecurityContext":ctsc,
 "pdb":O({"enabled":B,"minAvailable":I(minimum=0),"reason":S()}),
 "autoscaling":autoscaling,
 "allowFrom":A({"anyOf":[groupEnum,S(pattern="^component:[a-z0-9-]+$")]}),
 "metricsPort":S(),"replacedByOperator":{"enum":["","cloudnativePG","strimzi","flink"]},
 "clusterRules":A(anyobj),"nodeSelector":strmap,"tolerations":A(anyobj),"affinity":anyobj,"podAnnotations":strmap,
 "dashboards":B,
 "resources":resources,
}
componentDefaults=O({k:v for k,v in componentProps.items() if k not in ("group","image","resources","dashboards","replicasWithoutOperator")})
component=O(componentProps, req=["group","image","resources"])
# The gateway config (config/README.md). The gateway's own `check` (unknown fields rejected)
# is the authority and runs on every render in CI; the schema pins only what the chart
# relies on, and stays open to fields and provider kinds the gateway gains.
def Open(props, req=None):
    d = O(props, req=req); d["additionalProperties"] = True; return d
timeouts=Open({"connect_ms":I(minimum=1),"first_byte_ms":I(minimum=1),"total_ms":I(minimum=1)})
provider=Open({"name":S(minLength=1),"kind":S(minLength=1),"base_url":S(pattern="^https?://"),
            # Secrets only as ${VAR} references, filled from gateway.providerSecrets.
            "api_key":S(pattern="^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$"),
            "timeouts":timeouts,
            "component":S(),"componentPort":I(minimum=1,maximum=65535),"componentPath":S(pattern="^/")},req=["name","kind"])
provider["not"]={"required":["component","base_url"]}
gwconfig=Open({
 "server":Open({"threads":I(minimum=1),"max_body_bytes":I(minimum=1),"shutdown_grace_seconds":I(minimum=0),
             # The chart sets the listeners from gateway.ports.
             "listen":{"not":{}},"admin_listen":{"not":{}}}),
 "auth":Open({"keys":A(Open({"name":S(minLength=1),"sha256":S(pattern="^[0-9a-f]{64}$")},req=["name","sha256"]))}),
 "providers":A(provider,minItems=1),
 "models":A(anyobj,minItems=1),
},req=["providers","models"])
gateway=O({
 "replicaCount":I(minimum=1),"image":image,"config":gwconfig,
 "ports":O({"api":I(minimum=1,maximum=65535),"admin":I(minimum=1,maximum=65535)},req=["api","admin"]),
 "providerSecrets":A(O({"env":S(pattern="^[A-Za-z_][A-Za-z0-9_]*$"),"secretName":S(pattern=name_re),"key":S(minLength=1),"optional":B},req=["env","secretName","key"])),
 "extraEnv":A(O({"name":S(pattern="^[A-Za-z_][A-Za-z0-9_]*$"),"value":S()},req=["name","value"])),
 "terminationGraceExtraSeconds":I(minimum=1),"preStopSleepSeconds":I(minimum=0),
 "resources":resources,
 "service":O({"type":{"enum":["ClusterIP","NodePort","LoadBalancer"]},"port":I(minimum=1,maximum=65535)}),
 "autoscaling":O({"enabled":B,"minReplicas":I(minimum=1),"maxReplicas":I(minimum=1),"targetCPUUtilizationPercentage":I(minimum=1,maximum=100)}),
 "pdb":O({"enabled":B,"maxUnavailable":{"anyOf":[I(minimum=1),S(pattern="^[0-9]+%$")]},"reason":S()}),
 "serviceAccount":O({"create":B,"name":S()}),
 "networkPolicy":O({"allowFrom":A(groupEnum)}),
 "serviceMonitor":O({"enabled":B,"interval":S(pattern="^[0-9]+(s|m)$")}),
 "podAnnotations":strmap,"nodeSelector":strmap,"tolerations":A(anyobj),"affinity":anyobj,"topologySpread":B,
 "podSecurityContext":podsc,"containerSecurityContext":ctsc,
}, req=["image","config","ports","resources"])
egressRule=O({"cidr":S(pattern="^[0-9a-f.:]+/[0-9]+$"),"except":A(S(pattern="^[0-9a-f.:]+/[0-9]+$")),"ports":A(I(minimum=1,maximum=65535))},req=["cidr","ports"])
schema={
 "$schema":"http://json-schema.org/draft-07/schema#",
 "title":"DataMind chart values",
 "description":"Every key of values.yaml; unknown keys are rejected. Generated by charts/tools/values_schema.py: edit that, not this file.",
 **O({
  "global":O({"imageRegistry":S(),"imagePullSecrets":A(O({"name":S()},req=["name"])),"clusterDomain":S(minLength=1),
              "assumeAPIs":A({"enum":["keda.sh/v1alpha1","security.istio.io/v1","monitoring.coreos.com/v1"]})}),
  "nameOverride":S(),"fullnameOverride":S(maxLength=40),"commonLabels":strmap,
  "namespaces":O({"create":B,"podSecurity":{"enum":["","restricted","baseline","privileged"]},"names":O({g:S(pattern=name_re) for g in groups},req=groups)}),
  "gateway":gateway,
  "kafka":O({"bootstrapServers":S()}),
  "observability":O({"prometheusURL":S(),"otlpEndpoint":S()}),
  "operators":O({
    "cloudnativePG":O({"enabled":B,"namespace":S(pattern=name_re),"imageName":S(minLength=1)}),
    "strimzi":O({"enabled":B,"namespace":S(pattern=name_re),"apiVersion":{"enum":["kafka.strimzi.io/v1","kafka.strimzi.io/v1beta2"]},"kafkaVersion":S(),"metadataVersion":S()}),
    "flink":O({"enabled":B,"namespace":S(pattern=name_re),"flinkVersion":{"enum":["v1_18","v1_19","v1_20","v2_0","v2_1"]},"taskSlots":I(minimum=1),"jarURI":S(pattern="^(local|https?|s3)://")}),
  }),
  "keda":O({"enabled":B,"namespace":S(pattern=name_re),"gpuMemoryMetric":S(pattern="^[a-zA-Z_:][a-zA-Z0-9_:]*$"),"pollingInterval":I(minimum=1),"cooldownPeriod":I(minimum=0)}),
  "istio":O({"enabled":B,"mtlsMode":{"enum":["STRICT","PERMISSIVE","DISABLE"]},"injection":B,"namespace":S(pattern=name_re)}),
  "networking":O({
    "networkPolicies":O({"enabled":B,"dnsNamespace":S(pattern=name_re),
       "egress":O({g:A(groupEnum) for g in groups}),
       "externalEgress":O({g:egressRule for g in groups}),
       "ingressControllerNamespace":S(pattern=name_re),
       "apiServerEgress":O({"groups":A(groupEnum),"cidr":S(),"ports":A(I(minimum=1,maximum=65535))}),
       "extraScrapeNamespaces":A(S(pattern=name_re))}),
    "ingress":O({"enabled":B,"className":S(),"host":S(pattern="^[a-z0-9.-]+$"),"annotations":strmap,"tlsSecretName":S()}),
  }),
  "componentDefaults":componentDefaults,
  "components":{"type":"object","propertyNames":{"pattern":name_re,"maxLength":30},"additionalProperties":component},
  "tests":O({"image":image}),
 }, req=["gateway","components","componentDefaults","namespaces"])
}
target = Path(__file__).resolve().parent.parent / "datamind" / "values.schema.json"
text = json.dumps(schema, indent=2) + "\n"
if "--check" in sys.argv[1:]:
    if target.read_text() != text:
        sys.exit(f"{target} is stale: run python3 {Path(__file__).name}")
    print(f"{target.name} is up to date")
else:
    target.write_text(text)
