{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "readmodel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name already has it. */}}
{{- define "readmodel.fullname" -}}
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

{{- define "readmodel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "readmodel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "readmodel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "readmodel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "readmodel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "readmodel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "readmodel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* librdkafka property -> environment variable name readmodel reads. */}}
{{- define "readmodel.kafkaEnvName" -}}
{{- printf "READMODEL_KAFKA_%s" (. | replace "." "_" | upper) }}
{{- end }}

{{/* Environment of every readmodel container: the ConfigMap, then secrets
     (as secretKeyRef, so no secret value is ever in a manifest). */}}
{{- define "readmodel.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "readmodel.fullname" . }}
  {{- with .Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $secret := .Values.secrets.existingSecret }}
{{- if or .Values.secrets.redisUrlKey .Values.secrets.kafka .Values.extraEnv .Values.secrets.opensearchUsernameKey }}
env:
  {{- if .Values.secrets.redisUrlKey }}
  - name: READMODEL_REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ required "secrets.existingSecret is required when secrets.redisUrlKey is set" $secret }}
        key: {{ .Values.secrets.redisUrlKey }}
  {{- end }}
  {{- range $property, $key := .Values.secrets.kafka }}
  - name: {{ include "readmodel.kafkaEnvName" $property }}
    valueFrom:
      secretKeyRef:
        name: {{ required "secrets.existingSecret is required when secrets.kafka is set" $secret }}
        key: {{ $key }}
  {{- end }}
  {{- if .Values.secrets.opensearchUsernameKey }}
  - name: READMODEL_OPENSEARCH_USERNAME
    valueFrom:
      secretKeyRef:
        name: {{ required "secrets.existingSecret is required when secrets.opensearchUsernameKey is set" $secret }}
        key: {{ .Values.secrets.opensearchUsernameKey }}
  - name: READMODEL_OPENSEARCH_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ required "secrets.opensearchPasswordKey is required with secrets.opensearchUsernameKey" .Values.secrets.opensearchPasswordKey }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Flags shared by serve, rebuild and verify. */}}
{{- define "readmodel.commonArgs" -}}
- --topic
- {{ .Values.kafka.topic | quote }}
- --group
- {{ .Values.kafka.group | quote }}
- --redis-prefix
- {{ .Values.redis.prefix | quote }}
- --log-format
- {{ .Values.log.format | quote }}
- --log-level
- {{ .Values.log.level | quote }}
{{- if .Values.opensearch.url }}
- --opensearch-bulk-docs
- {{ .Values.opensearch.bulkDocs | int64 | quote }}
- --opensearch-bulk-bytes
- {{ .Values.opensearch.bulkBytes | int64 | quote }}
{{- with .Values.opensearch.caFile }}
- --opensearch-ca-file
- {{ . | quote }}
{{- end }}
{{- with .Values.opensearch.awsRegion }}
- --opensearch-aws-region
- {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes and mounts of every pod: a writable /tmp under a read-only
     root filesystem, plus the extra ones from values. */}}
{{- define "readmodel.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .Values.redis.tls.secretName }}
  - name: redis-tls
    mountPath: /etc/readmodel/redis-tls
    readOnly: true
  {{- end }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "readmodel.volumes" -}}
volumes:
  - name: tmp
    emptyDir: {}
  {{- with .Values.redis.tls.secretName }}
  - name: redis-tls
    secret:
      secretName: {{ . | quote }}
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Pod spec fields shared by the Deployment and the Jobs. */}}
{{- define "readmodel.podCommon" -}}
serviceAccountName: {{ include "readmodel.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{ include "readmodel.volumes" . }}
{{- end }}

{{/* jobTemplate of the rebuild and verify CronJobs. Called with a dict:
     root (the chart context), component (rebuild|verify), args (list),
     job (.Values.rebuild or .Values.verify). */}}
{{- define "readmodel.jobTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "readmodel.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  backoffLimit: {{ .backoffLimit }}
  activeDeadlineSeconds: {{ .job.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .job.ttlSecondsAfterFinished }}
  podFailurePolicy:
    rules:
      # 2: bad usage or configuration, 3: truncated history refused: a
      # retry cannot succeed, an operator must act (README runbook).
      - action: FailJob
        onExitCodes:
          containerName: readmodel
          operator: In
          values: [2, 3]
  template:
    metadata:
      labels:
        {{- include "readmodel.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $root.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      {{- include "readmodel.podCommon" $root | nindent 6 }}
      containers:
        - name: readmodel
          image: {{ include "readmodel.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
            {{- include "readmodel.commonArgs" $root | nindent 12 }}
            - --metrics-addr
            - {{ printf "0.0.0.0:%d" ($root.Values.metrics.port | int) | quote }}
            {{- with .job.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- include "readmodel.env" $root | nindent 10 }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
          resources:
            {{- toYaml .job.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          {{- include "readmodel.volumeMounts" $root | nindent 10 }}
{{- end }}
