{{/*
Helpers of the cutover workload chart. Every template starts with
`include "cutover.init" .`, which lays the service's per-environment
overrides (.Values.environments.<environment>) over the values. The merge is
idempotent, so each template may run it whatever order Helm renders them in.

Every `required` and `fail` message starts with the value path it is about,
then ": ", so tools (cutover's Template) can name the file and line to fix.
*/}}

{{- define "cutover.init" -}}
{{- $env := .Values.environment | default "" -}}
{{- if and $env .Values.environments -}}
{{- $over := index .Values.environments $env -}}
{{- if $over -}}
{{- include "cutover.merge" (dict "dst" .Values "src" $over) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
cutover.merge lays src over dst in place: maps merge key by key, anything
else (lists, scalars, false, 0, null) replaces. Sprig's mergeOverwrite is not
used because it cannot set false or 0 over a non-empty value.
*/}}
{{- define "cutover.merge" -}}
{{- $dst := .dst -}}
{{- range $k, $v := .src -}}
{{- if and (kindIs "map" $v) (kindIs "map" (index $dst $k)) -}}
{{- include "cutover.merge" (dict "dst" (index $dst $k) "src" $v) -}}
{{- else -}}
{{- $_ := set $dst $k $v -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cutover.fullname" -}}
{{- .Values.nameOverride | default .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cutover.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "cutover.kind" -}}
{{- .Values.kind | default "server" -}}
{{- end -}}

{{/* cutover.long is "true" for the kinds that run as a Deployment. */}}
{{- define "cutover.long" -}}
{{- if has (include "cutover.kind" .) (list "server" "worker") -}}true{{- end -}}
{{- end -}}

{{/* cutover.keda is "true" when KEDA scales the workload. */}}
{{- define "cutover.keda" -}}
{{- if .Values.keda.triggers -}}true{{- end -}}
{{- end -}}

{{/*
cutover.kubeAPI is "true" when the pods call the Kubernetes API: a Deployment
whose stream consumers keep their checkpoints in ConfigMaps and elect their
active replica with Leases (checkpoints). Only such pods mount their service
account token, and get a Role on exactly those names.
*/}}
{{- define "cutover.kubeAPI" -}}
{{- if and (include "cutover.long" .) .Values.checkpoints -}}true{{- end -}}
{{- end -}}

{{/* cutover.autoscaled is "true" when an HPA or KEDA owns the replica count. */}}
{{- define "cutover.autoscaled" -}}
{{- if and (include "cutover.long" .) (or (include "cutover.keda" .) .Values.autoscaling.enabled) -}}true{{- end -}}
{{- end -}}

{{- define "cutover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cutover.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
cutover.labels: the service's own labels, then the standard ones, which win.
*/}}
{{- define "cutover.labels" -}}
{{- $l := deepCopy (.Values.labels | default dict) -}}
{{- $_ := set $l "app.kubernetes.io/name" (include "cutover.fullname" .) -}}
{{- $_ := set $l "app.kubernetes.io/instance" .Release.Name -}}
{{- $_ := set $l "app.kubernetes.io/managed-by" .Release.Service -}}
{{- $_ := set $l "cutover.dev/service" (include "cutover.fullname" .) -}}
{{- with .Values.partOf -}}
{{- $_ := set $l "app.kubernetes.io/part-of" . -}}
{{- end -}}
{{- with .Values.environment -}}
{{- $_ := set $l "cutover.dev/environment" . -}}
{{- end -}}
{{- toYaml $l -}}
{{- end -}}

{{/* cutover.metadata: name, namespace and labels of a namespaced object. */}}
{{- define "cutover.metadata" -}}
{{- $root := .root -}}
name: {{ .name | default (include "cutover.fullname" $root) }}
namespace: {{ include "cutover.namespace" $root }}
labels:
  {{- include "cutover.labels" $root | nindent 2 }}
{{- end -}}

{{/*
cutover.fill returns fill.<name>, and fails naming it while it is empty or
still the placeholder the input had (<IMAGE1_NAME>, ${IMAGE}, #{Image}).
Call it with (list $ "name").
*/}}
{{- define "cutover.fill" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $v := index ($root.Values.fill | default dict) $name | default "" | toString -}}
{{- $msg := printf "fill.%s: not filled; set it in values/services/%s.yaml (see the # FILL comment above it)" $name $root.Release.Name -}}
{{- $v = required $msg $v -}}
{{- if regexMatch "^(<[^>]*>|\\$\\{[^}]*\\}|#\\{[^}]*\\}|\\{\\{[^}]*\\}\\}|__[A-Za-z0-9_]+__|\\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%)$" $v -}}
{{- fail (printf "fill.%s: still the placeholder %s; set it in values/services/%s.yaml (see the # FILL comment above it)" $name $v $root.Release.Name) -}}
{{- end -}}
{{- $v -}}
{{- end -}}

{{/* cutover.region: the AWS region of the environment, required when used. */}}
{{- define "cutover.region" -}}
{{- required (printf "aws.region: not set; set it in values/env/%s.yaml" (.Values.environment | default "<env>")) .Values.aws.region -}}
{{- end -}}

{{/*
cutover.clamp bounds a replica count by the environment's replicaBounds
(0 means no bound). Zero replicas stay zero: a service stopped on purpose
is not started by the environment's minimum. Call it with (list $ value).
*/}}
{{- define "cutover.clamp" -}}
{{- $root := index . 0 -}}
{{- $v := index . 1 | int -}}
{{- $b := $root.Values.replicaBounds | default dict -}}
{{- $min := $b.min | default 0 | int -}}
{{- $max := $b.max | default 0 | int -}}
{{- if and (gt $min 0) (lt $v $min) (gt $v 0) -}}{{- $v = $min -}}{{- end -}}
{{- if and (gt $max 0) (gt $v $max) -}}{{- $v = $max -}}{{- end -}}
{{- $v -}}
{{- end -}}

{{/* cutover.ceiling bounds a count by replicaBounds.max only. */}}
{{- define "cutover.ceiling" -}}
{{- $root := index . 0 -}}
{{- $v := index . 1 | int -}}
{{- $max := ($root.Values.replicaBounds | default dict).max | default 0 | int -}}
{{- if and (gt $max 0) (gt $v $max) -}}{{- $v = $max -}}{{- end -}}
{{- $v -}}
{{- end -}}

{{- define "cutover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "cutover.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
cutover.roleArn: the IAM role of the service account, "" when none. With
roleRequired, an environment that names no role fails: falling back to
another environment's role would let it act as that environment.
*/}}
{{- define "cutover.roleArn" -}}
{{- if .Values.serviceAccount.roleArn -}}
{{- .Values.serviceAccount.roleArn -}}
{{- else if .Values.serviceAccount.roleArnFill -}}
{{- include "cutover.fill" (list . .Values.serviceAccount.roleArnFill) -}}
{{- else if .Values.serviceAccount.roleRequired -}}
{{- $env := .Values.environment | default "<env>" -}}
{{- fail (printf "serviceAccount.roleArn: environment %s names no IAM role; set environments.%s.serviceAccount.roleArn in values/services/%s.yaml to a role of %s's account that trusts only its service account" $env $env .Release.Name $env) -}}
{{- end -}}
{{- end -}}

{{/*
cutover.secretStore: the store reference of one secret, as YAML
{name, kind}. A ClusterSecretStore named for the environment wins over the
per-service SecretStore, for secrets in the environment's region.
Call it with (dict "root" $ "secret" .).
*/}}
{{- define "cutover.secretStore" -}}
{{- $root := .root -}}
{{- $s := .secret -}}
{{- $region := $s.region | default (include "cutover.region" $root) -}}
{{- $cluster := index ($root.Values.externalSecrets.clusterSecretStores | default dict) $s.store | default "" -}}
{{- if and $cluster (eq $region (include "cutover.region" $root)) -}}
name: {{ $cluster }}
kind: ClusterSecretStore
{{- else -}}
{{- $short := ternary "sm" "ps" (eq $s.store "secretsManager") -}}
{{- $name := printf "%s-%s" (include "cutover.fullname" $root) $short -}}
{{- if ne $region (include "cutover.region" $root) -}}
{{- $name = printf "%s-%s" $name $region -}}
{{- end -}}
name: {{ $name }}
kind: SecretStore
region: {{ $region }}
service: {{ ternary "SecretsManager" "ParameterStore" (eq $s.store "secretsManager") }}
{{- end -}}
{{- end -}}

{{/*
cutover.secretName: the Kubernetes Secret holding a secret key: the one the
ExternalSecret writes, or, for secrets the user supplies as files, the one
they create. Call it with (dict "root" $ "name" key).
*/}}
{{- define "cutover.secretName" -}}
{{- $root := .root -}}
{{- $want := .name -}}
{{- $store := "" -}}
{{- range $root.Values.secrets -}}
{{- if eq .name $want -}}{{- $store = .store -}}{{- end -}}
{{- end -}}
{{- if not $store -}}
{{- fail (printf "secrets: no secret named %s, but a container refers to it" $want) -}}
{{- end -}}
{{- if eq $store "file" -}}
{{- include "cutover.fullname" $root -}}-files
{{- else -}}
{{- include "cutover.fullname" $root -}}-secrets
{{- end -}}
{{- end -}}

{{/* cutover.image: the image of a container: images.<name>, its image, or its fill value. */}}
{{- define "cutover.image" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $img := index ($root.Values.images | default dict) $c.name | default $c.image | default "" -}}
{{- if $img -}}
{{- $img -}}
{{- else if $c.imageFill -}}
{{- include "cutover.fill" (list $root $c.imageFill) -}}
{{- else -}}
{{- fail (printf "containers: container %s has no image, no images.%s and no imageFill" $c.name $c.name) -}}
{{- end -}}
{{- end -}}

{{/*
cutover.container renders one container as a list item.
Call it with (dict "root" $ "c" container "role" main|app|sidecar|init "long" bool).
*/}}
{{- define "cutover.container" -}}
{{- $root := .root -}}
{{- $V := $root.Values -}}
{{- $c := .c -}}
{{- $role := .role -}}
- name: {{ $c.name }}
  image: {{ include "cutover.image" (dict "root" $root "c" $c) | quote }}
  imagePullPolicy: {{ $c.imagePullPolicy | default $V.imagePullPolicy }}
  {{- if eq $role "sidecar" }}
  restartPolicy: Always
  {{- end }}
  {{- with $c.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.workingDir }}
  workingDir: {{ . | quote }}
  {{- end }}
  {{- with $c.ports }}
  ports:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $env := $c.env | default list -}}
  {{- if and (eq $role "main") (include "cutover.kubeAPI" $root) -}}
  {{- $names := list -}}
  {{- range $env }}{{ $names = append $names .name }}{{ end -}}
  {{- if not (has "POD_NAMESPACE" $names) -}}
  {{- /* Where serve keeps its checkpoints (--checkpoint-namespace's default). */ -}}
  {{- $env = append $env (dict "name" "POD_NAMESPACE" "fieldPath" "metadata.namespace") -}}
  {{- end -}}
  {{- end }}
  {{- with $env }}
  env:
  {{- range . }}
    - name: {{ .name | quote }}
    {{- if hasKey . "value" }}
      value: {{ .value | toString | quote }}
    {{- else if .config }}
      valueFrom:
        configMapKeyRef:
          name: {{ include "cutover.fullname" $root }}-config
          key: {{ .config | quote }}
    {{- else if .secret }}
      valueFrom:
        secretKeyRef:
          name: {{ include "cutover.secretName" (dict "root" $root "name" .secret) }}
          key: {{ .secret | quote }}
    {{- else if .fill }}
      value: {{ include "cutover.fill" (list $root .fill) | quote }}
    {{- else if .fieldPath }}
      valueFrom:
        fieldRef:
          fieldPath: {{ .fieldPath }}
    {{- else }}
      value: ""
    {{- end }}
  {{- end }}
  {{- end }}
  {{- if $c.envFromConfig }}
  envFrom:
    - configMapRef:
        name: {{ include "cutover.fullname" $root }}-config
  {{- end }}
  {{- $res := deepCopy ($c.resources | default dict) -}}
  {{- if eq $role "main" }}{{ $res = deepCopy ($V.resources | default dict) }}{{ end -}}
  {{- $req := $res.requests | default dict -}}
  {{- $lim := $res.limits | default dict -}}
  {{- $rd := $V.resourceDefaults | default dict -}}
  {{- $dreq := $rd.requests | default dict -}}
  {{- $dlim := $rd.limits | default dict -}}
  {{- range $k := concat (keys $dreq) (keys $dlim) | uniq | sortAlpha -}}
  {{- if not (or (hasKey $req $k) (hasKey $lim $k)) -}}
  {{- with index $dreq $k }}{{ $_ := set $req $k . }}{{ end -}}
  {{- with index $dlim $k }}{{ $_ := set $lim $k . }}{{ end -}}
  {{- end -}}
  {{- end -}}
  {{- /* A limit without a request: Kubernetes makes the request equal; say so. */ -}}
  {{- range $k, $v := $lim -}}
  {{- if not (hasKey $req $k) }}{{ $_ := set $req $k $v }}{{ end -}}
  {{- end -}}
  {{- /* A CPU limit from the request: see resourceDefaults.cpuLimitRatio. */ -}}
  {{- $ratio := $rd.cpuLimitRatio | default 0 | float64 -}}
  {{- if and (gt $ratio 0.0) (hasKey $req "cpu") (not (hasKey $lim "cpu")) -}}
  {{- $path := ternary "resources" (printf "%s: container %s: resources" (get (dict "app" "containers" "sidecar" "sidecars" "init" "initContainers") $role) $c.name) (eq $role "main") -}}
  {{- $_ := set $lim "cpu" (include "cutover.cpuLimit" (list $req.cpu $ratio $path)) -}}
  {{- end -}}
  {{- /* And a memory limit: see resourceDefaults.memoryLimitRatio. */ -}}
  {{- $mratio := $rd.memoryLimitRatio | default 0 | float64 -}}
  {{- if and (gt $mratio 0.0) (hasKey $req "memory") (not (hasKey $lim "memory")) -}}
  {{- $path := ternary "resources" (printf "%s: container %s: resources" (get (dict "app" "containers" "sidecar" "sidecars" "init" "initContainers") $role) $c.name) (eq $role "main") -}}
  {{- $_ := set $lim "memory" (include "cutover.memoryLimit" (list $req.memory $mratio $path)) -}}
  {{- end -}}
  {{- if $req }}{{ $_ := set $res "requests" $req }}{{ end -}}
  {{- if $lim }}{{ $_ := set $res "limits" $lim }}{{ end }}
  {{- with $res }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if ne $role "init" }}
  {{- range $p := list "startupProbe" "livenessProbe" "readinessProbe" }}
  {{- with index $c $p }}
  {{ $p }}:
    {{- toYaml (merge (deepCopy .) (deepCopy ($V.probeDefaults | default dict))) | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- $sleep := $c.preStopSleepSeconds | default 0 | int -}}
  {{- if and (eq $role "main") (eq $sleep 0) .long $V.service.enabled -}}
  {{- $sleep = $V.preStop.defaultSeconds | default 0 | int -}}
  {{- end }}
  {{- if gt $sleep 0 }}
  lifecycle:
    preStop:
      {{- if $V.preStop.sleepAction }}
      sleep:
        seconds: {{ $sleep }}
      {{- else }}
      exec:
        command: ["sleep", "{{ $sleep }}"]
      {{- end }}
  {{- end }}
  {{- end }}
  {{- $sc := include "cutover.securityContext" (dict "root" $root "c" $c) | fromYaml }}
  {{- with $sc }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $mounts := $c.volumeMounts | default list -}}
  {{- if include "cutover.needsTmp" (dict "root" $root "c" $c) -}}
  {{- $mounts = concat $mounts (list (dict "name" (include "cutover.tmpVolume" $root) "mountPath" "/tmp")) -}}
  {{- end }}
  {{- with $mounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
cutover.cpuLimit multiplies a CPU quantity ("250m", "0.5", "2") by a
ratio, rounded up to a millicore. Call it with (list quantity ratio path),
path naming the value for the error.
*/}}
{{- define "cutover.cpuLimit" -}}
{{- $q := index . 0 | toString -}}
{{- $ratio := index . 1 | float64 -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?m?$" $q) -}}
{{- fail (printf "%s: the CPU request %s cannot be multiplied by resourceDefaults.cpuLimitRatio; write it as 250m or 0.25, or set limits.cpu" (index . 2) $q) -}}
{{- end -}}
{{- $milli := 0.0 -}}
{{- if hasSuffix "m" $q -}}
{{- $milli = trimSuffix "m" $q | float64 -}}
{{- else -}}
{{- $milli = mulf ($q | float64) 1000 -}}
{{- end -}}
{{- /* round first: 0.1 x 1000 is 100.00000000000001 in floating point. */ -}}
{{- $l := ceil (round (mulf $milli $ratio) 6) | int64 -}}
{{- if eq (mod $l 1000) 0 -}}{{ div $l 1000 }}{{- else -}}{{ $l }}m{{- end -}}
{{- end -}}

{{/*
cutover.memoryLimit multiplies a memory quantity ("512Mi", "1.5Gi", "1G",
"134217728") by a ratio, keeping its unit. Call it with (list quantity
ratio path), path naming the value for the error.
*/}}
{{- define "cutover.memoryLimit" -}}
{{- $q := index . 0 | toString -}}
{{- $ratio := index . 1 | float64 -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?([KMGTPE]i|[kMGTPE])?$" $q) -}}
{{- fail (printf "%s: the memory request %s cannot be multiplied by resourceDefaults.memoryLimitRatio; write it as 512Mi, or set limits.memory" (index . 2) $q) -}}
{{- end -}}
{{- $unit := regexReplaceAll "^[0-9.]+" $q "" -}}
{{- $n := round (mulf (trimSuffix $unit $q | float64) $ratio) 6 -}}
{{- if eq $n (floor $n) -}}{{ $n | int64 }}{{ $unit }}{{- else -}}{{ $n }}{{ $unit }}{{- end -}}
{{- end -}}

{{/*
cutover.securityContext is the securityContext of one container, as YAML:
containerSecurityContext under the container's own, and runAsNonRoot when
it runs as a user other than root (its own runAsUser, else the pod's).
Call it with (dict "root" $ "c" container).
*/}}
{{- define "cutover.securityContext" -}}
{{- $V := .root.Values -}}
{{- $sc := deepCopy ($V.containerSecurityContext | default dict) -}}
{{- with .c.securityContext -}}
{{- include "cutover.merge" (dict "dst" $sc "src" (deepCopy .)) -}}
{{- end -}}
{{- $user := ($V.podSecurityContext | default dict).runAsUser -}}
{{- if hasKey $sc "runAsUser" }}{{ $user = $sc.runAsUser }}{{ end -}}
{{- if and $V.runAsNonRoot (not (kindIs "invalid" $user)) (ne (int $user) 0) (not (hasKey $sc "runAsNonRoot")) -}}
{{- $_ := set $sc "runAsNonRoot" true -}}
{{- end -}}
{{- if $sc.privileged -}}
{{- $_ := unset $sc "allowPrivilegeEscalation" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/*
cutover.needsTmp is "true" when a container gets the writable /tmp (see
writableTmp): its root filesystem is read-only and it mounts nothing at
/tmp itself. Call it with (dict "root" $ "c" container).
*/}}
{{- define "cutover.needsTmp" -}}
{{- if (.root.Values.writableTmp | default dict).enabled -}}
{{- $sc := include "cutover.securityContext" . | fromYaml -}}
{{- if $sc.readOnlyRootFilesystem -}}
{{- $mounted := false -}}
{{- range .c.volumeMounts | default list -}}
{{- if eq (trimSuffix "/" (toString .mountPath)) "/tmp" }}{{ $mounted = true }}{{ end -}}
{{- end -}}
{{- if not $mounted }}true{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* cutover.tmpVolume names the writable /tmp volume: tmp, unless a volume of the service has that name. */}}
{{- define "cutover.tmpVolume" -}}
{{- $names := list -}}
{{- range .Values.volumes | default list }}{{ $names = append $names .name }}{{ end -}}
{{- if not (has "tmp" $names) -}}tmp
{{- else if not (has "cutover-tmp" $names) -}}cutover-tmp
{{- else -}}
{{- fail "volumes: volumes named tmp and cutover-tmp leave no name for the writable /tmp; rename one" -}}
{{- end -}}
{{- end -}}

{{/*
cutover.pod renders a pod template (metadata and spec).
Call it with (dict "root" $ "long" bool): long for Deployments, whose pods
spread across zones and hosts and never exit.
*/}}
{{- define "cutover.pod" -}}
{{- $root := .root -}}
{{- $V := $root.Values -}}
{{- $long := .long -}}
{{- $selector := include "cutover.selectorLabels" $root | fromYaml -}}
{{- $ann := deepCopy ($V.podAnnotations | default dict) -}}
{{- with $V.config -}}
{{- $_ := set $ann "checksum/config" (toJson . | sha256sum) -}}
{{- end -}}
{{- with $V.containers -}}
{{- $_ := set $ann "kubectl.kubernetes.io/default-container" (first .).name -}}
{{- end -}}
{{- $m := $V.metrics | default dict -}}
{{- if and $m.port $m.annotations -}}
{{- $_ := set $ann "prometheus.io/scrape" "true" -}}
{{- $_ := set $ann "prometheus.io/port" ($m.port | int | toString) -}}
{{- $_ := set $ann "prometheus.io/path" ($m.path | default "/metrics") -}}
{{- end -}}
metadata:
  labels:
    {{- include "cutover.labels" $root | nindent 4 }}
  {{- with $ann }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "cutover.serviceAccountName" $root }}
  {{- /* The API token only for pods that call the API (cutover.kubeAPI). */}}
  automountServiceAccountToken: {{ or $V.automountServiceAccountToken (and $long (include "cutover.kubeAPI" $root)) | toString | eq "true" }}
  enableServiceLinks: {{ $V.enableServiceLinks }}
  {{- if not $long }}
  restartPolicy: Never
  {{- end }}
  terminationGracePeriodSeconds: {{ $V.terminationGracePeriodSeconds | int }}
  {{- with $V.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $V.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $ns := deepCopy ($V.nodeSelector | default dict) -}}
  {{- $_ := set $ns "kubernetes.io/os" ($V.placement.os | default "linux") -}}
  {{- with $V.placement.architecture -}}
  {{- $_ := set $ns "kubernetes.io/arch" . -}}
  {{- end }}
  nodeSelector:
    {{- toYaml $ns | nindent 4 }}
  {{- $tol := $V.tolerations | default list -}}
  {{- if $V.placement.spot -}}
  {{- $tol = concat $tol ($V.spot.tolerations | default list) -}}
  {{- end }}
  {{- with $tol }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $aff := dict -}}
  {{- if and $long $V.podAntiAffinity.enabled -}}
  {{- $term := dict "labelSelector" (dict "matchLabels" $selector) "topologyKey" $V.podAntiAffinity.topologyKey -}}
  {{- $_ := set $aff "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" ($V.podAntiAffinity.weight | int) "podAffinityTerm" $term))) -}}
  {{- end -}}
  {{- if and $V.placement.spot $V.spot.preferredNodeTerms -}}
  {{- $_ := set $aff "nodeAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" $V.spot.preferredNodeTerms) -}}
  {{- end }}
  {{- with $aff }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and $long $V.topologySpread.enabled }}
  topologySpreadConstraints:
    - maxSkew: {{ $V.topologySpread.maxSkew | int }}
      topologyKey: {{ $V.topologySpread.topologyKey }}
      whenUnsatisfiable: {{ $V.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- toYaml $selector | nindent 10 }}
      matchLabelKeys:
        - pod-template-hash
  {{- end }}
  {{- if or $V.sidecars $V.initContainers }}
  {{- /* Sidecars first: init containers (migrations, downloads) often need
    the proxy or log router a sidecar provides. */}}
  initContainers:
    {{- range $V.sidecars }}
    {{- include "cutover.container" (dict "root" $root "c" . "role" "sidecar" "long" $long) | nindent 4 }}
    {{- end }}
    {{- range $V.initContainers }}
    {{- include "cutover.container" (dict "root" $root "c" . "role" "init" "long" $long) | nindent 4 }}
    {{- end }}
  {{- end }}
  containers:
    {{- range $i, $c := required "containers: the service has no containers" $V.containers }}
    {{- include "cutover.container" (dict "root" $root "c" $c "role" (ternary "main" "app" (eq $i 0)) "long" $long) | nindent 4 }}
    {{- end }}
  {{- $tmp := false -}}
  {{- range concat ($V.sidecars | default list) ($V.initContainers | default list) ($V.containers | default list) -}}
  {{- if include "cutover.needsTmp" (dict "root" $root "c" .) }}{{ $tmp = true }}{{ end -}}
  {{- end }}
  {{- if or $V.volumes $tmp }}
  volumes:
    {{- range $V.volumes }}
    - name: {{ .name }}
      {{- if eq .type "emptyDir" }}
      {{- if or .sizeLimit .medium }}
      emptyDir:
        {{- with .medium }}
        medium: {{ . }}
        {{- end }}
        {{- with .sizeLimit }}
        sizeLimit: {{ . }}
        {{- end }}
      {{- else }}
      emptyDir: {}
      {{- end }}
      {{- else if or (eq .type "efs") (eq .type "pvc") }}
      persistentVolumeClaim:
        claimName: {{ include "cutover.fullname" $root }}-{{ .name }}
      {{- else if eq .type "secret" }}
      projected:
        sources:
          {{- range .secrets }}
          - secret:
              name: {{ include "cutover.secretName" (dict "root" $root "name" .) }}
              items:
                - key: {{ . | quote }}
                  path: {{ . | quote }}
          {{- end }}
      {{- else if eq .type "config" }}
      configMap:
        name: {{ include "cutover.fullname" $root }}-config
      {{- else }}
      {{- fail (printf "volumes: volume %s has unknown type %s" .name .type) }}
      {{- end }}
    {{- end }}
    {{- if $tmp }}
    {{- $wt := $V.writableTmp }}
    - name: {{ include "cutover.tmpVolume" $root }}
      {{- if or $wt.sizeLimit $wt.medium }}
      emptyDir:
        {{- with $wt.medium }}
        medium: {{ . }}
        {{- end }}
        {{- with $wt.sizeLimit }}
        sizeLimit: {{ . }}
        {{- end }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/*
cutover.kedaTriggers renders the KEDA triggers: the enabled queue and
stream triggers, with the service's AWS identity where they ask for it, and
CPU and memory triggers from autoscaling targets.
*/}}
{{- define "cutover.kedaTriggers" -}}
{{- $root := . -}}
{{- $V := .Values -}}
{{- $enabled := list -}}
{{- range $V.keda.triggers -}}
{{- if ne (toString .enabled) "false" -}}{{- $enabled = append $enabled . -}}{{- end -}}
{{- end -}}
{{- /* KEDA needs a trigger even when all are disabled; the workload is then paused. */ -}}
{{- if not $enabled -}}{{- $enabled = $V.keda.triggers -}}{{- end -}}
{{- range $enabled }}
- type: {{ .type }}
  {{- with .name }}
  name: {{ . }}
  {{- end }}
  metadata:
    {{- $md := dict -}}
    {{- range $k, $v := .metadata -}}
    {{- $_ := set $md $k (toString $v) -}}
    {{- end -}}
    {{- range $k, $f := .metadataFill -}}
    {{- $_ := set $md $k (include "cutover.fill" (list $root $f)) -}}
    {{- end -}}
    {{- /* A filled value may be an ARN where KEDA wants a URL or a name. */ -}}
    {{- if and (eq .type "aws-sqs-queue") $md.queueURL -}}
    {{- $_ := set $md "queueURL" (regexReplaceAll "^arn:aws(-cn)?:sqs:([^:]+):([^:]+):(.+)$" $md.queueURL "https://sqs.${2}.amazonaws.com${1}/${3}/${4}" | replace "amazonaws.com-cn" "amazonaws.com.cn") -}}
    {{- end -}}
    {{- if and (eq .type "aws-kinesis-stream") $md.streamName -}}
    {{- $_ := set $md "streamName" (regexReplaceAll "^arn:[^:]+:kinesis:[^:]*:[^:]*:stream/" $md.streamName "") -}}
    {{- end -}}
    {{- if and (eq .type "aws-dynamodb-streams") $md.tableName -}}
    {{- $_ := set $md "tableName" (regexReplaceAll "^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+).*$" $md.tableName "${1}") -}}
    {{- end -}}
    {{- if and (eq (toString .auth) "aws") (not (hasKey $md "awsRegion")) -}}
    {{- $_ := set $md "awsRegion" (include "cutover.region" $root) -}}
    {{- end }}
    {{- toYaml $md | nindent 4 }}
  {{- if eq (toString .auth) "aws" }}
  authenticationRef:
    name: {{ include "cutover.fullname" $root }}-aws
  {{- end }}
{{- end }}
{{- with $V.autoscaling.targetCPUUtilizationPercentage }}
- type: cpu
  metricType: Utilization
  metadata:
    value: {{ . | int | toString | quote }}
{{- end }}
{{- with $V.autoscaling.targetMemoryUtilizationPercentage }}
- type: memory
  metricType: Utilization
  metadata:
    value: {{ . | int | toString | quote }}
{{- end }}
{{- end -}}

{{/* cutover.kedaPaused is "true" when every KEDA trigger is disabled. */}}
{{- define "cutover.kedaPaused" -}}
{{- $any := false -}}
{{- range .Values.keda.triggers -}}
{{- if ne (toString .enabled) "false" -}}{{- $any = true -}}{{- end -}}
{{- end -}}
{{- if not $any -}}true{{- end -}}
{{- end -}}
