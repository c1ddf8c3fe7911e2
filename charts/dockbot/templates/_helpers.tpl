{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "dockbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name for every object of this release. */}}
{{- define "dockbot.fullname" -}}
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

{{- define "dockbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dockbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dockbot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dockbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dockbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding tokens, the MongoDB URL and the SSH key: the user's or the chart's. */}}
{{- define "dockbot.secretName" -}}
{{- default (include "dockbot.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* DOCKBOT_PUBLIC_URL: the value, else the Ingress's host, else empty (dockbot's default). */}}
{{- define "dockbot.publicUrl" -}}
{{- if .Values.config.publicUrl }}
{{- .Values.config.publicUrl }}
{{- else if .Values.ingress.enabled }}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}
{{- end }}

{{/* Whether the SSH key / known_hosts come from a Secret (and so need the init container). */}}
{{- define "dockbot.sshFromSecret" -}}
{{- if or .Values.secrets.existingSecret .Values.ssh.privateKey .Values.ssh.knownHosts }}true{{ end }}
{{- end }}

{{/* Refuses combinations that would break at run time, with the fix in the message. */}}
{{- define "dockbot.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.mongodb.url) (not .Values.secrets.existingSecret) }}
{{- fail "replicaCount > 1 needs mongodb.url: the embedded SQLite store belongs to one process (README.md, \"Several replicas\")" }}
{{- end }}
{{- if not (has .Values.docker.mode (list "socket" "remote")) }}
{{- fail (printf "docker.mode must be socket or remote, got %q" .Values.docker.mode) }}
{{- end }}
{{- if and (eq .Values.docker.mode "remote") (not .Values.docker.host) }}
{{- fail "docker.mode remote needs docker.host (e.g. tcp://docker.example.internal:2376)" }}
{{- end }}
{{- if and .Values.secrets.adminToken (lt (len .Values.secrets.adminToken) 16) }}
{{- fail "secrets.adminToken must be at least 16 characters long" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
{{- fail "ingress.enabled needs ingress.host" }}
{{- end }}
{{- end }}
