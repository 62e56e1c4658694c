{{/* Names and labels. */}}
{{- define "persona.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "persona.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "persona.selectorLabels" -}}
app.kubernetes.io/name: {{ include "persona.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "persona.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "persona.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: persona
{{- end -}}

{{- define "persona.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "persona.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "persona.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "persona.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "persona.fullname" .) -}}
{{- end -}}

{{/*
This release's worker build id (worker.buildId): the image's own, which its build recorded in the
file BUILD_ID (scripts/build-image.sh). Required: it names the build's Deployment, and a chart
cannot read a file in an image.
*/}}
{{- define "persona.buildId" -}}
{{- $id := required "worker.buildId is required: the image's build id (`docker run --rm --entrypoint cat <image> BUILD_ID`; docs/kubernetes.md#worker-versioning)" .Values.worker.buildId -}}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$" $id) -}}
{{- fail (printf "worker.buildId %q: expected letters, digits, . _ + -, at most 100 (config/envWorker.ts)" $id) -}}
{{- end -}}
{{- $id -}}
{{- end -}}

{{/*
A build id as a name segment and label value (the `persona/worker-build` label): lower case, each run
of characters other than [a-z0-9-] one "-". Past 40 characters, its first 31 and 8 hex digits of the
id's SHA-256, so that two long ids with a common beginning still name two Deployments.
*/}}
{{- define "persona.buildSlug" -}}
{{- $s := regexReplaceAll "[^a-z0-9-]+" (lower .) "-" | trimAll "-" -}}
{{- if le (len $s) 40 -}}
{{- $s -}}
{{- else -}}
{{- printf "%s-%s" (regexReplaceAll "-+$" ($s | trunc 31) "") (sha256sum . | trunc 8) -}}
{{- end -}}
{{- end -}}

{{/* The Deployment of this release's worker build: <fullname>-worker-<build slug>. */}}
{{- define "persona.workerName" -}}
{{- printf "%s-worker-%s" (include "persona.fullname" .) (include "persona.buildSlug" (include "persona.buildId" .)) -}}
{{- end -}}

{{/*
The worker groups to render, as JSON: worker.groups, checked (every kind of work exactly once,
names unique), or one group without a name that runs every kind.
*/}}
{{- define "persona.workerGroups" -}}
{{- $groups := .Values.worker.groups | default (list (dict "name" "" "kinds" (list))) -}}
{{- if .Values.worker.groups -}}
{{- $kinds := list -}}
{{- $names := list -}}
{{- range $groups -}}
{{- $kinds = concat $kinds .kinds -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- if ne (len $names) (len (uniq $names)) -}}
{{- fail (printf "worker.groups: each group needs a name of its own (%s)" (join ", " $names)) -}}
{{- end -}}
{{- if or (ne (len $kinds) (len (uniq $kinds))) (ne (len $kinds) 4) -}}
{{- fail (printf "worker.groups: together the groups must run charges, interactive, bulk and deliveries, each exactly once (they run %s)" (join ", " $kinds)) -}}
{{- end -}}
{{- end -}}
{{- toJson $groups -}}
{{- end -}}

{{/* The selector of this release's worker build's pods (its Deployment's, its disruption budget's). */}}
{{- define "persona.workerSelectorLabels" -}}
{{ include "persona.selectorLabels" . }}
app.kubernetes.io/component: worker
persona/worker-build: {{ include "persona.buildSlug" (include "persona.buildId" .) }}
{{- end -}}

{{/*
The Secret's keys every process reads (config/env.ts names), each with whether it must be there.
*/}}
{{- define "persona.secretKeys" -}}
{{- $v := .Values -}}
PERSONA_TOKEN_KEYS: true
PERSONA_PAYLOAD_KEYS: true
NEO4J_PASSWORD: true
{{- if not $v.env.PERSONA_JWKS_URL }}
PERSONA_JWT_SECRET: true
{{- end }}
{{- if and $v.kafka.brokers $v.kafka.sasl.mechanism }}
KAFKA_SASL_PASSWORD: true
{{- end }}
{{- if $v.temporal.apiKey }}
TEMPORAL_API_KEY: true
{{- end }}
{{- if $v.metrics.requireToken }}
PERSONA_METRICS_TOKEN: true
{{- end }}
{{- if $v.env.PERSONA_EVENTS_WEBHOOK_URL }}
PERSONA_EVENTS_WEBHOOK_SECRET: true
{{- end }}
{{- if $v.env.PERSONA_NOTIFY_WEBHOOK_URL }}
PERSONA_NOTIFY_WEBHOOK_SECRET: true
{{- end }}
{{- end -}}

{{/* Names that are secrets: never in the ConfigMap. */}}
{{- define "persona.secretNames" -}}
{{- list "PERSONA_TOKEN_KEYS" "PERSONA_PAYLOAD_KEYS" "NEO4J_PASSWORD" "PERSONA_JWT_SECRET" "KAFKA_SASL_PASSWORD"
  "TEMPORAL_API_KEY" "PERSONA_METRICS_TOKEN" "PERSONA_EVENTS_WEBHOOK_SECRET" "PERSONA_NOTIFY_WEBHOOK_SECRET"
  | toJson -}}
{{- end -}}

{{/* Where mounted certificates are. */}}
{{- define "persona.paths" -}}
temporalCa: /etc/persona/temporal-ca
temporalClient: /etc/persona/temporal-client
kafkaCa: /etc/persona/kafka-ca
grpcTls: /etc/persona/grpc-tls
{{- end -}}

{{/*
The non-secret environment of every process (the ConfigMap's data; inline in the hook Jobs, which
may run before the ConfigMap exists), as YAML of strings. Fails on a choice not made.
*/}}
{{- define "persona.config" -}}
{{- $v := .Values -}}
{{- $p := include "persona.paths" . | fromYaml -}}
{{- $c := dict -}}
{{- $_ := set $c "NEO4J_URI" (required "neo4j.uri is required (neo4j:// for a cluster)" $v.neo4j.uri) -}}
{{- $_ := set $c "NEO4J_USER" $v.neo4j.user -}}
{{- $_ := set $c "NEO4J_DATABASE" $v.neo4j.database -}}
{{- $_ := set $c "TEMPORAL_ADDRESS" (required "temporal.address is required (host:port)" $v.temporal.address) -}}
{{- $_ := set $c "TEMPORAL_NAMESPACE" $v.temporal.namespace -}}
{{- $_ := set $c "TEMPORAL_TASK_QUEUE" $v.temporal.taskQueue -}}
{{- with $v.temporal.uiUrl }}{{ $_ := set $c "TEMPORAL_UI_URL" . }}{{ end -}}
{{- $t := $v.temporal.tls -}}
{{- if not (or $t.enabled $v.temporal.allowPlaintext) -}}
{{- fail "temporal: set temporal.tls.enabled (with a client certificate or an API key), or temporal.allowPlaintext=true where a mesh encrypts and authenticates" -}}
{{- end -}}
{{- if and $t.enabled (not $v.temporal.allowPlaintext) (not (or $t.clientCertSecret $v.temporal.apiKey)) -}}
{{- fail "temporal: TLS alone does not authenticate Persona; set temporal.tls.clientCertSecret or temporal.apiKey" -}}
{{- end -}}
{{- $_ := set $c "TEMPORAL_TLS" (toString (not (not $t.enabled))) -}}
{{- if $t.enabled -}}
{{- with $t.caSecret }}{{ $_ := set $c "TEMPORAL_TLS_CA_FILE" (printf "%s/ca.crt" $p.temporalCa) }}{{ end -}}
{{- if $t.clientCertSecret -}}
{{- $_ := set $c "TEMPORAL_TLS_CERT_FILE" (printf "%s/tls.crt" $p.temporalClient) -}}
{{- $_ := set $c "TEMPORAL_TLS_KEY_FILE" (printf "%s/tls.key" $p.temporalClient) -}}
{{- end -}}
{{- with $t.serverName }}{{ $_ := set $c "TEMPORAL_TLS_SERVER_NAME" . }}{{ end -}}
{{- end -}}
{{- $_ := set $c "TEMPORAL_ALLOW_PLAINTEXT" (toString (not (not $v.temporal.allowPlaintext))) -}}
{{- if not $v.metrics.requireToken -}}
{{- fail "metrics.requireToken=false: production requires PERSONA_METRICS_TOKEN (the api's and the workers' /metrics)" -}}
{{- end -}}
{{- $k := $v.kafka -}}
{{- $_ := set $c "KAFKA_BROKERS" ($k.brokers | default "") -}}
{{- if $k.brokers -}}
{{- if not (or $k.tls.enabled $k.allowPlaintext) -}}
{{- fail "kafka: set kafka.tls.enabled (with kafka.sasl.mechanism), or kafka.allowPlaintext=true where a mesh encrypts and authenticates" -}}
{{- end -}}
{{- if and (not $k.allowPlaintext) (not $k.sasl.mechanism) (not $v.env.KAFKA_TLS_CERT) -}}
{{- fail "kafka: Persona must authenticate; set kafka.sasl.mechanism (or env.KAFKA_TLS_CERT and _KEY with extraVolumes)" -}}
{{- end -}}
{{- $_ := set $c "PERSONA_KAFKA_REPLICATION" (toString $k.replication) -}}
{{- $_ := set $c "PERSONA_KAFKA_MIN_INSYNC_REPLICAS" (toString $k.minInsyncReplicas) -}}
{{- $_ := set $c "KAFKA_TLS" (toString (not (not $k.tls.enabled))) -}}
{{- if and $k.tls.enabled $k.tls.caSecret -}}
{{- $_ := set $c "KAFKA_TLS_CA" (printf "%s/%s" $p.kafkaCa $k.tls.caKey) -}}
{{- end -}}
{{- with $k.sasl.mechanism -}}
{{- $_ := set $c "KAFKA_SASL_MECHANISM" . -}}
{{- $_ := set $c "KAFKA_SASL_USERNAME" (required "kafka.sasl.username is required with a mechanism" $k.sasl.username) -}}
{{- end -}}
{{- $_ := set $c "KAFKA_ALLOW_PLAINTEXT" (toString (not (not $k.allowPlaintext))) -}}
{{- end -}}
{{- $_ := set $c "PERSONA_DEPLOYMENT_NAME" $v.worker.deploymentName -}}
{{- $_ := set $c "PERSONA_BUILD_ID" (include "persona.buildId" .) -}}
{{- with $v.api.trustedProxies }}{{ $_ := set $c "PERSONA_TRUSTED_PROXIES" . }}{{ end -}}
{{- $secret := include "persona.secretNames" . | fromJsonArray -}}
{{- range $name, $value := $v.env -}}
{{- if has $name $secret -}}
{{- fail (printf "env.%s is a secret: put it in the Secret (secrets.existingSecret or secrets.values)" $name) -}}
{{- end -}}
{{- if hasKey $c $name -}}
{{- fail (printf "env.%s is set by the chart's own values (neo4j, temporal, kafka, worker, api): set it there" $name) -}}
{{- end -}}
{{- if not (kindIs "invalid" $value) }}{{ $_ := set $c $name (toString $value) }}{{ end -}}
{{- end -}}
{{- if not $c.PERSONA_GATEWAY_URL -}}
{{- fail "env.PERSONA_GATEWAY_URL is required: the payment gateway the worker charges through" -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* The non-secret environment inline (hook Jobs). */}}
{{- define "persona.configEnv" -}}
{{- range $name, $value := include "persona.config" . | fromYaml }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/*
The secrets as env, from the given Secret name (.secret) for the root context (.root). `.optional`:
a key the Secret no longer has leaves its variable unset instead of keeping the pod from starting
(a kept worker build restarting after a later release dropped it; the process says what it lacks).
*/}}
{{- define "persona.secretEnv" -}}
{{- $name := .secret -}}
{{- $optional := .optional -}}
{{- range $key, $_ := include "persona.secretKeys" .root | fromYaml }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $key }}
      {{- if $optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}

{{- define "persona.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- with .Values.temporal.tls }}
{{- if and .enabled .caSecret }}
- name: temporal-ca
  secret:
    secretName: {{ .caSecret }}
    items: [{ key: ca.crt, path: ca.crt }]
{{- end }}
{{- if and .enabled .clientCertSecret }}
- name: temporal-client
  secret:
    secretName: {{ .clientCertSecret }}
    items: [{ key: tls.crt, path: tls.crt }, { key: tls.key, path: tls.key }]
{{- end }}
{{- end }}
{{- with .Values.kafka }}
{{- if and .brokers .tls.enabled .tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .tls.caSecret }}
    items: [{ key: {{ .tls.caKey }}, path: {{ .tls.caKey }} }]
{{- end }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "persona.volumeMounts" -}}
{{- $p := include "persona.paths" . | fromYaml -}}
- name: tmp
  mountPath: /tmp
{{- with .Values.temporal.tls }}
{{- if and .enabled .caSecret }}
- name: temporal-ca
  mountPath: {{ $p.temporalCa }}
  readOnly: true
{{- end }}
{{- if and .enabled .clientCertSecret }}
- name: temporal-client
  mountPath: {{ $p.temporalClient }}
  readOnly: true
{{- end }}
{{- end }}
{{- with .Values.kafka }}
{{- if and .brokers .tls.enabled .tls.caSecret }}
- name: kafka-ca
  mountPath: {{ $p.kafkaCa }}
  readOnly: true
{{- end }}
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The pod spec's common part: who runs, and how. A hook's pod (.hook) runs before an install's
ServiceAccount exists: it takes the namespace's default one (no token either way).
*/}}
{{- define "persona.podCommon" -}}
{{- $root := .root -}}
{{- if and .hook $root.Values.serviceAccount.create }}
serviceAccountName: default
{{- else }}
serviceAccountName: {{ include "persona.serviceAccountName" $root }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Spread over nodes by default: one node lost takes one replica. */}}
{{- define "persona.spread" -}}
{{- $root := .root -}}
{{- if .constraints -}}
{{- toYaml .constraints -}}
{{- else -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "persona.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- end -}}
