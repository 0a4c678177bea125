{{/* Labels on every object; the selector is the stable subset of them. */}}
{{- define "axon.labels" -}}
{{ include "axon.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "axon.selector" -}}
app.kubernetes.io/name: axon
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The image: the tag defaults to the chart's appVersion. */}}
{{- define "axon.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The port of prometheusServeAddr ([HOST]:PORT), "" when metrics are off. */}}
{{- define "axon.metricsPort" -}}
{{- if .Values.prometheusServeAddr -}}
{{ .Values.prometheusServeAddr | splitList ":" | last }}
{{- end -}}
{{- end -}}

{{/* A cgroupRoot outside the /sys/fs/cgroup mount needs a mount of its own. */}}
{{- define "axon.cgroupRootMount" -}}
{{- $root := .Values.cgroupRoot | default "" | trimSuffix "/" -}}
{{- if and $root (ne $root "/sys/fs/cgroup") (not (hasPrefix "/sys/fs/cgroup/" $root)) -}}
{{ $root }}
{{- end -}}
{{- end -}}
