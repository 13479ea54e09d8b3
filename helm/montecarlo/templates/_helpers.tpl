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

{{- /* The app's image: the tag given, or the chart's appVersion (never "latest"). */ -}}
{{- define "montecarlo.image" -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
{{- end -}}

{{- /* Every pod: not root, the runtime's default seccomp profile. */ -}}
{{- define "montecarlo.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- /* Every container: no privilege escalation, no capabilities, a read-only root
filesystem; what must be written goes to emptyDirs (montecarlo.appVolumes). */ -}}
{{- define "montecarlo.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}

{{- /* The app's writable places: /tmp (MC_VAR_DIR, the metrics directory) and numba's
cache, which numba needs writable even to load from it. The init container copies the
image's compiled kernels there, so no pod compiles them again. */ -}}
{{- define "montecarlo.numbaInit" -}}
initContainers:
  - name: numba-cache
    image: {{ include "montecarlo.image" . }}
    command: ["sh", "-c", "cp -a /app/.numba-cache/. /numba-cache/"]
    {{- include "montecarlo.containerSecurity" . | nindent 4 }}
    resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 128Mi}}
    volumeMounts: [{name: numba-cache, mountPath: /numba-cache}]
{{- end -}}
{{- define "montecarlo.appMounts" -}}
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  - {name: metrics, mountPath: /tmp/prometheus}
  - {name: numba-cache, mountPath: /app/.numba-cache}
{{- end -}}
{{- define "montecarlo.appVolumes" -}}
- {name: tmp, emptyDir: {}}
- {name: metrics, emptyDir: {}}
- {name: numba-cache, emptyDir: {}}
{{- end -}}
