{{- define "axon.labels" -}}
app.kubernetes.io/name: axon
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "axon.selector" -}}
app.kubernetes.io/name: axon
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
