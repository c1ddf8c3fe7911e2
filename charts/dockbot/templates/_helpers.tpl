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

{{/* DOCKBOT_PREVIEW_URL: the value, else http(s)://<preview.ingressHost>, else empty (dockbot's default). */}}
{{- define "dockbot.previewUrl" -}}
{{- if .Values.preview.url }}
{{- .Values.preview.url }}
{{- else if and .Values.ingress.enabled .Values.preview.ingressHost }}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.preview.ingressHost }}
{{- end }}
{{- end }}

{{/*
DOCKBOT_PREVIEW_UPSTREAM: the value, else the versions' published ports on the engine's host: the
node's IP for the node's socket (NODE_IP, from the downward API), docker.host's host for a remote
engine. Never `auto`: in a pod, 127.0.0.1 is the pod, and the pod is no container of that engine.
*/}}
{{- define "dockbot.previewUpstream" -}}
{{- if .Values.preview.upstream }}
{{- .Values.preview.upstream }}
{{- else if eq .Values.docker.mode "remote" }}
{{- printf "published:%s" (urlParse .Values.docker.host).hostname }}
{{- else }}
{{- print "published:$(NODE_IP)" }}
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
{{- if and .Values.preview.ingressHost (not (hasPrefix "*." .Values.preview.ingressHost)) }}
{{- fail (printf "preview.ingressHost must be a wildcard host starting with *., e.g. *.preview.example.com, got %q" .Values.preview.ingressHost) }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
{{- fail "ingress.enabled needs ingress.host" }}
{{- end }}
{{- end }}
