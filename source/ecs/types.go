package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The structs below hold only the fields the importer interprets. Every
// other field is still seen: the Tracker knows all of them from the file's
// positions and reports each one the mapper does not claim. Strings are
// plain strings because a JSON null and an absent field mean the same
// thing; booleans are pointers where "not said" differs from false.

// taskDefinition is the taskDefinition object of describe-task-definition
// output, or the whole of register-task-definition input.
type taskDefinition struct {
	TaskDefinitionArn       metaText       `json:"taskDefinitionArn"`
	Family                  string         `json:"family"`
	Revision                num            `json:"revision"`
	TaskRoleArn             string         `json:"taskRoleArn"`
	ExecutionRoleArn        string         `json:"executionRoleArn"`
	NetworkMode             string         `json:"networkMode"`
	ContainerDefinitions    []containerDef `json:"containerDefinitions"`
	Volumes                 []volume       `json:"volumes"`
	RequiresCompatibilities []string       `json:"requiresCompatibilities"`
	CPU                     num            `json:"cpu"`
	Memory                  num            `json:"memory"`
	PidMode                 string         `json:"pidMode"`
	IpcMode                 string         `json:"ipcMode"`
	RuntimePlatform         *struct {
		CPUArchitecture       string `json:"cpuArchitecture"`
		OperatingSystemFamily string `json:"operatingSystemFamily"`
	} `json:"runtimePlatform"`
	EphemeralStorage *struct {
		SizeInGiB num `json:"sizeInGiB"`
	} `json:"ephemeralStorage"`
	// Tags is register-task-definition input's own tags field;
	// describe-task-definition prints them beside the task definition.
	Tags tagList `json:"tags"`
}

// metaText is metadata AWS assigned and prints (an ARN), which the
// importer reads only to join files: a value of another JSON type is no
// reason to refuse the file, so UnmarshalJSON never fails. The mapper
// reports what it could not read.
type metaText struct {
	s string
	// bad, when not empty, is the JSON kind found instead of a string.
	bad string
}

func (m *metaText) UnmarshalJSON(b []byte) error {
	*m = metaText{}
	if err := json.Unmarshal(b, &m.s); err != nil {
		m.bad = jsonKind(b)
	}
	return nil
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// path is the tag's field below the tags field: "[0]" in a list,
	// the key in an object.
	path string
	// bad, when not empty, says why the entry is no tag (a list item
	// that is not an object of strings); Key and Value are empty.
	bad string
}

// tagList is a tags field. ECS takes a list of {key, value}; Terraform's
// tags and hand-written files hold an object of keys instead, which
// register-task-definition refuses but which means the same tags. Tags
// are metadata, so UnmarshalJSON never fails: the mapper, which knows the
// field's line, reports what it could not read.
type tagList struct {
	tags []tag
	// object is true when the field held an object of keys.
	object bool
	// bad, when not empty, is the JSON kind found where neither form was
	// ("a string", "a number").
	bad string
}

func (l *tagList) UnmarshalJSON(b []byte) error {
	*l = tagList{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case 'n':
		return nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			l.bad = "a malformed list"
			return nil
		}
		for i, raw := range items {
			var tg tag
			if err := json.Unmarshal(raw, &tg); err != nil {
				tg = tag{bad: "a tag is an object with a string key and value, not " + jsonKind(raw)}
			}
			tg.path = fmt.Sprintf("[%d]", i)
			l.tags = append(l.tags, tg)
		}
	case '{':
		// A decoder keeps the keys in the file's order, which a map
		// would not.
		dec := json.NewDecoder(bytes.NewReader(b))
		if _, err := dec.Token(); err != nil {
			l.bad = "a malformed object"
			return nil
		}
		l.object = true
		for dec.More() {
			k, err := dec.Token()
			key, _ := k.(string)
			var raw json.RawMessage
			if err == nil {
				err = dec.Decode(&raw)
			}
			if err != nil {
				l.tags, l.bad = nil, "a malformed object"
				return nil
			}
			tg := tag{Key: key, path: key}
			var v any
			_ = json.Unmarshal(raw, &v)
			switch v := v.(type) {
			case string:
				tg.Value = v
			case nil:
			case float64, bool:
				tg.Value = string(bytes.TrimSpace(raw))
			default:
				tg = tag{path: key, bad: "a tag's value is a string, not " + jsonKind(raw)}
			}
			l.tags = append(l.tags, tg)
		}
	default:
		l.bad = jsonKind(b)
	}
	return nil
}

// jsonKind names the kind of a JSON value for a message.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

type containerDef struct {
	Name                   string          `json:"name"`
	Image                  string          `json:"image"`
	CPU                    num             `json:"cpu"`
	Memory                 num             `json:"memory"`
	MemoryReservation      num             `json:"memoryReservation"`
	PortMappings           []portMapping   `json:"portMappings"`
	Essential              *bool           `json:"essential"`
	EntryPoint             []string        `json:"entryPoint"`
	Command                []string        `json:"command"`
	Environment            []keyValue      `json:"environment"`
	EnvironmentFiles       []envFile       `json:"environmentFiles"`
	MountPoints            []mountPoint    `json:"mountPoints"`
	VolumesFrom            []volumeFrom    `json:"volumesFrom"`
	LinuxParameters        *linuxParams    `json:"linuxParameters"`
	Secrets                []secretRef     `json:"secrets"`
	DependsOn              []dependency    `json:"dependsOn"`
	StopTimeout            num             `json:"stopTimeout"`
	User                   string          `json:"user"`
	WorkingDirectory       string          `json:"workingDirectory"`
	Privileged             *bool           `json:"privileged"`
	ReadonlyRootFilesystem *bool           `json:"readonlyRootFilesystem"`
	HealthCheck            *healthCheck    `json:"healthCheck"`
	LogConfiguration       *logConfig      `json:"logConfiguration"`
	FirelensConfiguration  json.RawMessage `json:"firelensConfiguration"`
	RepositoryCredentials  *repoCreds      `json:"repositoryCredentials"`
}

type portMapping struct {
	ContainerPort      num    `json:"containerPort"`
	HostPort           num    `json:"hostPort"`
	Protocol           string `json:"protocol"`
	Name               string `json:"name"`
	AppProtocol        string `json:"appProtocol"`
	ContainerPortRange string `json:"containerPortRange"`
}

type keyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// ValueFrom is not ECS's in environment (it belongs under secrets),
	// but files hold it there; empty when the entry has a value.
	ValueFrom string `json:"valueFrom"`
}

type envFile struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

type mountPoint struct {
	SourceVolume  string `json:"sourceVolume"`
	ContainerPath string `json:"containerPath"`
	ReadOnly      *bool  `json:"readOnly"`
}

type volumeFrom struct {
	SourceContainer string `json:"sourceContainer"`
	ReadOnly        *bool  `json:"readOnly"`
}

type linuxParams struct {
	Capabilities *struct {
		Add  []string `json:"add"`
		Drop []string `json:"drop"`
	} `json:"capabilities"`
	InitProcessEnabled *bool `json:"initProcessEnabled"`
	SharedMemorySize   num   `json:"sharedMemorySize"`
	Tmpfs              []struct {
		ContainerPath string   `json:"containerPath"`
		Size          num      `json:"size"`
		MountOptions  []string `json:"mountOptions"`
	} `json:"tmpfs"`
}

type secretRef struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

type dependency struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

type healthCheck struct {
	Command     []string `json:"command"`
	Interval    num      `json:"interval"`
	Timeout     num      `json:"timeout"`
	Retries     num      `json:"retries"`
	StartPeriod num      `json:"startPeriod"`
}

type logConfig struct {
	LogDriver     string            `json:"logDriver"`
	Options       map[string]string `json:"options"`
	SecretOptions []secretRef       `json:"secretOptions"`
}

type repoCreds struct {
	CredentialsParameter string `json:"credentialsParameter"`
}

type volume struct {
	Name string `json:"name"`
	Host *struct {
		SourcePath string `json:"sourcePath"`
	} `json:"host"`
	DockerVolumeConfiguration *struct {
		Scope         string `json:"scope"`
		Autoprovision *bool  `json:"autoprovision"`
		Driver        string `json:"driver"`
	} `json:"dockerVolumeConfiguration"`
	EFSVolumeConfiguration *struct {
		FileSystemID        string `json:"fileSystemId"`
		RootDirectory       string `json:"rootDirectory"`
		TransitEncryption   string `json:"transitEncryption"`
		AuthorizationConfig *struct {
			AccessPointID string `json:"accessPointId"`
			IAM           string `json:"iam"`
		} `json:"authorizationConfig"`
	} `json:"efsVolumeConfiguration"`
	FSxWindows         *struct{} `json:"fsxWindowsFileServerVolumeConfiguration"`
	ConfiguredAtLaunch *bool     `json:"configuredAtLaunch"`
}

// ecsService is one entry of describe-services output, or create-service
// input (which names the cluster "cluster" rather than "clusterArn").
type ecsService struct {
	ServiceArn               metaText        `json:"serviceArn"`
	ServiceName              string          `json:"serviceName"`
	ClusterArn               metaText        `json:"clusterArn"`
	Cluster                  string          `json:"cluster"`
	TaskDefinition           string          `json:"taskDefinition"`
	DesiredCount             num             `json:"desiredCount"`
	LaunchType               string          `json:"launchType"`
	CapacityProviderStrategy []capacityItem  `json:"capacityProviderStrategy"`
	LoadBalancers            []loadBalancer  `json:"loadBalancers"`
	ServiceRegistries        []registry      `json:"serviceRegistries"`
	DeploymentConfiguration  *deploymentConf `json:"deploymentConfiguration"`
	DeploymentController     *struct {
		Type string `json:"type"`
	} `json:"deploymentController"`
	NetworkConfiguration *struct {
		AwsvpcConfiguration *struct {
			Subnets        []string `json:"subnets"`
			SecurityGroups []string `json:"securityGroups"`
			AssignPublicIP string   `json:"assignPublicIp"`
		} `json:"awsvpcConfiguration"`
	} `json:"networkConfiguration"`
	SchedulingStrategy   string  `json:"schedulingStrategy"`
	HealthCheckGrace     num     `json:"healthCheckGracePeriodSeconds"`
	EnableExecuteCommand *bool   `json:"enableExecuteCommand"`
	Tags                 tagList `json:"tags"`
	VolumeConfigurations []struct {
		Name             string `json:"name"`
		ManagedEBSVolume *struct {
			SizeInGiB num `json:"sizeInGiB"`
		} `json:"managedEBSVolume"`
	} `json:"volumeConfigurations"`
}

type capacityItem struct {
	CapacityProvider string `json:"capacityProvider"`
	Weight           num    `json:"weight"`
	Base             num    `json:"base"`
}

type loadBalancer struct {
	TargetGroupArn   string `json:"targetGroupArn"`
	LoadBalancerName string `json:"loadBalancerName"`
	ContainerName    string `json:"containerName"`
	ContainerPort    num    `json:"containerPort"`
}

type registry struct {
	RegistryArn   string `json:"registryArn"`
	ContainerName string `json:"containerName"`
	ContainerPort num    `json:"containerPort"`
	Port          num    `json:"port"`
}

type deploymentConf struct {
	MaximumPercent           num `json:"maximumPercent"`
	MinimumHealthyPercent    num `json:"minimumHealthyPercent"`
	DeploymentCircuitBreaker *struct {
		Enable   *bool `json:"enable"`
		Rollback *bool `json:"rollback"`
	} `json:"deploymentCircuitBreaker"`
}

// targetGroup is one entry of `aws elbv2 describe-target-groups` output.
type targetGroup struct {
	TargetGroupArn             string `json:"TargetGroupArn"`
	TargetGroupName            string `json:"TargetGroupName"`
	Protocol                   string `json:"Protocol"`
	ProtocolVersion            string `json:"ProtocolVersion"`
	HealthCheckEnabled         *bool  `json:"HealthCheckEnabled"`
	HealthCheckProtocol        string `json:"HealthCheckProtocol"`
	HealthCheckPort            string `json:"HealthCheckPort"`
	HealthCheckPath            string `json:"HealthCheckPath"`
	HealthCheckIntervalSeconds num    `json:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  num    `json:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      num    `json:"HealthyThresholdCount"`
	UnhealthyThresholdCount    num    `json:"UnhealthyThresholdCount"`
	Matcher                    *struct {
		HTTPCode string `json:"HttpCode"`
		GrpcCode string `json:"GrpcCode"`
	} `json:"Matcher"`
	TargetType string `json:"TargetType"`
}

// scalingPolicy is one entry of Application Auto Scaling
// describe-scaling-policies output.
type scalingPolicy struct {
	PolicyName         string `json:"PolicyName"`
	ServiceNamespace   string `json:"ServiceNamespace"`
	ResourceID         string `json:"ResourceId"`
	ScalableDimension  string `json:"ScalableDimension"`
	PolicyType         string `json:"PolicyType"`
	TargetTrackingConf *struct {
		TargetValue                   num `json:"TargetValue"`
		PredefinedMetricSpecification *struct {
			PredefinedMetricType string `json:"PredefinedMetricType"`
			ResourceLabel        string `json:"ResourceLabel"`
		} `json:"PredefinedMetricSpecification"`
		CustomizedMetricSpecification *struct {
			MetricName string `json:"MetricName"`
			Namespace  string `json:"Namespace"`
		} `json:"CustomizedMetricSpecification"`
		ScaleInCooldown  num   `json:"ScaleInCooldown"`
		ScaleOutCooldown num   `json:"ScaleOutCooldown"`
		DisableScaleIn   *bool `json:"DisableScaleIn"`
	} `json:"TargetTrackingScalingPolicyConfiguration"`
	Alarms []struct {
		AlarmName string `json:"AlarmName"`
	} `json:"Alarms"`
}

// scalableTarget is one entry of describe-scalable-targets output.
type scalableTarget struct {
	ServiceNamespace  string `json:"ServiceNamespace"`
	ResourceID        string `json:"ResourceId"`
	ScalableDimension string `json:"ScalableDimension"`
	MinCapacity       num    `json:"MinCapacity"`
	MaxCapacity       num    `json:"MaxCapacity"`
	SuspendedState    *struct {
		DynamicScalingInSuspended  *bool `json:"DynamicScalingInSuspended"`
		DynamicScalingOutSuspended *bool `json:"DynamicScalingOutSuspended"`
		ScheduledScalingSuspended  *bool `json:"ScheduledScalingSuspended"`
	} `json:"SuspendedState"`
}

// num is a JSON number that also accepts a numeric string and null. The
// ECS API prints task-level cpu and memory as strings ("512") and
// hand-written files mix both forms. UnmarshalJSON never fails: a value
// that is not a number is kept raw and the mapper, which knows the field's
// path and line, reports it.
type num struct {
	raw string
	set bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*n = num{}
	case strings.HasPrefix(s, `"`):
		u, err := strconv.Unquote(s)
		if err != nil {
			u = strings.Trim(s, `"`)
		}
		u = strings.TrimSpace(u)
		*n = num{raw: u, set: u != ""}
	default:
		*n = num{raw: s, set: true}
	}
	return nil
}

// int returns the value as an integer; ok is false when it is set but not
// an integer (a float with a fraction, text, an object).
func (n num) int() (v int64, ok bool) {
	if !n.set {
		return 0, true
	}
	if i, err := strconv.ParseInt(n.raw, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(n.raw, 64)
	if err != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
		return 0, false
	}
	return int64(f), true
}

// float returns the value as a float; ok is false when it is set but not a
// number.
func (n num) float() (v float64, ok bool) {
	if !n.set {
		return 0, true
	}
	f, err := strconv.ParseFloat(n.raw, 64)
	if err != nil || f != f || f > 1e15 || f < -1e15 {
		return 0, false
	}
	return f, true
}
