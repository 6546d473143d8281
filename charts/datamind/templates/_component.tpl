{{/*
The shared templates that turn one entry of `.Values.components` into Kubernetes objects.

Data flow: a per-namespace file (templates/<group>/components.yaml) calls
  include "datamind.components" (dict "ctx" $ "group" "agents")
which, for each enabled component of that group (sorted by name) that no operator replaces,
merges `componentDefaults` under the entry ("datamind.component.merged") and renders:
ServiceAccount, optional ClusterRole/Binding, optional ConfigMap (configFiles), Service (and a
headless one for StatefulSets), the workload, and a PodDisruptionBudget. NetworkPolicies and
autoscalers for the same entries are rendered by templates/networking and
templates/autoscaling from the same description.

Strings in env values, args and configFiles are rendered with `tpl`; in them `$` has
.Values/.Release/.Chart/.Capabilities plus `.name` (the object name) and `.component`.
*/}}

{{/* A component's merged settings as YAML. Args: (dict "ctx" $ "key" NAME) */}}
{{- define "datamind.component.merged" -}}
{{- $raw := index .ctx.Values.components .key }}
{{- toYaml (mergeOverwrite (deepCopy .ctx.Values.componentDefaults) (deepCopy $raw)) }}
{{- end }}

{{/* "true" when an enabled operator replaces this component. Args: (dict "ctx" $ "c" MERGED) */}}
{{- define "datamind.component.replaced" -}}
{{- if .c.replacedByOperator }}
{{- $op := index .ctx.Values.operators .c.replacedByOperator }}
{{- if not $op }}{{ fail (printf "replacedByOperator: unknown operator %q" .c.replacedByOperator) }}{{ end }}
{{- if $op.enabled }}true{{ end }}
{{- end }}
{{- end }}

{{/* Every component of a group. Args: (dict "ctx" $ "group" G) */}}
{{- define "datamind.components" -}}
{{- $ctx := .ctx }}
{{- range $key := keys $ctx.Values.components | sortAlpha }}
{{- $c := include "datamind.component.merged" (dict "ctx" $ctx "key" $key) | fromYaml }}
{{- if and (eq $c.group $.group) $c.enabled (not (include "datamind.component.replaced" (dict "ctx" $ctx "c" $c))) }}
{{- include "datamind.component" (dict "ctx" $ctx "key" $key "c" $c) }}
{{- end }}
{{- end }}
{{- end }}

{{/* All objects of one component. Args: (dict "ctx" $ "key" NAME "c" MERGED) */}}
{{- define "datamind.component" -}}
{{- $ctx := .ctx }}
{{- $c := .c }}
{{- $key := .key }}
{{- $name := include "datamind.componentName" (dict "ctx" $ctx "name" $key) }}
{{- $ns := include "datamind.namespace" (dict "ctx" $ctx "group" $c.group) }}
{{- $t := dict "Values" $ctx.Values "Chart" $ctx.Chart "Release" $ctx.Release "Capabilities" $ctx.Capabilities "Template" $ctx.Template "name" $name "component" $c }}
{{- $labels := include "datamind.componentLabels" (dict "ctx" $ctx "name" $key) }}
{{- $selector := include "datamind.componentSelectorLabels" (dict "ctx" $ctx "name" $key) }}
{{- $replicas := $c.replicas }}
{{- if and (hasKey $c "replicasWithoutOperator") $c.replacedByOperator }}{{ $replicas = $c.replicasWithoutOperator }}{{ end }}
{{- $configFiles := dict }}
{{- range $file, $content := $c.configFiles }}
{{- $_ := set $configFiles $file (tpl $content $t) }}
{{- end }}
{{- $dashboards := and (eq $key "grafana") $c.dashboards }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
automountServiceAccountToken: {{ if $c.clusterRules }}true{{ else }}false{{ end }}
{{- if $c.clusterRules }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $name }}
  labels:
    {{- $labels | nindent 4 }}
rules:
  {{- toYaml $c.clusterRules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $name }}
  labels:
    {{- $labels | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $ns }}
{{- end }}
{{- if $configFiles }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
data:
  {{- toYaml $configFiles | nindent 2 }}
{{- end }}
{{- if $dashboards }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}-dashboards
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
data:
  dashboards.yaml: |
    apiVersion: 1
    providers:
      - name: datamind
        type: file
        options: { path: /etc/grafana/provisioning/dashboards }
  {{- ($ctx.Files.Glob "files/dashboards/*.json").AsConfig | nindent 2 }}
{{- end }}
{{- if $c.ports }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- $selector | nindent 4 }}
  ports:
    {{- range $c.ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
{{- if eq $c.kind "StatefulSet" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-headless
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- $selector | nindent 4 }}
  ports:
    {{- range $c.ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}
---
apiVersion: apps/v1
kind: {{ $c.kind }}
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
  {{- if or (not $c.pdb.enabled) (eq $c.kind "DaemonSet") }}
  {{- if not $c.pdb.reason }}{{ fail (printf "components.%s: pdb.enabled is false (or it is a DaemonSet) but pdb.reason is empty" $key) }}{{ end }}
  annotations:
    datamind.io/no-pdb-reason: {{ $c.pdb.reason | quote }}
  {{- end }}
spec:
  {{- if and (ne $c.kind "DaemonSet") (not $c.autoscaling.enabled) }}
  replicas: {{ $replicas }}
  {{- end }}
  {{- if eq $c.kind "StatefulSet" }}
  serviceName: {{ $name }}-headless
  podManagementPolicy: Parallel
  {{- end }}
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  template:
    metadata:
      labels:
        {{- $labels | nindent 8 }}
        datamind.io/group: {{ $c.group }}
      annotations:
        {{- if $configFiles }}
        checksum/config: {{ toYaml $configFiles | sha256sum }}
        {{- end }}
        {{- if $c.metricsPort }}
        prometheus.io/scrape: "true"
        prometheus.io/path: /metrics
        prometheus.io/port: {{ (include "datamind.portNumber" (dict "ports" $c.ports "name" $c.metricsPort)) | quote }}
        {{- end }}
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: {{ if $c.clusterRules }}true{{ else }}false{{ end }}
      {{- with $ctx.Values.global.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $c.podSecurityContext | nindent 8 }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $c.seededPaths }}
      initContainers:
        # Copies the image's files at seededPaths into their (empty) writable volumes, so the
        # root filesystem stays read-only while the program rewrites its own config there.
        - name: seed-writable-paths
          image: {{ include "datamind.image" (dict "ctx" $ctx "image" $c.image) }}
          imagePullPolicy: {{ default "IfNotPresent" $c.image.pullPolicy }}
          command: [sh, -ec]
          args:
            - |
              {{- range $i, $path := $c.writablePaths }}
              {{- if has $path $c.seededPaths }}
              cp -R {{ $path }}/. /seed/{{ $i }}/
              {{- end }}
              {{- end }}
          resources:
            requests: { cpu: 50m, memory: 64Mi }
            limits: { cpu: 500m, memory: 256Mi }
          securityContext:
            {{- toYaml $c.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- range $i, $path := $c.writablePaths }}
            {{- if has $path $c.seededPaths }}
            - name: writable-{{ $i }}
              mountPath: /seed/{{ $i }}
            {{- end }}
            {{- end }}
      {{- range $c.seededPaths }}
      {{- if not (has . $c.writablePaths) }}{{ fail (printf "components.%s.seededPaths: %s is not in writablePaths" $key .) }}{{ end }}
      {{- end }}
      {{- end }}
      containers:
        - name: {{ $key }}
          image: {{ include "datamind.image" (dict "ctx" $ctx "image" $c.image) }}
          imagePullPolicy: {{ default "IfNotPresent" $c.image.pullPolicy }}
          {{- with $c.command }}
          command:
            {{- range . }}
            - {{ tpl . $t | quote }}
            {{- end }}
          {{- end }}
          {{- with $c.args }}
          args:
            {{- range . }}
            - {{ tpl . $t | quote }}
            {{- end }}
          {{- end }}
          {{- include "datamind.component.env" (dict "ctx" $ctx "c" $c "t" $t) | nindent 10 }}
          {{- with $c.ports }}
          ports:
            {{- range . }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          {{- end }}
          {{- if $c.probe }}
          {{- $probe := include "datamind.component.probe" $c.probe }}
          readinessProbe:
            {{- $probe | nindent 12 }}
            periodSeconds: 10
            failureThreshold: 3
          livenessProbe:
            {{- $probe | nindent 12 }}
            periodSeconds: 20
            failureThreshold: 6
          {{- end }}
          {{- $resources := deepCopy $c.resources }}
          {{- if gt (int $c.gpu) 0 }}
          {{- $_ := set $resources "limits" (merge (dict "nvidia.com/gpu" $c.gpu) (default dict $resources.limits)) }}
          {{- $_ := set $resources "requests" (merge (dict "nvidia.com/gpu" $c.gpu) (default dict $resources.requests)) }}
          {{- end }}
          resources:
            {{- toYaml $resources | nindent 12 }}
          securityContext:
            {{- toYaml $c.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "datamind.component.mounts" (dict "c" $c "configFiles" $configFiles "dashboards" $dashboards) | nindent 12 }}
        {{- range $c.sidecars }}
        - name: {{ .name }}
          image: {{ include "datamind.image" (dict "ctx" $ctx "image" .image) }}
          imagePullPolicy: {{ default "IfNotPresent" .image.pullPolicy }}
          {{- with .command }}
          command:
            {{- range . }}
            - {{ tpl . $t | quote }}
            {{- end }}
          {{- end }}
          {{- with .args }}
          args:
            {{- range . }}
            - {{ tpl . $t | quote }}
            {{- end }}
          {{- end }}
          {{- with .ports }}
          ports:
            {{- range . }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $c.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "datamind.component.mounts" (dict "c" $c "configFiles" $configFiles "dashboards" false) | nindent 12 }}
        {{- end }}
      volumes:
        {{- range $i, $path := $c.writablePaths }}
        - name: writable-{{ $i }}
          emptyDir:
            {{- if eq $path "/dev/shm" }}
            medium: Memory
            {{- else }}
            {}
            {{- end }}
        {{- end }}
        {{- if $configFiles }}
        - name: config
          configMap:
            name: {{ $name }}
        {{- end }}
        {{- if $dashboards }}
        - name: dashboards
          configMap:
            name: {{ $name }}-dashboards
        {{- end }}
        {{- if and $c.persistence.enabled (ne $c.kind "StatefulSet") }}
        - name: data
          emptyDir: {}
        {{- end }}
  {{- if and $c.persistence.enabled (eq $c.kind "StatefulSet") }}
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- $selector | nindent 10 }}
      spec:
        accessModes: [ReadWriteOnce]
        {{- with $c.persistence.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $c.persistence.size }}
  {{- end }}
{{- if and $c.pdb.enabled (ne $c.kind "DaemonSet") }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels:
    {{- $labels | nindent 4 }}
spec:
  {{- $floor := ternary $c.autoscaling.minReplicas $replicas $c.autoscaling.enabled | int }}
  {{- if lt (int $c.pdb.minAvailable) $floor }}
  minAvailable: {{ $c.pdb.minAvailable }}
  {{- else }}
  {{- /* minAvailable would block every eviction at this size: allow one pod down instead. */}}
  maxUnavailable: 1
  {{- end }}
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
{{- end }}
{{- end }}

{{/* Container env: plain (tpl), from Secrets, and the OTLP endpoint. */}}
{{- define "datamind.component.env" -}}
{{- $otlp := .ctx.Values.observability.otlpEndpoint }}
{{- $oc := index .ctx.Values.components "otel-collector" }}
{{- if and (not $otlp) $oc (ne (toString $oc.enabled) "false") }}
{{- $otlp = printf "http://%s:4317" (include "datamind.host" (dict "ctx" .ctx "name" "otel-collector")) }}
{{- end }}
{{- if or .c.env .c.secretEnv (and $otlp (ne .c.group "observability")) }}
env:
  {{- range $k := keys .c.env | sortAlpha }}
  - name: {{ $k }}
    value: {{ tpl (toString (index $.c.env $k)) $.t | quote }}
  {{- end }}
  {{- range $k := keys .c.secretEnv | sortAlpha }}
  {{- $ref := index $.c.secretEnv $k }}
  - name: {{ $k }}
    valueFrom:
      secretKeyRef:
        name: {{ $ref.secretName }}
        key: {{ $ref.key }}
        {{- if $ref.optional }}
        optional: true
        {{- end }}
  {{- end }}
  {{- if and $otlp (ne .c.group "observability") }}
  - name: OTEL_EXPORTER_OTLP_ENDPOINT
    value: {{ $otlp | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Probe body from {type: http|tcp, path, port, initialDelaySeconds}. */}}
{{- define "datamind.component.probe" -}}
{{- if eq .type "http" }}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
{{- else if eq .type "tcp" }}
tcpSocket:
  port: {{ .port }}
{{- else }}
{{- fail (printf "probe.type must be http or tcp, got %q" .type) }}
{{- end }}
initialDelaySeconds: {{ .initialDelaySeconds | default 5 }}
timeoutSeconds: 5
{{- end }}

{{/* Volume mounts of a component's containers. */}}
{{- define "datamind.component.mounts" -}}
{{- range $i, $path := .c.writablePaths }}
- name: writable-{{ $i }}
  mountPath: {{ $path }}
{{- end }}
{{- if .configFiles }}
- name: config
  mountPath: {{ .c.configMountPath }}
  readOnly: true
{{- end }}
{{- if .dashboards }}
- name: dashboards
  mountPath: /etc/grafana/provisioning/dashboards
  readOnly: true
{{- end }}
{{- if .c.persistence.enabled }}
- name: data
  mountPath: {{ .c.persistence.mountPath }}
{{- end }}
{{- end }}

{{/* The number of a named port. Args: (dict "ports" LIST "name" NAME) */}}
{{- define "datamind.portNumber" -}}
{{- $found := "" }}
{{- range .ports }}{{ if eq .name $.name }}{{ $found = .port }}{{ end }}{{ end }}
{{- if not $found }}{{ fail (printf "no port named %q" .name) }}{{ end }}
{{- $found }}
{{- end }}
