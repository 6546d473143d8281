{{/*
Standard names and labels (the `helm create` layout), plus the helpers every shared
template uses: a component's name, namespace, labels, image and in-cluster host name,
and whether an optional API (KEDA, Istio, prometheus-operator) may be rendered.
*/}}

{{- define "datamind.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datamind.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "datamind.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "datamind.labels" -}}
helm.sh/chart: {{ include "datamind.chart" . }}
{{ include "datamind.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: datamind
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: immutable, so only name and instance (plus component, below). */}}
{{- define "datamind.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datamind.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* A component's object name: <fullname>-<component>. Args: (dict "ctx" $ "name" NAME) */}}
{{- define "datamind.componentName" -}}
{{- printf "%s-%s" (include "datamind.fullname" .ctx) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datamind.componentSelectorLabels" -}}
{{ include "datamind.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "datamind.componentLabels" -}}
{{ include "datamind.labels" .ctx }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* The namespace of a group (gateway, agents, mcp-tools, ...). Args: (dict "ctx" $ "group" G) */}}
{{- define "datamind.namespace" -}}
{{- $ns := index .ctx.Values.namespaces.names .group }}
{{- if not $ns }}{{ fail (printf "namespaces.names.%s is not set" .group) }}{{ end }}
{{- $ns }}
{{- end }}

{{/* In-cluster DNS name of a component's Service. Args: (dict "ctx" $ "name" NAME) */}}
{{- define "datamind.host" -}}
{{- $c := index .ctx.Values.components .name }}
{{- if not $c }}{{ fail (printf "no component %q (components.%s)" .name .name) }}{{ end }}
{{- printf "%s.%s.svc.%s" (include "datamind.componentName" .) (include "datamind.namespace" (dict "ctx" .ctx "group" $c.group)) .ctx.Values.global.clusterDomain }}
{{- end }}

{{/*
"true" when objects of an optional API may be rendered: the cluster serves it
(.Capabilities, filled by `helm install` or `helm template --api-versions`) or it is listed in
global.assumeAPIs. Args: (dict "ctx" $ "api" "keda.sh/v1alpha1")
*/}}
{{- define "datamind.hasAPI" -}}
{{- if or (.ctx.Capabilities.APIVersions.Has .api) (has .api .ctx.Values.global.assumeAPIs) }}true{{ end }}
{{- end }}

{{/* registry/repository:tag[@digest]. Args: (dict "ctx" $ "image" IMAGE) */}}
{{- define "datamind.image" -}}
{{- $registry := default .ctx.Values.global.imageRegistry .image.registry }}
{{- $ref := .image.repository }}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry .image.repository }}{{ end }}
{{- $ref = printf "%s:%s" $ref (default .ctx.Chart.AppVersion .image.tag | toString) }}
{{- if .image.digest }}{{ $ref = printf "%s@%s" $ref .image.digest }}{{ end }}
{{- $ref }}
{{- end }}

{{- define "datamind.gatewayName" -}}
{{- include "datamind.componentName" (dict "ctx" . "name" "gateway") }}
{{- end }}

{{- define "datamind.gatewayNamespace" -}}
{{- include "datamind.namespace" (dict "ctx" . "group" "gateway") }}
{{- end }}

{{- define "datamind.gatewaySelectorLabels" -}}
{{ include "datamind.componentSelectorLabels" (dict "ctx" . "name" "gateway") }}
{{- end }}

{{- define "datamind.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "datamind.gatewayName" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The port number of an `IP:port` listener string. */}}
{{- define "datamind.listenPort" -}}
{{- splitList ":" . | last }}
{{- end }}

{{/* Kafka bootstrap servers, for KEDA triggers and clients. */}}
{{- define "datamind.kafkaBootstrap" -}}
{{- if .Values.kafka.bootstrapServers }}
{{- .Values.kafka.bootstrapServers }}
{{- else if .Values.operators.strimzi.enabled }}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" (include "datamind.componentName" (dict "ctx" . "name" "kafka")) (include "datamind.namespace" (dict "ctx" . "group" "data")) }}
{{- else }}
{{- printf "%s:9092" (include "datamind.host" (dict "ctx" . "name" "kafka")) }}
{{- end }}
{{- end }}

{{/* Prometheus query endpoint, for KEDA triggers and Grafana. */}}
{{- define "datamind.prometheusURL" -}}
{{- if .Values.observability.prometheusURL }}
{{- .Values.observability.prometheusURL }}
{{- else }}
{{- printf "http://%s:9090" (include "datamind.host" (dict "ctx" . "name" "prometheus")) }}
{{- end }}
{{- end }}

{{/*
The gateway config as YAML: .Values.gateway.config with the listeners bound on all
interfaces at gateway.ports, and `component:` provider shorthands turned into base_url.
*/}}
{{- define "datamind.gatewayConfig" -}}
{{- $cfg := deepCopy .Values.gateway.config }}
{{- $server := default dict $cfg.server }}
{{- $_ := set $server "listen" (printf "0.0.0.0:%v" .Values.gateway.ports.api) }}
{{- $_ := set $server "admin_listen" (printf "0.0.0.0:%v" .Values.gateway.ports.admin) }}
{{- $_ := set $cfg "server" $server }}
{{- $providers := list }}
{{- range $cfg.providers }}
{{- $p := . }}
{{- if .component }}
{{- $c := index $.Values.components .component }}
{{- if not $c }}{{ fail (printf "gateway.config.providers %q: no component %q" .name .component) }}{{ end }}
{{- if eq (toString $c.enabled) "false" }}{{ fail (printf "gateway.config.providers %q: component %q is disabled" .name .component) }}{{ end }}
{{- $port := .componentPort }}
{{- if not $port }}{{ $port = (first $c.ports).port }}{{ end }}
{{- $url := printf "http://%s:%v%s" (include "datamind.host" (dict "ctx" $ "name" .component)) $port (default "/v1" .componentPath) }}
{{- $p = set (omit . "component" "componentPort" "componentPath") "base_url" $url }}
{{- end }}
{{- $providers = append $providers $p }}
{{- end }}
{{- $_ := set $cfg "providers" $providers }}
{{- toYaml $cfg }}
{{- end }}

{{/* Seconds the gateway drains on SIGTERM (server.shutdown_grace_seconds, default 30). */}}
{{- define "datamind.gatewayGrace" -}}
{{- $server := default dict .Values.gateway.config.server }}
{{- hasKey $server "shutdown_grace_seconds" | ternary $server.shutdown_grace_seconds 30 | int }}
{{- end }}

{{/* Flink's {cpu, memory} from Kubernetes resource limits (cpu as a number, memory as "4g"). */}}
{{- define "datamind.flinkResource" -}}
{{- $cpu := toString .limits.cpu }}
{{- if hasSuffix "m" $cpu }}{{ $cpu = divf (trimSuffix "m" $cpu | float64) 1000 | toString }}{{ end -}}
cpu: {{ $cpu | float64 }}
memory: {{ .limits.memory | replace "Gi" "g" | replace "Mi" "m" | quote }}
{{- end }}

{{/* A helm test pod. Args: (dict "ctx" $ "name" NAME "script" SHELL) */}}
{{- define "datamind.testPod" -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "datamind.fullname" .ctx }}-test-{{ .name }}
  namespace: {{ include "datamind.gatewayNamespace" .ctx }}
  labels:
    {{- include "datamind.componentLabels" (dict "ctx" .ctx "name" "helm-test") | nindent 4 }}
    datamind.io/helm-test: "true"
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: { type: RuntimeDefault }
  containers:
    - name: test
      image: {{ include "datamind.image" (dict "ctx" .ctx "image" .ctx.Values.tests.image) }}
      imagePullPolicy: IfNotPresent
      command: [sh, -ec]
      args:
        - |
          {{- .script | trim | nindent 10 }}
      resources:
        requests: { cpu: 10m, memory: 16Mi }
        limits: { cpu: 100m, memory: 64Mi }
      securityContext:
        runAsNonRoot: true
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        privileged: false
        capabilities: { drop: [ALL] }
        seccompProfile: { type: RuntimeDefault }
{{- end }}

{{/*
The label every pod of an operator-managed cluster carries, set by the operator itself.
Args: (dict "ctx" $ "op" cloudnativePG|strimzi|flink)
*/}}
{{- define "datamind.operatorClusterLabels" -}}
{{- if eq .op "cloudnativePG" }}
cnpg.io/cluster: {{ include "datamind.componentName" (dict "ctx" .ctx "name" "postgresql") }}
{{- else if eq .op "strimzi" }}
strimzi.io/cluster: {{ include "datamind.componentName" (dict "ctx" .ctx "name" "kafka") }}
{{- else if eq .op "flink" }}
app: {{ include "datamind.componentName" (dict "ctx" .ctx "name" "flink") }}
{{- else }}
{{- fail (printf "no cluster label known for operator %q" .op) }}
{{- end }}
{{- end }}
