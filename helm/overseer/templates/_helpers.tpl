{{/*
Names and labels, Helm best-practice style.
*/}}

{{- define "overseer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "overseer.fullname" -}}
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

{{- define "overseer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change for the life of a release: used in selectors. */}}
{{- define "overseer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "overseer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "overseer.labels" -}}
helm.sh/chart: {{ include "overseer.chart" . }}
{{ include "overseer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: overseer
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "overseer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "overseer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "overseer.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "overseer.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "overseer.fullname" .)) }}
{{- end }}

{{- define "overseer.configName" -}}
{{- printf "%s-settings" (include "overseer.fullname" .) }}
{{- end }}

{{- define "overseer.rulesName" -}}
{{- printf "%s-rules" (include "overseer.fullname" .) }}
{{- end }}

{{/* Where the state volume is mounted; OVERSEER_HOME. */}}
{{- define "overseer.home" -}}/var/lib/overseer{{- end }}

{{- define "overseer.signingKeyPath" -}}
{{- printf "%s/keys/killswitch-ed25519.pem" (include "overseer.home" .) }}
{{- end }}

{{/*
A settings value as an environment variable string: numbers through toJson
(Helm reads YAML numbers as float64; toJson prints 1048576, not 1.048576e+06).
*/}}
{{- define "overseer.envValue" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ toJson . | quote }}{{ end }}
{{- end }}

{{/*
Checks that a schema cannot express. Called from the Deployment.
*/}}
{{- define "overseer.validate" -}}
{{- $partitions := int .Values.settings.topic_partitions }}
{{- $most := .Values.autoscaling.enabled | ternary (int .Values.autoscaling.maxReplicas) (int .Values.replicaCount) }}
{{- if gt $most $partitions }}
{{- fail (printf "%d worker replicas but settings.topic_partitions is %d: a partition is consumed by one worker, so %d would sit idle. Raise topic_partitions or lower the replicas." $most $partitions (sub $most $partitions)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas is greater than autoscaling.maxReplicas" }}
{{- end }}
{{- if gt (int .Values.settings.topic_min_insync) (int .Values.settings.topic_replication) }}
{{- fail "settings.topic_min_insync cannot exceed settings.topic_replication: every produce would fail" }}
{{- end }}
{{- if and (hasPrefix "SASL" .Values.settings.kafka_security_protocol) (not .Values.settings.kafka_sasl_mechanism) }}
{{- fail "settings.kafka_security_protocol is SASL_* but settings.kafka_sasl_mechanism is empty" }}
{{- end }}
{{- if and .Values.kafkaTls.enabled (not .Values.kafkaTls.caSecret) }}
{{- fail "kafkaTls.enabled needs kafkaTls.caSecret (a Secret with the CA certificate)" }}
{{- end }}
{{- end }}
