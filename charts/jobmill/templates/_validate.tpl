{{- /*
_validate.tpl - the rules values.schema.json cannot express. Each failure
names the value at fault and what to do. configmap.yaml includes it, so every
render (install, upgrade, template, lint) runs it.
*/}}
{{- define "jobmill.validate" -}}
{{- $v := .Values }}
{{- $a := $v.worker.autoscaling }}

{{- /* One owner of the worker count. */}}
{{- if and $v.hostNetwork (ne $a.mode "none") }}
{{- fail "hostNetwork: true renders one Deployment per worker replica (distinct ports); worker.autoscaling.mode must be none with it" }}
{{- end }}
{{- if and $v.hostNetwork (gt (int $v.api.replicaCount) 1) }}
{{- fail "hostNetwork: true allows one api replica: the api Service has one target port, and on one host a second api needs another" }}
{{- end }}
{{- if and $v.hostNetwork $v.metrics.serviceMonitor.enabled }}
{{- fail "hostNetwork: true gives every worker and janitor replica its own port, which a ServiceMonitor cannot name: scrape the host ports directly (docs/deploy.md) and leave metrics.serviceMonitor.enabled false" }}
{{- end }}
{{- if and (ne $a.mode "none") (gt (int $a.minReplicas) (int $a.maxReplicas)) }}
{{- fail "worker.autoscaling.minReplicas must not exceed worker.autoscaling.maxReplicas" }}
{{- end }}
{{- if eq $a.mode "hpa" }}
{{- if lt (int $a.minReplicas) 1 }}
{{- fail "worker.autoscaling.minReplicas must be at least 1 with mode hpa (use mode keda to scale to zero)" }}
{{- end }}
{{- if and (eq (int $a.hpa.cpuUtilization) 0) (not $a.hpa.external.enabled) }}
{{- fail "worker.autoscaling.mode hpa needs a metric: set worker.autoscaling.hpa.cpuUtilization above 0 or enable worker.autoscaling.hpa.external" }}
{{- end }}
{{- if and (gt (int $a.hpa.cpuUtilization) 0) (not (dig "requests" "cpu" "" $v.worker.resources)) }}
{{- fail "worker.autoscaling.hpa.cpuUtilization needs worker.resources.requests.cpu (utilization is a percentage of the request)" }}
{{- end }}
{{- end }}
{{- if and (eq $a.mode "keda") (eq $a.keda.trigger "prometheus") (not $a.keda.serverAddress) }}
{{- fail "worker.autoscaling.keda.serverAddress (the Prometheus URL) is required for the prometheus trigger" }}
{{- end }}

{{- /* Redis. */}}
{{- if not $v.redis.deploy }}
{{- $u := urlParse $v.redis.url }}
{{- if ne $u.scheme "redis" }}
{{- fail (printf "redis.url %q must be redis://host:port/db" $v.redis.url) }}
{{- end }}
{{- if $u.userinfo }}
{{- fail "redis.url must not carry credentials (they would sit in a plain environment variable): put the password in a Secret named by redis.existingSecret" }}
{{- end }}
{{- end }}

{{- if and $v.redis.sentinel.sentinels $v.redis.cluster.seeds }}
{{- fail "redis.sentinel.sentinels and redis.cluster.seeds exclude each other: Sentinel watches one primary, Cluster has its own failover" }}
{{- end }}
{{- if and $v.redis.deploy (or $v.redis.sentinel.sentinels $v.redis.cluster.seeds) }}
{{- fail "redis.deploy runs a single Redis: leave redis.sentinel.sentinels and redis.cluster.seeds empty with it" }}
{{- end }}
{{- if and $v.redis.sentinel.sentinels (not $v.redis.sentinel.masterName) }}
{{- fail "redis.sentinel.masterName (the master the sentinels monitor) is required with redis.sentinel.sentinels" }}
{{- end }}
{{- if and (or $v.redis.sentinel.sentinels $v.redis.cluster.seeds) (eq $v.worker.autoscaling.mode "keda") (eq $v.worker.autoscaling.keda.trigger "redis") }}
{{- fail "worker.autoscaling.keda.trigger redis reads one Redis address: with Sentinel or Cluster use the prometheus trigger" }}
{{- end }}

{{- /* Drain budgets. */}}
{{- if lt (int $v.api.terminationGracePeriodSeconds) (add (div (add (int $v.api.drainDelayMs) 999) 1000) 5) }}
{{- fail "api.terminationGracePeriodSeconds must exceed api.drainDelayMs by 5 s at least" }}
{{- end }}

{{- /* Settings the chart owns may not come in through env or config. */}}
{{- $owned := dict
  "JOBMILL_LISTEN" "api.port and listenHost"
  "JOBMILL_METRICS_LISTEN" "worker.metricsPort / janitor.metricsPort and listenHost"
  "REDIS_URL" "redis.url" "REDIS_HOST" "redis.url" "REDIS_PORT" "redis.url" "REDIS_DB" "redis.url"
  "REDIS_PASSWORD" "redis.existingSecret" "JOBMILL_PREFIX" "redis.prefix"
  "REDIS_SENTINELS" "redis.sentinel.sentinels" "REDIS_SENTINEL_MASTER" "redis.sentinel.masterName"
  "REDIS_CLUSTER" "redis.cluster.seeds"
  "JOBMILL_LOG_LEVEL" "logLevel"
  "JOBMILL_QUEUES" "worker.queues" "JOBMILL_CONCURRENCY" "worker.concurrency"
  "JOBMILL_SHUTDOWN_GRACE_MS" "worker.shutdownGraceMs"
  "JOBMILL_API_DRAIN_DELAY_MS" "api.drainDelayMs" "JOBMILL_API_TOKENS_FILE" "api.auth.existingSecret" }}
{{- range $c := list "api" "worker" "janitor" }}
{{- range $k, $_ := (index $v $c).env }}
{{- if hasKey $owned $k }}
{{- fail (printf "%s.env.%s: the chart sets it from %s; set that value instead" $c $k (index $owned $k)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $ownedConfig := dict
  "redis" (list "url" "prefix")
  "log" (list "level")
  "api" (list "listen" "drain_delay_ms" "tokens_file")
  "worker" (list "metrics_listen" "queues" "concurrency" "handlers" "shutdown_grace_ms")
  "janitor" (list "metrics_listen") }}
{{- range $section, $body := $v.config }}
{{- if not (kindIs "map" $body) }}
{{- fail (printf "config.%s must be a map of settings (docs/configuration.md)" $section) }}
{{- end }}
{{- range $key := (get $ownedConfig $section | default (list)) }}
{{- if hasKey $body $key }}
{{- fail (printf "config.%s.%s is set by the chart from its own values (see values.yaml)" $section $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
