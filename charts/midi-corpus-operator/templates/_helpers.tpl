{{/*
The chart's name, truncated to 63 characters (the limit of a DNS label and of a label value).
*/}}
{{- define "midi-corpus-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name prefix of every resource: the release name, followed by the chart name unless the release name already
contains it. Truncated to 63 characters.
*/}}
{{- define "midi-corpus-operator.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "midi-corpus-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "midi-corpus-operator.labels" -}}
helm.sh/chart: {{ include "midi-corpus-operator.chart" . }}
{{ include "midi-corpus-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: midi-corpus-operator
{{- end }}

{{/*
Labels that select the controller pods (the only pods of a release: runner pods live in the MidiCorpus namespaces and
carry their own labels). Immutable once installed: a Deployment's selector cannot change.
*/}}
{{- define "midi-corpus-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "midi-corpus-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The controller's ServiceAccount.
*/}}
{{- define "midi-corpus-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "midi-corpus-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The controller's image (and, unless runner.image says otherwise, the runner pods').
*/}}
{{- define "midi-corpus-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The image of the scan and runner pods.
*/}}
{{- define "midi-corpus-operator.runnerImage" -}}
{{- default (include "midi-corpus-operator.image" .) .Values.runner.image }}
{{- end }}

{{/*
The leader-election Lease's name.
*/}}
{{- define "midi-corpus-operator.leaseName" -}}
{{- default (include "midi-corpus-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The rules the controller needs on MidiCorpora and their Jobs, pods, Secrets and Events, shared by the ClusterRole
(watchNamespace empty) and the Role (watchNamespace set). Each verb is there for a reason given beside it; the same
table is in the README. Keep in step with manifests/rbac/cluster-role.yaml (a test compares them).
*/}}
{{- define "midi-corpus-operator.rules" -}}
# Runner and scan pods (label-selected): the budget counts each pod from creation until it is gone, Terminating
# included. Informer only. No delete: the Job controller owns its pods.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# The database Secret named by spec.database.secretRef, read to ask the server SHOW max_connections and to tell which
# corpora share a database. get only: the controller never lists or caches Secrets.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# core/v1 Events on major transitions.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# One scan Job and one Indexed run Job per corpus and run. Informer: list + watch; create: start them; patch:
# parallelism and suspend as the budget's shares move; delete: the unfinished Job of a run superseded by spec.rerun,
# or of a corpus whose rows are about to be deleted. Finished Jobs go by their TTL or with their MidiCorpus.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "delete", "list", "patch", "watch"]
# The MidiCorpora. Informer: list + watch; patch: metadata.finalizers only (spec.deletionPolicy Delete).
- apiGroups: ["midi.corpus.dev"]
  resources: ["midicorpora"]
  verbs: ["list", "patch", "watch"]
# Status is the controller's only write to a MidiCorpus (a PUT with the resourceVersion read).
- apiGroups: ["midi.corpus.dev"]
  resources: ["midicorpora/status"]
  verbs: ["update"]
# The Jobs' ownerReferences set blockOwnerDeletion; with the OwnerReferencesPermissionEnforcement admission plugin
# that needs update on the owner's finalizers subresource.
- apiGroups: ["midi.corpus.dev"]
  resources: ["midicorpora/finalizers"]
  verbs: ["update"]
{{- end }}
