{{- define "scimgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "scimgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "scimgate.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "scimgate.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "scimgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "scimgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: scimgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* What selects the gateway pods. */}}
{{- define "scimgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scimgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "scimgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Settings the chart derives from other values: `config` may not set them. */}}
{{- define "scimgate.ownedSettings" -}}
SCIMGATE_LISTEN SCIMGATE_METRICS_LISTEN SCIMGATE_LOG_FORMAT SCIMGATE_TRUSTED_PROXY_HOPS SCIMGATE_DATABASE_URL SCIMGATE_DATABASE_URL_FILE SCIMGATE_REDIS_URL SCIMGATE_REDIS_URL_FILE
{{- end -}}

{{- define "scimgate.checks" -}}
{{- if and .Values.ingress.enabled .Values.httpRoute.enabled -}}
{{- fail "enable either ingress or httpRoute, not both" -}}
{{- end -}}
{{- if and (or .Values.ingress.enabled .Values.httpRoute.enabled) (lt (int .Values.trustedProxyHops) 1) -}}
{{- fail "trustedProxyHops must be at least 1 behind an Ingress or HTTPRoute: the proxy sets X-Forwarded-For" -}}
{{- end -}}
{{- $owned := splitList " " (include "scimgate.ownedSettings" .) -}}
{{- range $name, $_ := .Values.config -}}
{{- if has $name $owned -}}
{{- fail (printf "config.%s is set by the chart (see values.yaml)" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The volume mounts both containers share: the Secret, as files. */}}
{{- define "scimgate.secretEnv" -}}
- name: SCIMGATE_DATABASE_URL_FILE
  value: /etc/scimgate/secrets/database-url
{{- if .Values.secrets.redisUrlKey }}
- name: SCIMGATE_REDIS_URL_FILE
  value: /etc/scimgate/secrets/redis-url
{{- end }}
{{- end -}}
