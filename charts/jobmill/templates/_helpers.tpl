{{- /*
_helpers.tpl - names, labels, images, environment and the worker's derived
numbers (grace period, autoscaling signal) that several templates share.
Helpers that take a component are called with
(dict "ctx" $ "component" "api"|"worker"|"janitor"|"redis").
*/}}

{{- define "jobmill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* jobmill.fullname: the prefix of every object name, at most 40
characters so that "<fullname>-janitor-NN" and a pod suffix still fit. */}}
{{- define "jobmill.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "jobmill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* jobmill.selectorLabels: name, instance and component only, so
selectors never change across upgrades (they are immutable). */}}
{{- define "jobmill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobmill.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "jobmill.labels" -}}
helm.sh/chart: {{ include "jobmill.chart" .ctx }}
{{ include "jobmill.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: jobmill
{{- end }}

{{- define "jobmill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jobmill.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* jobmill.image: the image reference of a jobmill component. */}}
{{- define "jobmill.image" -}}
{{- $v := index .ctx.Values .component }}
{{- $repo := $v.image.repository | default (printf "%s/jobmill-%s" .ctx.Values.image.registry .component) }}
{{- $tag := $v.image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- /* jobmill.instances: the Deployments of a component as a JSON list of
{name, index, port, replicas}. Normally one Deployment with all replicas;
with hostNetwork one Deployment per replica, the i-th on port + i, because
the pods of one Deployment share one template and would bind the same port
on one host. */}}
{{- define "jobmill.instances" -}}
{{- $v := index .ctx.Values .component }}
{{- $base := printf "%s-%s" (include "jobmill.fullname" .ctx) .component }}
{{- $port := int (ternary $v.port $v.metricsPort (eq .component "api")) }}
{{- $out := list }}
{{- if .ctx.Values.hostNetwork }}
{{- range $i := until (int $v.replicaCount) }}
{{- $out = append $out (dict "name" (printf "%s-%d" $base $i) "index" (toString $i) "port" (add $port $i) "replicas" 1) }}
{{- end }}
{{- else }}
{{- $out = append $out (dict "name" $base "index" "" "port" $port "replicas" (int $v.replicaCount)) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- /* jobmill.configName: the ConfigMap a Deployment instance mounts. */}}
{{- define "jobmill.configName" -}}
{{- if .ctx.Values.hostNetwork }}
{{- printf "%s-config" .instance.name }}
{{- else }}
{{- printf "%s-config" (include "jobmill.fullname" .ctx) }}
{{- end }}
{{- end }}

{{- /* jobmill.configNames: every config ConfigMap to render, as JSON. */}}
{{- define "jobmill.configNames" -}}
{{- $names := list }}
{{- range $c := list "api" "janitor" "worker" }}
{{- range $inst := include "jobmill.instances" (dict "ctx" $ "component" $c) | fromJsonArray }}
{{- $names = append $names (include "jobmill.configName" (dict "ctx" $ "instance" $inst)) }}
{{- end }}
{{- end }}
{{- toJson ($names | uniq) }}
{{- end }}

{{- /* jobmill.podSelectorLabels: a Deployment's selector; with hostNetwork
each per-replica Deployment also selects its own index. */}}
{{- define "jobmill.podSelectorLabels" -}}
{{ include "jobmill.selectorLabels" . }}
{{- if .instance.index }}
jobmill.io/host-slot: {{ .instance.index | quote }}
{{- end }}
{{- end }}

{{- /* jobmill.redisUrl: the URL of the Redis jobmill uses. */}}
{{- define "jobmill.redisUrl" -}}
{{- if .Values.redis.deploy }}
{{- printf "redis://%s-redis:6379/0" (include "jobmill.fullname" .) }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{- /* jobmill.redisParts: host, port and db of jobmill.redisUrl as JSON. */}}
{{- define "jobmill.redisParts" -}}
{{- $u := urlParse (include "jobmill.redisUrl" .) }}
{{- $hp := splitList ":" $u.host }}
{{- $db := trimPrefix "/" $u.path | default "0" }}
{{- toJson (dict "host" (first $hp) "port" (ternary (last $hp) "6379" (gt (len $hp) 1)) "db" $db) }}
{{- end }}

{{- /* jobmill.redisEnv: how every service finds Redis. Without a password,
REDIS_URL. With redis.existingSecret, REDIS_HOST/PORT/DB and REDIS_PASSWORD
from the Secret (the services compose the URL; REDIS_URL would beat them). */}}
{{- define "jobmill.redisEnv" -}}
{{- if .Values.redis.existingSecret }}
{{- $p := include "jobmill.redisParts" . | fromJson }}
- name: REDIS_HOST
  value: {{ $p.host | quote }}
- name: REDIS_PORT
  value: {{ $p.port | quote }}
- name: REDIS_DB
  value: {{ $p.db | quote }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretPasswordKey }}
{{- else }}
- name: REDIS_URL
  value: {{ include "jobmill.redisUrl" . | quote }}
{{- end }}
{{- with .Values.redis.sentinel.sentinels }}
- name: REDIS_SENTINELS
  value: {{ join "," . | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ $.Values.redis.sentinel.masterName | quote }}
{{- end }}
{{- with .Values.redis.cluster.seeds }}
- name: REDIS_CLUSTER
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{- /* jobmill.userEnv: a component's env map as a sorted env list. */}}
{{- define "jobmill.userEnv" -}}
{{- $env := index .ctx.Values .component "env" }}
{{- range $k := keys $env | sortAlpha }}
- name: {{ $k }}
  value: {{ index $env $k | toString | quote }}
{{- end }}
{{- end }}

{{- /* jobmill.podSpecCommon: what every jobmill pod shares. */}}
{{- define "jobmill.podSpecCommon" -}}
serviceAccountName: {{ include "jobmill.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- if .Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{- /* jobmill.probes: liveness on /healthz, readiness on /readyz, on the
named port of the container. */}}
{{- define "jobmill.probes" -}}
{{- $v := index .ctx.Values .component }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  {{- toYaml $v.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  {{- toYaml $v.readinessProbe | nindent 2 }}
{{- end }}

{{- /* jobmill.configChecksum: rolls every pod when the config changes. */}}
{{- define "jobmill.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{- /* jobmill.queueNames: the names of worker.queues as a JSON list. */}}
{{- define "jobmill.queueNames" -}}
{{- $names := list }}
{{- range .Values.worker.queues }}
{{- if kindIs "string" . }}
{{- $names = append $names . }}
{{- else }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{- /* jobmill.worker.terminationGrace: shutdownGraceMs rounded up, plus the
2 s handler kill grace, plus drainMarginSeconds (docs/worker.md). */}}
{{- define "jobmill.worker.terminationGrace" -}}
{{- $w := .Values.worker }}
{{- add (div (add (int $w.shutdownGraceMs) 999) 1000) 2 (int $w.drainMarginSeconds) }}
{{- end }}

{{- /* jobmill.worker.demandQuery: the autoscaling signal, in jobs. Queued
jobs of the worker pool's queues (minus paused queues, once the api exports
jobmill_queue_paused) plus running ones; max by queue because every api
replica exports the same gauges. The HPA's external metric (through
prometheus-adapter) and the KEDA prometheus trigger both use exactly this,
with a target of worker.concurrency jobs per pod. */}}
{{- define "jobmill.worker.demandQuery" -}}
{{- $names := list }}
{{- range include "jobmill.queueNames" . | fromJsonArray }}
{{- $names = append $names (replace "." "\\\\." .) }}
{{- end }}
{{- $m := .Values.worker.autoscaling.labelMatchers | default (printf "job=%q,namespace=%q" (printf "%s-api" (include "jobmill.fullname" .)) .Release.Namespace) }}
{{- $sel := printf "queue=~\"%s\",%s" (join "|" $names) $m }}
{{- printf "(sum(max by (queue) (jobmill_queue_jobs{state=\"queued\",%s}) unless on (queue) (max by (queue) (jobmill_queue_paused{%s}) > 0)) or vector(0)) + (sum(max by (queue) (jobmill_queue_jobs{state=\"running\",%s})) or vector(0))" $sel $sel $sel }}
{{- end }}

{{- /* jobmill.xor16: bitwise XOR of two integers below 65536 (sprig has no
bit operators). Called with (list A B); prints the result. */}}
{{- define "jobmill.xor16" -}}
{{- $a := int (index . 0) }}
{{- $b := int (index . 1) }}
{{- $r := 0 }}
{{- $bit := 1 }}
{{- range until 16 }}
{{- if ne (mod $a 2) (mod $b 2) }}{{ $r = add $r $bit }}{{ end }}
{{- $a = div $a 2 }}
{{- $b = div $b 2 }}
{{- $bit = mul $bit 2 }}
{{- end }}
{{- $r }}
{{- end }}

{{- /* jobmill.slotTag: a queue's slot tag as jobmill computes it
(jm_slot_tag): CRC16-XMODEM of the name modulo 16384, as 4 hex digits. Queue
names are ASCII ([A-Za-z0-9_.-]). */}}
{{- define "jobmill.slotTag" -}}
{{- $codes := dict }}
{{- range $c := untilStep 32 127 1 }}
{{- $_ := set $codes (printf "%c" $c) $c }}
{{- end }}
{{- $crc := 0 }}
{{- range $ch := splitList "" . }}
{{- $crc = include "jobmill.xor16" (list $crc (mul (index $codes $ch) 256)) | int }}
{{- range until 8 }}
{{- if ge $crc 32768 }}
{{- $crc = include "jobmill.xor16" (list (mod (mul $crc 2) 65536) 4129) | int }}
{{- else }}
{{- $crc = mod (mul $crc 2) 65536 }}
{{- end }}
{{- end }}
{{- end }}
{{- printf "%04x" (mod $crc 16384) }}
{{- end }}
