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

{{- /* The migrate Job is a pre-install/pre-upgrade hook, and hooks run before the release's
own resources exist: the ConfigMap and Secret it reads must be hooks too, created first
(lower weight). Helm does not delete hook resources on uninstall (see NOTES). */ -}}
{{- define "montecarlo.configHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
{{- /* Pods restart when the settings change (envFrom is read only at start). */ -}}
{{- define "montecarlo.configChecksum" -}}
checksum/config: {{ toJson .Values.config | sha256sum }}
checksum/secrets: {{ toJson .Values.secrets | sha256sum }}
{{- end -}}
