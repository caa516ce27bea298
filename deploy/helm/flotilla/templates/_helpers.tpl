{{/* Names, labels and the checks every render runs. */}}

{{- define "flotilla.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flotilla.fullname" -}}
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

{{- define "flotilla.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flotilla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flotilla.labels" -}}
helm.sh/chart: {{ include "flotilla.chart" . }}
{{ include "flotilla.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flotilla
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "flotilla.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flotilla.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flotilla.secretName" -}}
{{- default (include "flotilla.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "flotilla.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Refuses value combinations that cannot work, with the value to change. */}}
{{- define "flotilla.validate" -}}
{{- if not .Values.existingSecret }}
{{- $url := required "database.url is required (postgres://USER:PASSWORD@HOST:5432/DB), or name a Secret in existingSecret" .Values.database.url }}
{{- if and (gt (int .Values.replicaCount) 1) (not (hasPrefix "postgres" $url)) }}
{{- fail "replicaCount > 1 needs PostgreSQL: database.url must be postgres://… (SQLite lives in one pod)" }}
{{- end }}
{{- $key := required "masterKey is required (openssl rand -base64 32), or name a Secret in existingSecret" .Values.masterKey }}
{{- if ne (len (b64dec $key)) 32 }}
{{- fail "masterKey must be the base64 of 32 random bytes (openssl rand -base64 32)" }}
{{- end }}
{{- if and .Values.bootstrapToken (lt (len .Values.bootstrapToken) 43) }}
{{- fail "bootstrapToken needs 43+ characters of random base64 or hex (openssl rand -base64 32)" }}
{{- end }}
{{- end }}
{{- if and .Values.server.tls.enabled (not .Values.server.tls.secretName) }}
{{- fail "server.tls.enabled needs server.tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if and .Values.persistence.enabled (gt (int .Values.replicaCount) 1) }}
{{- fail "persistence (SQLite on a volume) needs replicaCount 1; several replicas share PostgreSQL instead" }}
{{- end }}
{{- if not (has .Values.podAntiAffinity (list "soft" "hard" "")) }}
{{- fail "podAntiAffinity must be soft, hard or \"\"" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- end }}

{{/* A grpc probe, or a TCP one when the port speaks TLS (kubelet's gRPC probes are plaintext). */}}
{{- define "flotilla.probe" -}}
{{- $p := .probe }}
{{- if .root.Values.server.tls.enabled }}
tcpSocket:
  port: grpc
{{- else }}
grpc:
  port: {{ .root.Values.server.port }}
  service: {{ $p.service | quote }}
{{- end }}
{{- with $p.initialDelaySeconds }}
initialDelaySeconds: {{ . }}
{{- end }}
periodSeconds: {{ $p.periodSeconds }}
timeoutSeconds: {{ $p.timeoutSeconds }}
failureThreshold: {{ $p.failureThreshold }}
{{- with $p.successThreshold }}
successThreshold: {{ . }}
{{- end }}
{{- end }}
