// Package service is the one model of a workload that sits between cutover's
// importers (source/...) and its renderers (render/...).
//
// An importer reads what a service runs on today (an ECS task definition, a
// Lambda function, a compose file, a systemd unit) and fills a Service; a
// renderer turns a Service into what it will run on. Neither side knows the
// other: a new input format touches one source package, a new output one
// render package.
//
// The model says what the workload needs, in Kubernetes terms where they are
// unambiguous (quantities, probes), and never holds a secret value: secrets
// are references to where the value lives.
package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Kind says how a workload runs.
type Kind string

const (
	// KindServer is a long-running process, usually answering requests:
	// a Deployment.
	KindServer Kind = "server"
	// KindWorker is a long-running consumer of a queue or stream: a
	// Deployment scaled by a KEDA ScaledObject on its queues; a stream,
	// which one replica consumes (see Checkpoints), scales nothing.
	KindWorker Kind = "worker"
	// KindCron runs on a schedule and exits: a CronJob.
	KindCron Kind = "cron"
	// KindJob runs once per unit of work and exits: a Job, or a KEDA
	// ScaledJob when a queue drives it.
	KindJob Kind = "job"
)

// Service is one workload: what runs, how it scales, what it talks to.
type Service struct {
	// Name is the DNS-1123 name the service gets on Kubernetes. Importers
	// derive it from the family, function or unit name (see SanitizeName).
	Name string
	// Origin says where the service came from; it is for the report only.
	Origin Origin
	// Kind says how the workload runs. The zero value means KindServer.
	Kind Kind

	// Replicas is the fixed number of pods. Nil means "not said": the
	// renderer uses its default, or leaves it to an autoscaler.
	Replicas *int32

	// Containers are the main containers; the first is the application.
	// There is at least one.
	Containers []Container
	// InitContainers run to completion, in order, before the main
	// containers start (ECS dependsOn COMPLETE/SUCCESS).
	InitContainers []Container
	// Sidecars are long-running helpers started before the main containers
	// and stopped after them (Kubernetes native sidecars: init containers
	// with restartPolicy Always).
	Sidecars []Container

	// Volumes are the pod's volumes, referred to by VolumeMount.Name.
	Volumes []Volume

	// ServiceAccount is the identity of the pod on AWS (IRSA). Nil means
	// the pod needs no AWS identity.
	ServiceAccount *ServiceAccount

	// Secrets are the secret values the containers read; each becomes an
	// ExternalSecret key. Containers refer to them by SecretRef.Name.
	Secrets []Secret

	// Config holds plain environment values shared by the containers, as a
	// ConfigMap. Containers refer to them with EnvVar.ConfigKey.
	Config map[string]string

	// Expose says how the service is reached. Nil means it is not reached
	// from outside the pod (a worker, a job).
	Expose *Expose

	// Scaling describes the autoscaler. Nil means a fixed replica count.
	Scaling *Scaling

	// Triggers are the event sources that drive the workload (queues,
	// streams, schedules, HTTP routes).
	Triggers []Trigger

	// Checkpoints are the stream positions the workload keeps in
	// Kubernetes itself, one per stream trigger it consumes: a ConfigMap
	// holding the per-shard checkpoint and a coordination.k8s.io Lease,
	// both named Name, in the pod's own namespace, through which the
	// replicas elect the one that consumes the stream (the others stand
	// by and take over). The workload calls the Kubernetes API for exactly
	// these objects, so a renderer gives its pods their service account
	// token, their namespace, and a Role on these names; and, since only
	// the Lease holder consumes, scaling on the stream would only add
	// standbys. Empty means the workload never calls the Kubernetes API
	// (the token stays unmounted).
	Checkpoints []Checkpoint `json:",omitempty"`

	// Schedule is the cron schedule of a KindCron workload, in the
	// five-field Kubernetes form, in ScheduleTimeZone.
	Schedule string
	// ScheduleTimeZone is the IANA time zone of Schedule (the CronJob's
	// timeZone); "" means UTC.
	ScheduleTimeZone string `json:",omitempty"`

	// TimeoutSeconds bounds one run of a KindJob or KindCron workload
	// (activeDeadlineSeconds). Zero means no bound.
	TimeoutSeconds int64

	// TerminationGracePeriodSeconds is how long the pod may take to stop
	// after SIGTERM. Nil means the renderer's default.
	TerminationGracePeriodSeconds *int64

	// Rollout is the update strategy. Nil means the renderer's default.
	Rollout *Rollout

	// Placement says where pods may run. Nil means anywhere.
	Placement *Placement

	// Labels are extra labels for every object of the service (ECS tags,
	// Lambda tags), already sanitized to Kubernetes label syntax.
	Labels map[string]string

	// Values are the places the input left for the user to fill (image
	// placeholders, unset variables, account ids). Each becomes a value in
	// values/services/<name>.yaml and a line in the report.
	Values []Value

	// Report lists every input field and what became of it.
	Report Report
}

// Origin is where a service came from.
type Origin struct {
	// Format is the importer's name: "ecs", "lambda", "compose", "systemd".
	Format string
	// Files are the input files, as the user named them.
	Files []string
}

// Container is one container of the pod.
type Container struct {
	Name string
	// Image is the image reference as given. When the input had none or a
	// placeholder, it is "" and ImageValue names the value the user fills.
	Image string
	// ImageValue is the name of the Value that holds the image when the
	// input only had a placeholder. "" when Image is set.
	ImageValue string

	// Command replaces the image's ENTRYPOINT; nil keeps it.
	Command []string
	// Args replaces the image's CMD; nil keeps it.
	Args []string
	// WorkingDir is the working directory; "" keeps the image's.
	WorkingDir string

	// Env are the container's environment variables, in input order.
	Env []EnvVar
	// EnvFromConfig says the whole service ConfigMap is loaded as
	// environment (compose env_file, systemd EnvironmentFile).
	EnvFromConfig bool

	Ports []Port

	Resources Resources

	// Liveness, Readiness and Startup are the probes. Nil means none.
	Liveness  *Probe
	Readiness *Probe
	Startup   *Probe

	// PreStopSleepSeconds is a preStop sleep that lets load balancers
	// stop sending before SIGTERM arrives. Zero means no hook.
	PreStopSleepSeconds int64

	// RunAsUser and RunAsGroup are numeric ids; nil keeps the image's user.
	RunAsUser  *int64
	RunAsGroup *int64
	// UserName is the user the input named by name ("git"), not by id:
	// Kubernetes runs only ids, so RunAsUser stays nil for it. Empty when
	// the input named an id or no user; the report says which.
	UserName string `json:",omitempty"`
	// ReadOnlyRootFilesystem as the input said; nil means not said.
	ReadOnlyRootFilesystem *bool
	// Privileged as the input said. Kubernetes defaults make it false.
	Privileged bool
	// CapAdd and CapDrop are Linux capabilities added to and dropped from
	// the runtime's default set, without the CAP_ prefix ("NET_ADMIN",
	// "ALL"). Nil keeps the runtime's defaults.
	CapAdd  []string
	CapDrop []string

	VolumeMounts []VolumeMount
}

// EnvVar is one environment variable. Exactly one of Value, ConfigKey,
// SecretRef or ValueRef is used.
type EnvVar struct {
	Name string
	// Value is a literal, set directly in the pod spec.
	Value string
	// ConfigKey names a key of Service.Config.
	ConfigKey string
	// Secret names a Service.Secrets entry.
	Secret string
	// ValueRef names a Service.Values entry the user fills.
	ValueRef string
}

// Port is a container port.
type Port struct {
	Name          string
	ContainerPort int32
	// Protocol is "TCP" or "UDP"; "" means TCP.
	Protocol string
	// AppProtocol is "http", "http2", "grpc" or ""; "" means unknown.
	AppProtocol string
	// Metrics is true for a port that serves Prometheus metrics (and
	// health endpoints) to the monitoring system, not traffic to clients
	// (`cutover lambda serve` on :9102): renderers keep it off the Service
	// and the Gateway and let the scraper reach it. False: a port clients
	// reach.
	Metrics bool `json:",omitempty"`
	// Served is true for a sidecar's port that clients outside the pod
	// reached before the move (an ECS load balancer or host port sent to
	// it, such as an nginx in front of the app): renderers put it on the
	// Service beside the main containers' ports. False on a sidecar: the
	// port serves the pod's own containers only. The main containers'
	// ports are on the Service whatever it says.
	Served bool `json:",omitempty"`
}

// Resources holds requests and limits as Kubernetes quantity strings
// ("250m", "512Mi"). "" means not set.
type Resources struct {
	CPURequest              string
	CPULimit                string
	MemoryRequest           string
	MemoryLimit             string
	EphemeralStorageRequest string
	EphemeralStorageLimit   string
}

// Probe is a health check.
type Probe struct {
	// Exactly one of Exec, HTTPGet or TCPPort is set.
	Exec    []string
	HTTPGet *HTTPGet
	TCPPort int32

	InitialDelaySeconds int32
	PeriodSeconds       int32
	TimeoutSeconds      int32
	FailureThreshold    int32
	SuccessThreshold    int32
}

// HTTPGet is an HTTP probe.
type HTTPGet struct {
	Path string
	Port int32
	// Scheme is "HTTP" or "HTTPS"; "" means HTTP.
	Scheme string
}

// VolumeMount mounts a Service.Volumes entry into a container.
type VolumeMount struct {
	Name      string
	MountPath string
	ReadOnly  bool
	SubPath   string
}

// VolumeKind says what backs a volume.
type VolumeKind string

const (
	// VolumeEmptyDir is scratch space that lives as long as the pod.
	VolumeEmptyDir VolumeKind = "emptyDir"
	// VolumeEFS is an Amazon EFS file system, through the EFS CSI driver.
	VolumeEFS VolumeKind = "efs"
	// VolumeClaim is a PersistentVolumeClaim the chart creates.
	VolumeClaim VolumeKind = "pvc"
	// VolumeSecret mounts secret keys as files.
	VolumeSecret VolumeKind = "secret"
	// VolumeConfig mounts the service ConfigMap, or files of it.
	VolumeConfig VolumeKind = "config"
)

// Volume is a pod volume.
type Volume struct {
	Name string
	Kind VolumeKind
	// EFS is set when Kind is VolumeEFS.
	EFS *EFSVolume
	// Size is the requested size of a VolumeClaim ("10Gi"), or the
	// sizeLimit of a VolumeEmptyDir; "" means the renderer's default (no
	// limit for an emptyDir).
	Size string
	// Medium is the emptyDir medium: "Memory" for a tmpfs (RAM, counted
	// against the container's memory limit); "" means node disk.
	Medium string
	// Secrets lists the Service.Secrets names a VolumeSecret holds.
	Secrets []string
}

// EFSVolume is an EFS file system and access point.
type EFSVolume struct {
	FileSystemID  string
	AccessPointID string
	RootDirectory string
	// TransitEncryption is true when the input asked for TLS to EFS.
	TransitEncryption bool
	// FileSystemIDValue names the Service.Values entry that holds
	// FileSystemID when the input only named the access point (Lambda's
	// FileSystemConfigs); "" when FileSystemID is set.
	FileSystemIDValue string
}

// ServiceAccount is the pod's AWS identity.
type ServiceAccount struct {
	// Name of the Kubernetes ServiceAccount; "" means Service.Name.
	Name string
	// RoleARN is the IAM role the pod assumes through IRSA. It may be a
	// Value reference ("" with RoleValue set) when the input had none.
	RoleARN   string
	RoleValue string
	// FormerPrincipal is the AWS service that assumed the role before:
	// "ecs-tasks.amazonaws.com" or "lambda.amazonaws.com".
	FormerPrincipal string
}

// SecretSource says which AWS store holds a secret.
type SecretSource string

const (
	SecretsManager SecretSource = "SecretsManager"
	ParameterStore SecretSource = "ParameterStore"
	// SecretFile is a file the user supplies (compose secrets); the report
	// says where it must be put.
	SecretFile SecretSource = "File"
)

// Secret is a reference to a secret value. cutover never reads the value.
type Secret struct {
	// Name is the key in the service's Kubernetes Secret.
	Name   string
	Source SecretSource
	// Key is the secret's name or ARN in Secrets Manager, or the
	// parameter name in Parameter Store, or the file path for SecretFile.
	Key string
	// Property is the JSON key inside a Secrets Manager secret; "" means
	// the whole value.
	Property string
	// Version is a Secrets Manager version stage or id; "" means current.
	Version string
	// Region of the store when the ARN named one; "" means the store's.
	Region string
}

// Expose says how traffic reaches the service.
type Expose struct {
	// Port is the container port that takes traffic.
	Port int32
	// HealthPath is the HTTP path a load balancer checked; "" means none
	// was known.
	HealthPath string
	// Routes are HTTP routes (API Gateway, ALB listener rules). Empty means
	// the service is only reached inside the cluster.
	Routes []Route
	// Internal is true when the service is reached only inside the cluster
	// or VPC.
	Internal bool
}

// Route is one HTTP route to the service.
type Route struct {
	// Path is a path prefix; "" means "/".
	Path string
	// Method is an HTTP method; "" means any.
	Method string
	// Host is a host name; "" means any.
	Host string
}

// Scaling is the autoscaler.
type Scaling struct {
	MinReplicas int32
	MaxReplicas int32
	// TargetCPUPercent and TargetMemoryPercent are utilisation targets;
	// zero means not used.
	TargetCPUPercent    int32
	TargetMemoryPercent int32
	// ScaleDownStabilizationSeconds is the HPA scale-down window; zero
	// means the renderer's default (300).
	ScaleDownStabilizationSeconds int32
	// ScaleUpStabilizationSeconds; zero means Kubernetes' default (0).
	ScaleUpStabilizationSeconds int32
}

// TriggerKind says what a trigger is.
type TriggerKind string

const (
	TriggerSQS      TriggerKind = "sqs"
	TriggerKinesis  TriggerKind = "kinesis"
	TriggerDynamoDB TriggerKind = "dynamodb"
	TriggerKafka    TriggerKind = "kafka"
	TriggerHTTP     TriggerKind = "http"
	TriggerSchedule TriggerKind = "schedule"
)

// Stream reports whether the trigger kind is a stream of shards
// (Kinesis, DynamoDB Streams), which one consumer reads in order per
// shard, rather than a queue or a partitioned log whose broker shares it
// out among consumers (SQS, Kafka).
func (k TriggerKind) Stream() bool {
	return k == TriggerKinesis || k == TriggerDynamoDB
}

// Trigger is an event source.
type Trigger struct {
	Kind TriggerKind
	// Name is a stable name for the trigger, unique within the service.
	Name string
	// Source is the queue URL or ARN, stream ARN, or Kafka topic.
	Source string
	// Region is the AWS region of the source; "" means the default.
	Region string
	// BatchSize is how many records one invocation takes; zero means 1.
	BatchSize int32
	// Brokers are Kafka bootstrap servers.
	Brokers []string
	// ConsumerGroup is the Kafka consumer group; "" means the service name.
	ConsumerGroup string
	// StartingPosition is LATEST, TRIM_HORIZON or AT_TIMESTAMP for streams.
	StartingPosition string
	// Enabled is false when the input disabled the trigger.
	Enabled bool
	// MaxConcurrency caps the replicas this trigger may scale to; zero
	// means no cap from the trigger.
	MaxConcurrency int32
	// Schedule is the five-field cron schedule of a schedule trigger.
	Schedule string
	// Input is the fixed event a schedule delivers; "" means the default.
	Input string
	// TimeZone is the IANA time zone a schedule trigger's hours are in
	// (EventBridge Scheduler's ScheduleExpressionTimezone); "" means UTC.
	TimeZone string `json:",omitempty"`
	// Route is the HTTP route of an HTTP trigger.
	Route *Route
	// EventShape is the Lambda event shape an HTTP trigger produces:
	// "apigw-v1", "apigw-v2" or "alb".
	EventShape string

	// SourceValue names the Service.Values entry that holds Source when
	// the input could not say it (a CloudFormation !GetAtt, an unresolved
	// variable); "" when Source is set.
	SourceValue string
	// BrokersValue names the Service.Values entry that holds the Kafka
	// bootstrap servers (comma-separated) when the input did not list
	// them (an MSK cluster ARN); "" when Brokers is set or not needed.
	BrokersValue string
	// ConsumerGroupValue names the Service.Values entry that holds the
	// consumer group when it must match one the input does not name (the
	// UUID Lambda used as group id); "" when ConsumerGroup applies.
	ConsumerGroupValue string
}

// Checkpoint names where one stream consumer keeps its position and
// elects its active replica (see Service.Checkpoints).
type Checkpoint struct {
	// Trigger is the Name of the stream trigger (Service.Triggers) whose
	// position this is.
	Trigger string
	// Name is the name of both the ConfigMap and the Lease: a DNS-1123
	// label, unique within the service.
	Name string
}

// Rollout is the update strategy of a Deployment.
type Rollout struct {
	// MaxSurgePercent and MaxUnavailablePercent as percentages of replicas.
	MaxSurgePercent       int32
	MaxUnavailablePercent int32
}

// Placement says where pods may run.
type Placement struct {
	// Spot is true when the workload ran on Spot capacity and may run on
	// interruptible nodes. It adds a toleration and a node affinity
	// preference the chart's values name.
	Spot bool
	// SpotPercent is the share of Spot capacity the input asked for.
	SpotPercent int32
	// Architecture is "amd64" or "arm64"; "" means any.
	Architecture string
	// OS is "linux" or "windows"; "" means linux.
	OS string
}

// Value is a place the user must fill.
type Value struct {
	// Name is the key under `fill:` in the service's values file.
	Name string
	// Default is what is written until the user fills it; usually the
	// placeholder the input had, or "".
	Default string
	// Reason says why the user must fill it, for the report.
	Reason string
	// PerEnv holds the value of each environment the input gives one for
	// (a Serverless value that depends on the stage each environment
	// deploys as): environment → value. Renderers set it in that
	// environment's overrides; an environment it does not name takes
	// Default. Nil: one value for every environment.
	PerEnv map[string]string `json:",omitempty"`
}

// AddValue adds a value to fill once (by name) and returns its name.
func (s *Service) AddValue(name, def, reason string) string {
	for _, v := range s.Values {
		if v.Name == name {
			return name
		}
	}
	s.Values = append(s.Values, Value{Name: name, Default: def, Reason: reason})
	return name
}

// Main returns the application container.
func (s *Service) Main() *Container {
	if len(s.Containers) == 0 {
		return nil
	}
	return &s.Containers[0]
}

// EffectiveKind returns Kind, or KindServer when it is unset.
func (s *Service) EffectiveKind() Kind {
	if s.Kind == "" {
		return KindServer
	}
	return s.Kind
}

// Validate checks the invariants renderers rely on. Importers call it
// before they return a Service.
func (s *Service) Validate() error {
	var errs []string
	if err := ValidateName(s.Name); err != nil {
		errs = append(errs, err.Error())
	}
	switch s.EffectiveKind() {
	case KindServer, KindWorker, KindCron, KindJob:
	default:
		errs = append(errs, fmt.Sprintf("unknown kind %q", s.Kind))
	}
	if len(s.Containers) == 0 {
		errs = append(errs, "no containers")
	}
	names := map[string]bool{}
	all := append(append(append([]Container{}, s.Containers...), s.InitContainers...), s.Sidecars...)
	secrets := map[string]bool{}
	for _, sec := range s.Secrets {
		secrets[sec.Name] = true
	}
	values := map[string]bool{}
	for _, v := range s.Values {
		values[v.Name] = true
	}
	vols := map[string]bool{}
	for _, v := range s.Volumes {
		vols[v.Name] = true
	}
	for _, c := range all {
		if err := ValidateName(c.Name); err != nil {
			errs = append(errs, "container "+err.Error())
		}
		if names[c.Name] {
			errs = append(errs, fmt.Sprintf("container name %q used twice", c.Name))
		}
		names[c.Name] = true
		if c.Image == "" && c.ImageValue == "" {
			errs = append(errs, fmt.Sprintf("container %q has no image and no image value", c.Name))
		}
		if c.ImageValue != "" && !values[c.ImageValue] {
			errs = append(errs, fmt.Sprintf("container %q: image value %q is not declared", c.Name, c.ImageValue))
		}
		for _, e := range c.Env {
			if e.Secret != "" && !secrets[e.Secret] {
				errs = append(errs, fmt.Sprintf("container %q: env %s refers to unknown secret %q", c.Name, e.Name, e.Secret))
			}
			if e.ValueRef != "" && !values[e.ValueRef] {
				errs = append(errs, fmt.Sprintf("container %q: env %s refers to undeclared value %q", c.Name, e.Name, e.ValueRef))
			}
			if e.ConfigKey != "" {
				if _, ok := s.Config[e.ConfigKey]; !ok {
					errs = append(errs, fmt.Sprintf("container %q: env %s refers to unknown config key %q", c.Name, e.Name, e.ConfigKey))
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				errs = append(errs, fmt.Sprintf("container %q mounts unknown volume %q", c.Name, m.Name))
			}
		}
	}
	triggers := map[string]TriggerKind{}
	for _, t := range s.Triggers {
		triggers[t.Name] = t.Kind
	}
	checkpoints := map[string]bool{}
	for _, c := range s.Checkpoints {
		if err := ValidateName(c.Name); err != nil {
			errs = append(errs, "checkpoint "+err.Error())
		}
		if checkpoints[c.Name] {
			errs = append(errs, fmt.Sprintf("checkpoint name %q used twice", c.Name))
		}
		checkpoints[c.Name] = true
		switch kind, ok := triggers[c.Trigger]; {
		case !ok:
			errs = append(errs, fmt.Sprintf("checkpoint %q: no trigger named %q", c.Name, c.Trigger))
		case !kind.Stream():
			errs = append(errs, fmt.Sprintf("checkpoint %q: trigger %q is %s, not a stream", c.Name, c.Trigger, kind))
		}
	}
	if s.Scaling != nil && s.Scaling.MaxReplicas < s.Scaling.MinReplicas {
		errs = append(errs, fmt.Sprintf("scaling: maxReplicas %d < minReplicas %d", s.Scaling.MaxReplicas, s.Scaling.MinReplicas))
	}
	if s.EffectiveKind() == KindCron && s.Schedule == "" {
		errs = append(errs, "cron workload without a schedule")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid service %q: %s", s.Name, strings.Join(errs, "; "))
	}
	return nil
}

// ValidateName checks that name is a DNS-1123 label.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}
	if len(name) > 63 {
		return fmt.Errorf("name %q is longer than 63 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(name)-1
		if !ok {
			return fmt.Errorf("name %q is not a DNS-1123 label (lowercase letters, digits and '-')", name)
		}
	}
	if name[0] >= '0' && name[0] <= '9' {
		return fmt.Errorf("name %q starts with a digit", name)
	}
	return nil
}

// SanitizeName turns any name (an ECS family, a Lambda function name, a
// compose service) into a DNS-1123 label: lowercase, runs of other
// characters become '-', at most 63 characters, starting with a letter.
func SanitizeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		out = "service"
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "svc-" + out
	}
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// MaxNameLen is the longest service name: each service is a Helm release
// (one Argo CD Application per environment), and Helm refuses release
// names longer than 53 characters.
const MaxNameLen = 53

// CapName returns name cut to MaxNameLen characters, still a DNS-1123
// label; when the cut name is taken, the last characters give way to a
// hash of the whole name, so that two long names that share a prefix stay
// apart. A name that fits is returned as it is.
func CapName(name string, taken func(string) bool) string {
	if len(name) <= MaxNameLen {
		return name
	}
	out := strings.TrimRight(name[:MaxNameLen], "-")
	if !taken(out) {
		return out
	}
	suffix := NameHash(name)
	return strings.TrimRight(name[:MaxNameLen-len(suffix)], "-") + suffix
}

// NameHash is "-" and 8 hex digits of name's SHA-256: how a name cut to fit
// a limit ends, so that the same name always gives the same result and two
// names that differ only past the cut stay apart.
func NameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "-" + hex.EncodeToString(sum[:4])
}

// SortedKeys returns a map's keys in order; renderers use it so that the
// same input gives byte-identical output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UnpinnedImage reports whether an image reference has no tag, or the tag
// "latest", and no digest: what runs then changes without a change in Git.
func UnpinnedImage(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndex(name, ":")
	return i < 0 || name[i+1:] == "latest"
}
