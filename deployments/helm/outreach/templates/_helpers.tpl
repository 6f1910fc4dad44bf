{{/* The chart's name, or nameOverride. */}}
{{- define "outreach.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: fullnameOverride, else RELEASE-NAME, or RELEASE when it holds the name already. */}}
{{- define "outreach.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "outreach.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "outreach.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outreach.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "outreach.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "outreach.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "outreach.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "outreach.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret that holds the API keys file. */}}
{{- define "outreach.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "outreach.fullname" .)) .Values.apiKeys.existingSecret -}}
{{- end -}}

{{/* The policy file's text: .Values.policy, else the chart's files/policy.yaml. */}}
{{- define "outreach.policy" -}}
{{- if .Values.policy -}}
{{- .Values.policy -}}
{{- else -}}
{{- .Files.Get "files/policy.yaml" -}}
{{- end -}}
{{- end -}}

{{/* Stops the render on values that cannot work. */}}
{{- define "outreach.validate" -}}
{{- if not .Values.redis.addr -}}
{{- fail "redis.addr is required: without it every pod would run its own in-memory Redis" -}}
{{- end -}}
{{- if not .Values.kafka.brokers -}}
{{- fail "kafka.brokers is required: without it every pod would run its own in-memory Kafka broker" -}}
{{- end -}}
{{- if and .Values.apiKeys.existingSecret .Values.apiKeys.content -}}
{{- fail "apiKeys: set existingSecret or content, not both" -}}
{{- end -}}
{{- if not (include "outreach.policy" .) -}}
{{- fail "policy is empty and files/policy.yaml is missing" -}}
{{- end -}}
{{- end -}}
