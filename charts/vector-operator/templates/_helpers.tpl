{{/*
Names. The operator's objects are called <fullname>; Milvus Lite's <fullname>-milvus-lite; the
worker ServiceAccount <fullname>-worker. The release name is used as is when it already says
vector-operator (helm install vector-operator ...), else <release>-vector-operator.
*/}}
{{- define "vector-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vector-operator.fullname" -}}
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

{{/* Labels every object of the chart carries. */}}
{{- define "vector-operator.labels" -}}
app.kubernetes.io/name: {{ include "vector-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "vector-operator.commonLabels" . }}
{{- end }}

{{/* The labels of a pod template, besides its selector's. */}}
{{- define "vector-operator.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: vector-operator
{{- end }}

{{/* The operator pod's selector (and the metrics Service's). */}}
{{- define "vector-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vector-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "vector-operator.milvusLite.name" -}}
{{- printf "%s-milvus-lite" (include "vector-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vector-operator.milvusLite.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vector-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: milvus-lite
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "vector-operator.serviceAccountName" -}}
{{- default (include "vector-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The worker Jobs' ServiceAccount. */}}
{{- define "vector-operator.workerServiceAccountName" -}}
{{- default (printf "%s-worker" (include "vector-operator.fullname" .)) .Values.worker.serviceAccount.name }}
{{- end }}

{{/*
The namespaces the worker ServiceAccount is created in: every watched namespace (namespaced
mode), or worker.serviceAccount.namespaces (cluster mode, where the chart cannot know them all).
One per line.
*/}}
{{- define "vector-operator.workerServiceAccountNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
{{ . }}
{{- end }}
{{- else }}
{{- range .Values.worker.serviceAccount.namespaces }}
{{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether the operator passes --worker-service-account: when that account exists where Jobs run. */}}
{{- define "vector-operator.workerServiceAccountUsed" -}}
{{- if and .Values.worker.serviceAccount.create (or .Values.watchNamespaces .Values.worker.serviceAccount.namespaces) }}true{{- end }}
{{- end }}

{{- define "vector-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "vector-operator.workerImage" -}}
{{- default (include "vector-operator.image" .) .Values.worker.image }}
{{- end }}

{{/* The Milvus the operator uses for collections whose spec names none. */}}
{{- define "vector-operator.milvusUri" -}}
{{- if .Values.milvus.uri }}
{{- .Values.milvus.uri }}
{{- else if .Values.milvus.lite.enabled }}
{{- printf "http://%s.%s.svc:%d" (include "vector-operator.milvusLite.name" .) .Release.Namespace (int .Values.milvus.lite.port) }}
{{- end }}
{{- end }}

{{/* The pod-level securityContext of the "restricted" Pod Security Standard. */}}
{{- define "vector-operator.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.podSecurityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.podSecurityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.podSecurityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The container-level securityContext of the "restricted" Pod Security Standard. */}}
{{- define "vector-operator.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The operator's rules in one namespace (a Role per watched namespace), or everywhere (the
ClusterRole of cluster mode). Each rule names the code that needs it.
*/}}
{{- define "vector-operator.namespacedRules" -}}
# Kopf watches the three resources (list, watch) and patches them (its progress and diff-base
# annotations and its finalizer, vectors.aios.dev/...); the controller reads one by name
# (kube/custom_objects.py: get) and lists a namespace's plans and policies (kube/plans.py,
# kube/policies.py: list).
- apiGroups: ["vectors.aios.dev"]
  resources: ["vectorcollections", "migrationplans", "rollbackpolicies"]
  verbs: ["get", "list", "watch", "patch"]
# Status: Kopf patches it; kube/targets.py and kube/plans.py (conditions) merge-patch it;
# kube/plans.py (write_status) and kube/policies.py (record_execution) replace it (update) with the
# resourceVersion they read, for optimistic concurrency.
- apiGroups: ["vectors.aios.dev"]
  resources: ["migrationplans/status", "rollbackpolicies/status"]
  verbs: ["patch", "update"]
- apiGroups: ["vectors.aios.dev"]
  resources: ["vectorcollections/status"]
  verbs: ["patch"]
# The plan's Jobs and ConfigMaps carry an ownerReference to it with blockOwnerDeletion: true;
# where the OwnerReferencesPermissionEnforcement admission plugin runs, setting that needs update
# on the owner's finalizers subresource.
- apiGroups: ["vectors.aios.dev"]
  resources: ["migrationplans/finalizers"]
  verbs: ["update"]
# Batch Jobs: Kopf's job-finished handler watches them (list, watch); kube/jobs.py lists a plan's
# Jobs (observe_jobs), creates one per batch (create_job) and deletes them (delete_jobs).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
# The sync worker of a plan with a catch-up or a continuous sync: kube/sync_workers.py reads its
# Deployment (get), creates it, patches its replicas (0 while paused) and its pod template (when the
# sync settings or the worker image changed), and deletes it.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch", "delete"]
# kube/jobs.py lists a plan's pods for the worker's result (termination message) and the
# scheduler's word on a pod that cannot be placed; kube/sync_workers.py what the sync worker's pod
# waits on.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# kube/plan_config.py (batch boundaries, pinned target: get, create, patch) and
# kube/plan_history.py (the batch history: get, create, update).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "update"]
# kube/secrets.py: one key of a Secret a resource names (source URL, Milvus credentials).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Kopf posts the handlers' Events (kopf.info / kopf.warn in controller/).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* Kopf's peering (--peering): it lists, watches and patches (keep-alives in status) its peering objects. */}}
{{- define "vector-operator.peeringRules" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ . | quote }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{/* The peering objects are created after the release's CRDs (see peering.yaml). */}}

