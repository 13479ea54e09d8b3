{{- define "montecarlo.name" -}}{{ .Release.Name }}-montecarlo{{- end -}}
{{- define "montecarlo.labels" -}}
app.kubernetes.io/name: montecarlo
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "montecarlo.secretName" -}}{{ default (printf "%s-secrets" (include "montecarlo.name" .)) .Values.existingSecret }}{{- end -}}
{{- define "montecarlo.env" -}}
envFrom:
  - configMapRef: {name: {{ include "montecarlo.name" . }}-config}
  - secretRef: {name: {{ include "montecarlo.secretName" . }}}
{{- end -}}
