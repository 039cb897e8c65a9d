package ecs

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// resources maps CPU units and MiB to requests and limits. ECS reserves
// what a container states and lets containers without a value share the
// task's total; the split below keeps the total reservation the same and
// lets each such container grow to the task's memory, as it could on ECS.
func (m *mapper) resources() error {
	td := m.td.td
	var err error
	if m.taskCPU, err = taskCPUUnits(td.CPU); err != nil {
		return inputErr(m.t, "cpu", "%v", err)
	}
	if m.taskMem, err = taskMemMiB(td.Memory); err != nil {
		return inputErr(m.t, "memory", "%v", err)
	}

	type res struct{ cpu, mem, reservation int64 }
	vals := map[*cinfo]res{}
	var live []*cinfo // containers that run beside the app, the app included
	for _, c := range m.cs {
		if c.role == roleDropped {
			continue
		}
		var r res
		var ok bool
		if r.cpu, ok = c.def.CPU.int(); !ok || r.cpu < 0 {
			return inputErr(c.t, "cpu", "want a whole number of CPU units (1024 = 1 vCPU), found %s", c.def.CPU.raw)
		}
		if r.mem, ok = c.def.Memory.int(); !ok || r.mem < 0 {
			return inputErr(c.t, "memory", "want a whole number of MiB, found %s", c.def.Memory.raw)
		}
		if r.reservation, ok = c.def.MemoryReservation.int(); !ok || r.reservation < 0 {
			return inputErr(c.t, "memoryReservation", "want a whole number of MiB, found %s", c.def.MemoryReservation.raw)
		}
		if r.mem > 0 && r.reservation > r.mem {
			return inputErr(c.t, "memoryReservation", "memoryReservation %d MiB is above the hard limit memory %d MiB", r.reservation, r.mem)
		}
		vals[c] = r
		if c.role != roleInit {
			live = append(live, c)
		}
	}

	// What the task's total leaves for the containers that state nothing.
	var cpuStated, memStated int64
	var cpuShare, memShare []*cinfo
	for _, c := range live {
		r := vals[c]
		if r.cpu > 0 {
			cpuStated += r.cpu
		} else {
			cpuShare = append(cpuShare, c)
		}
		switch {
		case r.reservation > 0:
			memStated += r.reservation
		case r.mem > 0:
			memStated += r.mem
		default:
			memShare = append(memShare, c)
		}
	}
	cpuEach := int64(0)
	if m.taskCPU > 0 && len(cpuShare) > 0 && m.taskCPU > cpuStated {
		cpuEach = (m.taskCPU - cpuStated) / int64(len(cpuShare))
	}
	memEach := int64(0)
	if m.taskMem > 0 && len(memShare) > 0 && m.taskMem > memStated {
		memEach = (m.taskMem - memStated) / int64(len(memShare))
	}

	for _, c := range m.cs {
		if c.role == roleDropped {
			continue
		}
		r, out, t := vals[c], &c.out.Resources, c.t
		// An init container runs alone, before the others: it may use
		// the whole task, and Kubernetes counts the larger of its
		// request and the sum of the others, so it costs nothing extra.
		initAlone := c.role == roleInit
		switch {
		case r.cpu > 0:
			out.CPURequest = cpuQty(r.cpu)
			t.Mapped("cpu", c.target+".resources.requests.cpu")
		case initAlone && m.taskCPU > 0:
			out.CPURequest = cpuQty(m.taskCPU)
		case cpuEach > 0:
			out.CPURequest = cpuQty(cpuEach)
		}
		if c.def.CPU.set && r.cpu == 0 {
			t.Drop("cpu", "0 units reserved no CPU on ECS; the request comes from the task's total, if any")
		}
		// The task's cpu is a hard cap (always on Fargate, and on EC2
		// when set): no container could use more, and any one could use
		// all of it. It becomes each container's CPU limit, as the task's
		// memory does. A container left without a request gets none: the
		// limit alone would make its request the whole task.
		if m.taskCPU > 0 && out.CPURequest != "" && r.cpu <= m.taskCPU {
			out.CPULimit = cpuQty(m.taskCPU)
		}

		switch {
		case r.mem > 0:
			out.MemoryLimit = memQty(r.mem)
			t.Mapped("memory", c.target+".resources.limits.memory")
			if r.reservation > 0 {
				out.MemoryRequest = memQty(r.reservation)
				t.Mapped("memoryReservation", c.target+".resources.requests.memory")
			} else {
				out.MemoryRequest = out.MemoryLimit
			}
		case r.reservation > 0:
			out.MemoryRequest = memQty(r.reservation)
			if m.taskMem >= r.reservation {
				out.MemoryLimit = memQty(m.taskMem)
				t.Warn("memoryReservation", c.target+".resources.requests.memory, limits.memory",
					fmt.Sprintf("a soft limit only: ECS let the container grow to the task's %d MiB, which becomes its memory limit", m.taskMem))
			} else {
				out.MemoryLimit = memQty(2 * r.reservation)
				t.Warn("memoryReservation", c.target+".resources.requests.memory, limits.memory",
					fmt.Sprintf("a soft limit only: ECS let the container use the instance's free memory; the memory limit is set to twice the reservation (%s): check it against the container's peak", out.MemoryLimit))
			}
		case initAlone && m.taskMem > 0:
			out.MemoryRequest = memQty(m.taskMem)
			out.MemoryLimit = memQty(m.taskMem)
		case memEach > 0:
			out.MemoryRequest = memQty(memEach)
			out.MemoryLimit = memQty(m.taskMem)
		}
		if c.def.Memory.set && r.mem == 0 {
			t.Drop("memory", "0 MiB sets no limit on ECS")
		}
		if c.def.MemoryReservation.set && r.reservation == 0 {
			t.Drop("memoryReservation", "0 MiB reserves nothing on ECS")
		}
		if out.MemoryRequest == "" {
			t.Warn("name", c.target+".resources", "no memory given for the container or the task: set requests and limits by hand")
		}
	}

	// Report the task-level totals.
	names := func(cs []*cinfo) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.name)
		}
		return strings.Join(s, ", ")
	}
	if m.has(m.t, "cpu") {
		switch {
		case cpuEach > 0 && len(cpuShare) == 1:
			m.t.Warn("cpu", cpuShare[0].target+".resources.requests.cpu, limits.cpu", fmt.Sprintf("task total %d units (%s CPU) becomes the CPU request and limit of %s, which states no cpu of its own",
				m.taskCPU, cpuQty(m.taskCPU), cpuShare[0].name))
		case cpuEach > 0:
			m.t.Warn("cpu", "resources.requests.cpu, limits.cpu", fmt.Sprintf("task total %d units (%s CPU), less what containers state, is split evenly: a %s CPU request each for %s, which state no cpu of their own, and a CPU limit of the whole %s CPU, which each could use on ECS; Kubernetes has no pod-wide CPU cap outside the alpha pod-level resources",
				m.taskCPU, cpuQty(m.taskCPU), cpuQty(cpuEach), names(cpuShare), cpuQty(m.taskCPU)))
		case len(cpuShare) > 0:
			m.t.Warn("cpu", "resources.limits.cpu", fmt.Sprintf("task total %d units is used up by the containers that state cpu: %s get no CPU request; the others get a CPU limit of the whole %s CPU", m.taskCPU, names(cpuShare), cpuQty(m.taskCPU)))
		default:
			m.t.Warn("cpu", "resources.limits.cpu", fmt.Sprintf("every container states its own cpu: the task total %s CPU becomes the CPU limit of each, which each could use on ECS; Kubernetes has no pod-wide CPU cap outside the alpha pod-level resources", cpuQty(m.taskCPU)))
		}
	}
	if m.has(m.t, "memory") {
		switch {
		case memEach > 0 && len(memShare) == 1:
			m.t.Warn("memory", memShare[0].target+".resources.requests.memory, limits.memory", fmt.Sprintf("task total %s becomes the memory request and limit of %s, which states no memory of its own",
				memQty(m.taskMem), memShare[0].name))
		case memEach > 0:
			m.t.Warn("memory", "resources.requests.memory, limits.memory", fmt.Sprintf("task total %s, less what containers state, is split evenly: a %s request each for %s, which state no memory of their own, and a limit of the whole %s, which each could use on ECS",
				memQty(m.taskMem), memQty(memEach), names(memShare), memQty(m.taskMem)))
		case len(memShare) > 0:
			m.t.Warn("memory", "", fmt.Sprintf("task total %s is used up by the containers that state memory: %s get no memory request", memQty(m.taskMem), names(memShare)))
		default:
			m.t.Drop("memory", "every container states its own memory; the task's hard cap has no pod-wide counterpart, and the container limits stay")
		}
	}

	if es := td.EphemeralStorage; es != nil && es.SizeInGiB.set && !m.skip(m.t, "ephemeralStorage") {
		gib, ok := es.SizeInGiB.int()
		if !ok || gib <= 0 {
			return inputErr(m.t, "ephemeralStorage.sizeInGiB", "want a whole number of GiB, found %s", es.SizeInGiB.raw)
		}
		q := fmt.Sprintf("%dGi", gib)
		m.app.out.Resources.EphemeralStorageRequest = q
		m.app.out.Resources.EphemeralStorageLimit = q
		m.t.Warn("ephemeralStorage.sizeInGiB", m.app.target+".resources.requests/limits.ephemeral-storage",
			"Fargate gave the task this much disk to share; it goes to the app container, and the node's disk must have room for the request")
	}
	return nil
}

// cpuQty turns ECS CPU units (1024 = one vCPU) into a Kubernetes
// quantity, rounding up to a whole millicore.
func cpuQty(units int64) string {
	milli := (units*1000 + 1023) / 1024
	if milli%1000 == 0 {
		return strconv.FormatInt(milli/1000, 10)
	}
	return strconv.FormatInt(milli, 10) + "m"
}

// memQty turns MiB into a Kubernetes quantity.
func memQty(mib int64) string {
	if mib%1024 == 0 {
		return strconv.FormatInt(mib/1024, 10) + "Gi"
	}
	return strconv.FormatInt(mib, 10) + "Mi"
}

// taskCPUUnits reads task-level cpu: units ("1024", 1024) or vCPUs
// ("1 vCPU", "0.25 vcpu"), both of which ECS accepts.
func taskCPUUnits(n num) (int64, error) {
	if !n.set {
		return 0, nil
	}
	s := strings.ToLower(strings.TrimSpace(n.raw))
	if v, ok := strings.CutSuffix(s, "vcpu"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 || f > 1024 {
			return 0, fmt.Errorf("want CPU units (1024) or vCPUs (\"1 vCPU\"), found %q", n.raw)
		}
		return int64(math.Round(f * 1024)), nil
	}
	v, ok := n.int()
	if !ok || v < 0 {
		return 0, fmt.Errorf("want CPU units (1024) or vCPUs (\"1 vCPU\"), found %q", n.raw)
	}
	return v, nil
}

// taskMemMiB reads task-level memory: MiB ("2048") or GB ("2 GB", "2GB"),
// both of which ECS accepts.
func taskMemMiB(n num) (int64, error) {
	if !n.set {
		return 0, nil
	}
	s := strings.ToLower(strings.TrimSpace(n.raw))
	for _, unit := range []string{"gib", "gb"} {
		if v, ok := strings.CutSuffix(s, unit); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f <= 0 || f > 1<<20 {
				return 0, fmt.Errorf("want MiB (2048) or GB (\"2 GB\"), found %q", n.raw)
			}
			return int64(math.Round(f * 1024)), nil
		}
	}
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(s, "mib"), "mb"))
	v, ok := num{raw: s, set: true}.int()
	if !ok || v < 0 {
		return 0, fmt.Errorf("want MiB (2048) or GB (\"2 GB\"), found %q", n.raw)
	}
	return v, nil
}

// volumes maps the task's volumes; mountPoints refer to them by name.
func (m *mapper) volumes() error {
	for i, v := range m.td.td.Volumes {
		f := fmt.Sprintf("volumes[%d]", i)
		if m.skip(m.t, f) {
			continue
		}
		t := m.t.At(f)
		if strings.TrimSpace(v.Name) == "" {
			if m.has(m.t, f) {
				return inputErr(t, "name", "the volume has no name")
			}
			continue
		}
		if _, dup := m.vols[v.Name]; dup {
			return inputErr(t, "name", "two volumes named %q", v.Name)
		}
		name := m.uniqueVolumeName(v.Name)
		vt := "volumes[" + name + "]"
		vol := service.Volume{Name: name, Kind: service.VolumeEmptyDir}
		target := vt + " emptyDir"
		switch {
		case v.EFSVolumeConfiguration != nil:
			e := v.EFSVolumeConfiguration
			et := t.At("efsVolumeConfiguration")
			if strings.TrimSpace(e.FileSystemID) == "" {
				return inputErr(et, "fileSystemId", "the EFS volume names no file system")
			}
			vol.Kind = service.VolumeEFS
			vol.EFS = &service.EFSVolume{FileSystemID: e.FileSystemID, RootDirectory: e.RootDirectory}
			target = vt + " EFS CSI"
			et.Mapped("fileSystemId", vt+" volumeHandle")
			if e.RootDirectory != "" {
				et.Mapped("rootDirectory", vt+" volumeHandle path")
			}
			switch strings.ToUpper(e.TransitEncryption) {
			case "ENABLED":
				vol.EFS.TransitEncryption = true
				et.Mapped("transitEncryption", vt+" mountOptions tls")
			case "DISABLED", "":
				if e.TransitEncryption != "" {
					et.Warn("transitEncryption", vt, "traffic to EFS is not encrypted; the EFS CSI driver can mount with tls")
				}
			default:
				return inputErr(et, "transitEncryption", "want ENABLED or DISABLED, found %q", e.TransitEncryption)
			}
			m.dropIf(et, "transitEncryptionPort", "the EFS CSI driver picks the port of its TLS tunnel")
			if ac := e.AuthorizationConfig; ac != nil {
				if ac.AccessPointID != "" {
					vol.EFS.AccessPointID = ac.AccessPointID
					et.Mapped("authorizationConfig.accessPointId", vt+" volumeHandle access point")
				}
				if strings.EqualFold(ac.IAM, "ENABLED") {
					et.Warn("authorizationConfig.iam", "", "ECS mounted with the task role; the EFS CSI driver mounts with its own identity: allow its role elasticfilesystem:ClientMount (and ClientWrite) in the file system policy")
				} else {
					m.dropIf(et, "authorizationConfig.iam", "IAM authorization was off")
				}
			}
		case v.FSxWindows != nil:
			t.Warn("fsxWindowsFileServerVolumeConfiguration", vt, "NOT carried over: an empty scratch directory stands in for the FSx for Windows share; mount it with the SMB CSI driver by hand")
		case v.ConfiguredAtLaunch != nil && *v.ConfiguredAtLaunch:
			vol.Kind = service.VolumeClaim
			target = vt + " PersistentVolumeClaim"
			if m.sd != nil {
				for j, vc := range m.sd.s.VolumeConfigurations {
					if vc.Name == v.Name && vc.ManagedEBSVolume != nil && vc.ManagedEBSVolume.SizeInGiB.set {
						gib, ok := vc.ManagedEBSVolume.SizeInGiB.int()
						if !ok || gib <= 0 {
							return inputErr(m.st, fmt.Sprintf("volumeConfigurations[%d].managedEBSVolume.sizeInGiB", j), "want a whole number of GiB, found %s", vc.ManagedEBSVolume.SizeInGiB.raw)
						}
						vol.Size = fmt.Sprintf("%dGi", gib)
						m.st.Warn(fmt.Sprintf("volumeConfigurations[%d]", j), "PersistentVolumeClaim "+vol.Size, "the EBS volume's size; its type, IOPS, throughput and KMS key belong to the StorageClass")
					}
				}
			}
			t.Warn("configuredAtLaunch", vt, "ECS attached a fresh EBS volume to each task; a PersistentVolumeClaim is ReadWriteOnce and shared by the pods, so more than one replica needs a StatefulSet or ReadWriteMany storage")
		case v.DockerVolumeConfiguration != nil:
			dv := v.DockerVolumeConfiguration
			msg := "a Docker volume becomes an emptyDir, which lives as long as the pod"
			if strings.EqualFold(dv.Scope, "shared") || dv.Autoprovision != nil && *dv.Autoprovision {
				msg = "a shared Docker volume outlived its tasks on ECS; an emptyDir dies with the pod: use a PersistentVolumeClaim if the data must stay"
			}
			if dv.Driver != "" && dv.Driver != "local" {
				msg += fmt.Sprintf("; the %s volume driver has no counterpart: find its CSI driver", dv.Driver)
			}
			t.Warn("dockerVolumeConfiguration", vt, msg)
		case v.Host != nil && strings.TrimSpace(v.Host.SourcePath) != "":
			msg := fmt.Sprintf("host path %s of the EC2 instance is NOT carried over: the pod gets an empty scratch directory (hostPath volumes are refused by the baseline Pod Security Standard)", v.Host.SourcePath)
			if strings.Contains(v.Host.SourcePath, "docker.sock") {
				msg = "the Docker socket does not exist on Kubernetes nodes (containerd): the app must stop using it; an empty scratch directory stands in"
			}
			t.Warn("host.sourcePath", vt, msg)
		default:
			// A bind mount with no source path is scratch space the
			// task's containers share: an emptyDir exactly.
		}
		m.svc.Volumes = append(m.svc.Volumes, vol)
		m.vols[v.Name] = name
		if name != v.Name {
			t.Warn("name", target, fmt.Sprintf("renamed to %q: Kubernetes volume names are DNS-1123 labels", name))
		} else {
			t.Mapped("name", target)
		}
	}
	return nil
}

// taskDrops are task-level fields Kubernetes has no place for, and why.
var taskDrops = []struct{ field, why string }{
	{"placementConstraints", "memberOf expressions select EC2 instances: write the matching nodeAffinity by hand"},
	{"proxyConfiguration", "App Mesh's proxy settings: on Kubernetes a service mesh injects and configures its own proxy"},
	{"inferenceAccelerators", "Elastic Inference is retired: run on GPU nodes"},
	{"ipcMode", "pods get their own IPC namespace; host IPC is refused by the baseline Pod Security Standard"},
	{"enableFaultInjection", "fault injection is a chaos tool's job on Kubernetes (AWS FIS supports EKS)"},
	{"status", "set by AWS at registration, not configuration"},
	{"requiresAttributes", "set by AWS at registration, not configuration"},
	{"compatibilities", "set by AWS at registration, not configuration"},
	{"registeredAt", "set by AWS at registration, not configuration"},
	{"registeredBy", "set by AWS at registration, not configuration"},
	{"deregisteredAt", "set by AWS at registration, not configuration"},
	{"deleteRequestedAt", "set by AWS at registration, not configuration"},
}

// taskLevel maps the task definition's own fields.
func (m *mapper) taskLevel() error {
	td := m.td.td
	t := m.t
	if arn := strings.TrimSpace(td.TaskRoleArn); arn != "" {
		sa := &service.ServiceAccount{FormerPrincipal: "ecs-tasks.amazonaws.com"}
		if arnPlaceholder(arn) {
			sa.RoleValue = m.svc.AddValue("roleArn", fillDefault(arn), "the IAM role the pods assume: the task role was "+placeholderWhat(arn))
			t.Fill("taskRoleArn", "values fill."+sa.RoleValue, fmt.Sprintf("the task role is %s: fill in the IAM role the pods assume", placeholderWhat(arn)))
		} else {
			if err := parseRoleARN(arn); err != nil {
				return inputErr(t, "taskRoleArn", "%v", err)
			}
			sa.RoleARN = arn
			t.Mapped("taskRoleArn", "ServiceAccount eks.amazonaws.com/role-arn (trust: the cluster's OIDC provider instead of ecs-tasks.amazonaws.com)")
		}
		m.svc.ServiceAccount = sa
	}
	if arn := strings.TrimSpace(td.ExecutionRoleArn); arn != "" {
		if !arnPlaceholder(arn) {
			if err := parseRoleARN(arn); err != nil {
				return inputErr(t, "executionRoleArn", "%v", err)
			}
		}
		msg := "ECS pulled images and read secrets with this role; on EKS the nodes' role pulls from ECR (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer)"
		sm, ssm := m.secretResources()
		if len(sm)+len(ssm) > 0 {
			msg += " and External Secrets reads the secrets through the service account, whose IRSA role needs"
			if len(sm) > 0 {
				msg += fmt.Sprintf(" secretsmanager:GetSecretValue on %s", strings.Join(sm, ", "))
			}
			if len(sm) > 0 && len(ssm) > 0 {
				msg += " and"
			}
			if len(ssm) > 0 {
				msg += fmt.Sprintf(" ssm:GetParameters on %s", strings.Join(ssm, ", "))
			}
			msg += ", plus kms:Decrypt on customer-managed keys"
		}
		t.Warn("executionRoleArn", "IAM (node role, IRSA role policy)", msg)
	}

	switch nm := td.NetworkMode; nm {
	case "":
	case "awsvpc":
		t.Mapped("networkMode", "pod network: each pod has its own IP, as each awsvpc task had")
	case "bridge":
		t.Warn("networkMode", "pod network", "bridge mode mapped ports onto the instance; each pod has its own IP now, and clients reach it through a Service")
	case "host":
		t.Warn("networkMode", "pod network", "host networking is not carried over (the baseline Pod Security Standard refuses it): the pod gets its own IP; ports bound on the instance must be reached through a Service")
	case "none":
		t.Warn("networkMode", "pod network", "the task had no network; a pod always has one")
	default:
		t.Warn("networkMode", "pod network", fmt.Sprintf("network mode %q: each pod has its own IP", nm))
	}

	for i, rc := range td.RequiresCompatibilities {
		switch strings.ToUpper(rc) {
		case "EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES":
		default:
			return inputErr(t, fmt.Sprintf("requiresCompatibilities[%d]", i), "unknown compatibility %q: want EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES", rc)
		}
	}
	m.dropIf(t, "requiresCompatibilities", "where pods run is the cluster's choice: node groups, Karpenter or a Fargate profile")

	if rp := td.RuntimePlatform; rp != nil {
		p := m.placement()
		switch a := strings.ToUpper(rp.CPUArchitecture); a {
		case "":
		case "X86_64":
			p.Architecture = "amd64"
			t.Mapped("runtimePlatform.cpuArchitecture", "nodeSelector kubernetes.io/arch=amd64")
		case "ARM64":
			p.Architecture = "arm64"
			t.Mapped("runtimePlatform.cpuArchitecture", "nodeSelector kubernetes.io/arch=arm64")
		default:
			t.Warn("runtimePlatform.cpuArchitecture", "", fmt.Sprintf("unknown architecture %q: pods may land on any architecture", rp.CPUArchitecture))
		}
		switch os := strings.ToUpper(rp.OperatingSystemFamily); {
		case os == "":
		case os == "LINUX":
			p.OS = "linux"
			t.Mapped("runtimePlatform.operatingSystemFamily", "nodeSelector kubernetes.io/os=linux")
		case strings.HasPrefix(os, "WINDOWS"):
			p.OS = "windows"
			t.Warn("runtimePlatform.operatingSystemFamily", "nodeSelector kubernetes.io/os=windows", fmt.Sprintf("%s: the cluster needs Windows nodes of the same Windows Server version", rp.OperatingSystemFamily))
		default:
			t.Warn("runtimePlatform.operatingSystemFamily", "", fmt.Sprintf("unknown operating system family %q", rp.OperatingSystemFamily))
		}
	}

	switch pm := strings.ToLower(td.PidMode); pm {
	case "":
	case "task":
		t.Warn("pidMode", "", "containers saw each other's processes: set shareProcessNamespace: true on the pod by hand if one of them signals or inspects another")
	default:
		t.Drop("pidMode", "host PID is refused by the baseline Pod Security Standard")
	}

	for _, d := range taskDrops {
		m.dropIf(t, d.field, d.why)
	}
	if m.td.prefix != "" {
		m.labels(m.root, "tags", m.td.outerTags)
	}
	m.labels(t, "tags", td.Tags)
	return nil
}

// placement returns the service's placement, creating it.
func (m *mapper) placement() *service.Placement {
	if m.svc.Placement == nil {
		m.svc.Placement = &service.Placement{}
	}
	return m.svc.Placement
}
