package ecs

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// serviceDrops are ECS service fields Kubernetes has no place for, and why.
var serviceDrops = []struct{ field, why string }{
	{"status", "state of the ECS service, not configuration"},
	{"runningCount", "state of the ECS service, not configuration"},
	{"pendingCount", "state of the ECS service, not configuration"},
	{"deployments", "state of the ECS service, not configuration"},
	{"taskSets", "state of the ECS service, not configuration"},
	{"events", "state of the ECS service, not configuration"},
	{"createdAt", "state of the ECS service, not configuration"},
	{"createdBy", "state of the ECS service, not configuration"},
	{"clientToken", "the create call's idempotency token"},
	{"platformVersion", "Fargate platform versions have no counterpart: the node's kernel and runtime apply"},
	{"platformFamily", "Fargate platform versions have no counterpart: the node's kernel and runtime apply"},
	{"roleArn", "ECS registered targets with the load balancer through this role; on Kubernetes the AWS Load Balancer Controller or the ingress controller does it with its own"},
	{"role", "ECS registered targets with the load balancer through this role; on Kubernetes the AWS Load Balancer Controller or the ingress controller does it with its own"},
	{"placementConstraints", "memberOf expressions select EC2 instances: write the matching nodeAffinity by hand"},
	{"placementStrategy", "the chart spreads pods across zones (topologySpreadConstraints); binpack and random have no counterpart"},
	{"availabilityZoneRebalancing", "the chart spreads pods across zones; the descheduler rebalances them if needed"},
	{"enableECSManagedTags", "ECS tagged tasks with their cluster and service; the chart's standard labels do that"},
	{"propagateTags", "the service's labels go on every object the chart renders"},
	{"healthCheckGracePeriodSeconds", "ECS ignored failing load balancer checks for this long after a start; a failing readiness probe only holds traffic back, and the startup probe covers a slow start"},
	{"enableExecuteCommand", "use kubectl exec; RBAC decides who may"},
	{"serviceConnectConfiguration", "Service Connect: clients reach the service by its Kubernetes DNS name, <service>.<namespace>.svc.cluster.local; a mesh gives the retries and metrics Service Connect gave"},
	{"deploymentConfiguration.alarms", "CloudWatch alarms rolled ECS deployments back; `cutover shift` judges the new side on live metrics and rolls back by itself"},
	{"deploymentConfiguration.strategy", "ECS's blue/green strategy: `cutover shift` moves traffic in steps and rolls back by itself"},
	{"deploymentConfiguration.bakeTimeInMinutes", "ECS's blue/green bake time: a `cutover shift` plan holds each step instead"},
	{"deploymentConfiguration.lifecycleHooks", "ECS's blue/green lifecycle hooks: `cutover shift` plans have approval steps instead"},
	{"networkConfiguration.awsvpcConfiguration.subnets", "pods run in the subnets of their nodes (or of the VPC CNI's custom networking)"},
}

// ecsService maps the ECS service's own fields.
func (m *mapper) ecsService() error {
	if m.sd == nil {
		return nil
	}
	s, t := m.sd.s, m.st
	if s.DesiredCount.set {
		v, ok := s.DesiredCount.int()
		if !ok || v < 0 || v > math.MaxInt32 {
			return inputErr(t, "desiredCount", "want a whole number of tasks, found %s", s.DesiredCount.raw)
		}
		d := int32(v)
		m.desired = &d
	} else if m.sd.defaultCount > 0 {
		d := m.sd.defaultCount
		m.desired, m.desiredDefault = &d, true
	}
	switch lt := strings.ToUpper(s.LaunchType); lt {
	case "":
	case "FARGATE", "EC2", "EXTERNAL", "MANAGED_INSTANCES":
		t.Drop("launchType", "where pods run is the cluster's choice: node groups, Karpenter or a Fargate profile")
	default:
		return inputErr(t, "launchType", "unknown launch type %q: want FARGATE, EC2, EXTERNAL or MANAGED_INSTANCES", s.LaunchType)
	}
	if err := m.capacity(); err != nil {
		return err
	}
	if err := m.rollout(); err != nil {
		return err
	}
	if dc := s.DeploymentController; dc != nil {
		switch strings.ToUpper(dc.Type) {
		case "", "ECS":
			m.dropIf(t, "deploymentController", "ECS rolling updates: the Deployment's rolling update")
		case "CODE_DEPLOY":
			t.Warn("deploymentController", "", "CodeDeploy blue/green: a Kubernetes Deployment rolls; `cutover shift` moves traffic between the two sides in steps with automatic rollback")
		default:
			t.Warn("deploymentController", "", fmt.Sprintf("%s deployments were driven from outside ECS; the Deployment's rolling update replaces them", dc.Type))
		}
	}
	switch st := strings.ToUpper(s.SchedulingStrategy); st {
	case "", "REPLICA":
		m.dropIf(t, "schedulingStrategy", "REPLICA: a Deployment")
	case "DAEMON":
		t.Warn("schedulingStrategy", "", "one task per instance: that is a DaemonSet on Kubernetes, which the chart does not render; the service becomes a Deployment")
	default:
		return inputErr(t, "schedulingStrategy", "unknown scheduling strategy %q: want REPLICA or DAEMON", s.SchedulingStrategy)
	}
	if nc := s.NetworkConfiguration; nc != nil && nc.AwsvpcConfiguration != nil {
		a := nc.AwsvpcConfiguration
		var groups []string
		for _, g := range a.SecurityGroups {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		if len(groups) > 0 {
			t.Warn("networkConfiguration.awsvpcConfiguration.securityGroups", "",
				fmt.Sprintf("security groups %s filtered the task's traffic; on Kubernetes write NetworkPolicies for the same rules, or attach the groups with the VPC CNI's security groups for pods (SecurityGroupPolicy)", strings.Join(groups, ", ")))
		}
		switch strings.ToUpper(a.AssignPublicIP) {
		case "ENABLED":
			t.Warn("networkConfiguration.awsvpcConfiguration.assignPublicIp", "", "tasks had public IPs; pods have none and reach the internet through the nodes' NAT")
		case "":
		default:
			t.Drop("networkConfiguration.awsvpcConfiguration.assignPublicIp", "pods have no public IP, as the tasks had none")
		}
	}
	for _, d := range serviceDrops {
		m.dropIf(t, d.field, d.why)
	}
	m.labels(t, "tags", s.Tags)
	return nil
}

// capacity maps the capacity provider strategy: a Spot share becomes a
// Spot placement preference.
func (m *mapper) capacity() error {
	s, t := m.sd.s, m.st
	var spot, total int64
	for i, c := range s.CapacityProviderStrategy {
		f := fmt.Sprintf("capacityProviderStrategy[%d]", i)
		if c == (capacityItem{}) {
			continue // an empty entry, reported by skeletonEntries
		}
		w, ok := c.Weight.int()
		if !ok || w < 0 || w > 1000 {
			return inputErr(t, f+".weight", "want a weight from 0 to 1000, found %s", c.Weight.raw)
		}
		if !c.Weight.set {
			w = 0
		}
		b, ok := c.Base.int()
		if !ok || b < 0 || b > 100000 {
			return inputErr(t, f+".base", "want a number of tasks, found %s", c.Base.raw)
		}
		total += w
		name := c.CapacityProvider
		isSpot := name == "FARGATE_SPOT" || strings.Contains(strings.ToLower(name), "spot")
		switch {
		case name == "":
			continue
		case isSpot:
			spot += w
			if name == "FARGATE_SPOT" {
				t.Mapped(f+".capacityProvider", "placement spot (toleration and node affinity)")
			} else {
				t.Warn(f+".capacityProvider", "placement spot (toleration and node affinity)", fmt.Sprintf("%s is taken for Spot capacity by its name: check it", name))
			}
		default:
			t.Drop(f+".capacityProvider", fmt.Sprintf("%s is on-demand capacity: the cluster's node groups provide it", name))
		}
		if c.Weight.set {
			t.Mapped(f+".weight", "placement spotPercent")
		}
		if b > 0 {
			t.Warn(f+".base", "", fmt.Sprintf("ECS ran the first %d tasks on %s whatever the weights; Kubernetes has no base count, the Spot share applies to all pods", b, name))
		} else if c.Base.set {
			t.Drop(f+".base", "no base count")
		}
	}
	if spot > 0 || total == 0 && spot == 0 && anySpot(s.CapacityProviderStrategy) {
		p := m.placement()
		p.Spot = true
		p.SpotPercent = 100
		if total > 0 {
			p.SpotPercent = int32((spot*100 + total/2) / total)
		}
	}
	return nil
}

func anySpot(items []capacityItem) bool {
	for _, c := range items {
		if c.CapacityProvider == "FARGATE_SPOT" || strings.Contains(strings.ToLower(c.CapacityProvider), "spot") {
			return true
		}
	}
	return false
}

// rollout maps maximumPercent and minimumHealthyPercent to surge and
// unavailability.
func (m *mapper) rollout() error {
	dc, t := m.sd.s.DeploymentConfiguration, m.st.At("deploymentConfiguration")
	if dc == nil {
		return nil
	}
	if v, ok := dc.MaximumPercent.int(); ok && dc.MaximumPercent.set && v == 0 {
		// ECS refuses 0 (no task could run during a deployment); it is
		// what the CLI's skeleton prints.
		t.Drop("maximumPercent", "0 is no maximum ECS accepts (the CLI skeleton's placeholder): ECS's default of 200 applies")
		dc.MaximumPercent = num{}
	}
	maxP, ok := dc.MaximumPercent.int()
	if !ok || maxP < 0 || maxP > 1000 {
		return inputErr(t, "maximumPercent", "want a percentage, found %s", dc.MaximumPercent.raw)
	}
	minP, ok := dc.MinimumHealthyPercent.int()
	if !ok || minP < 0 || minP > 100 {
		return inputErr(t, "minimumHealthyPercent", "want a percentage from 0 to 100, found %s", dc.MinimumHealthyPercent.raw)
	}
	if dc.MaximumPercent.set || dc.MinimumHealthyPercent.set {
		if !dc.MaximumPercent.set {
			maxP = 200
		}
		if !dc.MinimumHealthyPercent.set {
			minP = 100
		}
		r := &service.Rollout{MaxSurgePercent: int32(max(maxP-100, 0)), MaxUnavailablePercent: int32(100 - minP)}
		if r.MaxSurgePercent == 0 && r.MaxUnavailablePercent == 0 {
			// ECS cannot deploy with 100/100 either; Kubernetes refuses it.
			r.MaxSurgePercent = 25
			t.Warn("maximumPercent", "Deployment .spec.strategy.rollingUpdate.maxSurge 25%", "maximumPercent 100 with minimumHealthyPercent 100 leaves no room to roll; Kubernetes needs surge or unavailability, so surge is 25%")
		} else if dc.MaximumPercent.set {
			t.Mapped("maximumPercent", "Deployment .spec.strategy.rollingUpdate.maxSurge")
		}
		if dc.MinimumHealthyPercent.set {
			t.Mapped("minimumHealthyPercent", "Deployment .spec.strategy.rollingUpdate.maxUnavailable")
		}
		m.svc.Rollout = r
	}
	if cb := dc.DeploymentCircuitBreaker; cb != nil && cb.Enable != nil && *cb.Enable {
		msg := "ECS stopped a deployment whose tasks kept failing"
		if cb.Rollback != nil && *cb.Rollback {
			msg += " and rolled it back"
		}
		msg += "; Kubernetes only marks a stuck rollout (progressDeadlineSeconds) and never rolls back by itself: `cutover shift` or Argo Rollouts do"
		t.Warn("deploymentCircuitBreaker", "Deployment .spec.progressDeadlineSeconds", msg)
	} else {
		m.dropIf(t, "deploymentCircuitBreaker", "the circuit breaker was off")
	}
	return nil
}

// loadBalancing maps load balancers, target group health checks and
// service discovery to how the service is reached and when it is ready.
func (m *mapper) loadBalancing() error {
	if m.sd == nil {
		return nil
	}
	s, t := m.sd.s, m.st
	for j, lb := range s.LoadBalancers {
		f := fmt.Sprintf("loadBalancers[%d]", j)
		if lb == (loadBalancer{}) {
			continue // an empty entry, reported by skeletonEntries
		}
		if lb.ContainerName == "" {
			return inputErr(t, f+".containerName", "the load balancer names no container")
		}
		var c *cinfo
		for _, o := range m.cs {
			if o.raw == lb.ContainerName {
				c = o
			}
		}
		port, ok := lb.ContainerPort.int()
		if !ok || !lb.ContainerPort.set || port < 1 || port > 65535 {
			return inputErr(t, f+".containerPort", "want a port number, found %q", lb.ContainerPort.raw)
		}
		if !hasPort(c, int32(port)) {
			return inputErr(t, f+".containerPort", "container %q has no port mapping for port %d", lb.ContainerName, port)
		}
		if c != m.app {
			c.reach(int32(port))
			t.Warn(f, fmt.Sprintf("Service port %d → %s", port, c.target), fmt.Sprintf("a load balancer also sends traffic to container %s port %d, which the Service has too; routes and the load balancer's health check follow the app container %s", c.name, port, m.app.name))
			continue
		}
		if m.expose == nil {
			m.expose = &service.Expose{Port: int32(port)}
			t.Mapped(f+".containerName", "Service → "+c.target)
			t.Mapped(f+".containerPort", "Service targetPort")
		} else if m.expose.Port == int32(port) {
			t.Warn(f+".containerPort", "Service targetPort", "a second load balancer sends to the same port: one Service takes both; add an Ingress for each entry point")
			t.Use(f + ".containerName")
		} else {
			t.Warn(f+".containerPort", fmt.Sprintf("Service port %d", port), fmt.Sprintf("a second load balancer sends to port %d, which the Service has too; routes and the load balancer's health check follow port %d", port, m.expose.Port))
			t.Use(f + ".containerName")
		}
		switch {
		case lb.TargetGroupArn != "":
			tg := m.targetGroup(lb.TargetGroupArn)
			msg := "traffic reaches ECS through this target group until the cutover; `cutover shift` moves it in steps"
			switch {
			case arnPlaceholder(lb.TargetGroupArn):
				msg += fmt.Sprintf("; the ARN is %s: the shift needs the real target group ARN, and its health check would become the readiness probe", placeholderWhat(lb.TargetGroupArn))
			case tg == nil:
				msg += "; its health check is unknown: pass `aws elbv2 describe-target-groups` output to turn it into the readiness probe"
			}
			t.Warn(f+".targetGroupArn", "", msg)
			if tg != nil && m.expose.Port == int32(port) && m.readinessTG == nil {
				if err := m.readiness(tg, int32(port)); err != nil {
					return err
				}
			}
		case lb.LoadBalancerName != "":
			t.Warn(f+".loadBalancerName", "", fmt.Sprintf("Classic Load Balancer %s: traffic reaches ECS through it until the cutover; its health check is not in the input", lb.LoadBalancerName))
		}
	}
	for j, r := range s.ServiceRegistries {
		f := fmt.Sprintf("serviceRegistries[%d]", j)
		if r == (registry{}) {
			continue // an empty entry, reported by skeletonEntries
		}
		port := int32(0)
		for _, n := range []num{r.ContainerPort, r.Port} {
			if v, ok := n.int(); ok && n.set && v > 0 && v <= 65535 && port == 0 {
				port = int32(v)
			}
		}
		if port == 0 && len(m.app.out.Ports) > 0 {
			port = m.app.out.Ports[0].ContainerPort
		}
		if m.expose == nil && port > 0 {
			m.expose = &service.Expose{Port: port, Internal: true}
		}
		t.Warn(f, "Service (cluster DNS)", "clients found the service through Cloud Map; on Kubernetes they use <service>.<namespace>.svc.cluster.local: keep the Cloud Map name during the migration (ExternalDNS or the Cloud Map MCS controller can register pods) and move clients over")
	}
	for _, tg := range m.tgs {
		if tg != m.readinessTG {
			tt := source.NewTracker(tg.path, tg.pos, &m.svc.Report).At(tg.prefix)
			m.aux = append(m.aux, tt)
			tt.Drop("", "the target group of a second load balancer: its health check is not converted")
		}
	}
	return nil
}

// reach records that clients outside the task reached the container's
// port.
func (c *cinfo) reach(port int32) {
	for i := range c.ports {
		if c.out.Ports[c.ports[i].port].ContainerPort == port {
			c.ports[i].reached = true
		}
	}
}

func hasPort(c *cinfo, port int32) bool {
	for _, p := range c.out.Ports {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

// targetGroup returns the input's target group with arn, or nil.
func (m *mapper) targetGroup(arn string) *tgDoc {
	for _, tg := range m.tgs {
		if tg.tg.TargetGroupArn == arn {
			return tg
		}
	}
	return nil
}

// tgDrops are target group fields with no place in the pod, and why.
var tgDrops = []struct{ field, why string }{
	{"TargetGroupName", "the target group stays with the load balancer until the cutover"},
	{"Protocol", "the load balancer's protocol to the targets; the Service routes by port"},
	{"Port", "the target group's default port; the Service routes to the container port"},
	{"VpcId", "the cluster's VPC applies"},
	{"LoadBalancerArns", "the load balancer keeps sending to ECS until `cutover shift` moves traffic"},
	{"TargetType", "how the load balancer registered tasks; on Kubernetes the AWS Load Balancer Controller registers pods (target-type ip)"},
	{"IpAddressType", "the cluster's IP family applies"},
}

// readiness turns the target group's health check into the app's
// readiness probe: the load balancer sent traffic to a task only while
// the check passed, which is what readiness means.
func (m *mapper) readiness(tgd *tgDoc, trafficPort int32) error {
	tg := tgd.tg
	t := source.NewTracker(tgd.path, tgd.pos, &m.svc.Report).At(tgd.prefix)
	m.aux = append(m.aux, t)
	m.readinessTG = tgd
	if t.Holds("TargetGroupArn") {
		t.Mapped("TargetGroupArn", "joins service "+m.svc.Name)
	} else {
		// A template's target group: the service's loadBalancers name its
		// logical id, and its ARN is the stack's.
		t.Use("TargetGroupArn")
	}
	target := m.app.target + ".readinessProbe"
	if tg.HealthCheckEnabled != nil && !*tg.HealthCheckEnabled {
		t.Warn("HealthCheckEnabled", target, "the load balancer did not check the targets; the readiness probe only checks that the port accepts connections")
		m.app.out.Readiness = &service.Probe{TCPPort: trafficPort}
		for _, f := range []string{"HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher"} {
			m.dropIf(t, f, "health checks were off")
		}
	} else {
		m.dropIf(t, "HealthCheckEnabled", "health checks were on")
		p := &service.Probe{}
		port := trafficPort
		switch hp := strings.TrimSpace(tg.HealthCheckPort); hp {
		case "", "traffic-port":
			m.dropIf(t, "HealthCheckPort", "the traffic port, which the probe uses")
		default:
			v, err := strconv.Atoi(hp)
			if err != nil || v < 1 || v > 65535 {
				return inputErr(t, "HealthCheckPort", "want traffic-port or a port number, found %q", tg.HealthCheckPort)
			}
			port = int32(v)
			if port != trafficPort && !hasPort(m.app, port) {
				t.Warn("HealthCheckPort", target+".port", fmt.Sprintf("the load balancer checked port %d, which is not a container port of %s: check that the container listens there", port, m.app.name))
			} else {
				t.Mapped("HealthCheckPort", target+".port")
			}
		}
		proto := strings.ToUpper(tg.HealthCheckProtocol)
		if proto == "" {
			proto = strings.ToUpper(tg.Protocol)
		}
		switch proto {
		case "", "HTTP", "HTTPS":
			path := tg.HealthCheckPath
			if path == "" {
				path = "/"
			}
			p.HTTPGet = &service.HTTPGet{Path: path, Port: port}
			if proto == "HTTPS" {
				p.HTTPGet.Scheme = "HTTPS"
			}
			m.expose.HealthPath = path
			if m.has(t, "HealthCheckProtocol") {
				t.Mapped("HealthCheckProtocol", target+".httpGet.scheme")
			}
			if m.has(t, "HealthCheckPath") {
				t.Mapped("HealthCheckPath", target+".httpGet.path")
			}
			if err := m.matcher(t, tg, target); err != nil {
				return err
			}
		default:
			p.TCPPort = port
			t.Mapped("HealthCheckProtocol", target+".tcpSocket")
			m.dropIf(t, "HealthCheckPath", "a TCP check has no path")
			m.dropIf(t, "Matcher", "a TCP check has no status codes")
		}
		for _, f := range []struct {
			name string
			v    num
			dst  *int32
			out  string
		}{
			{"HealthCheckIntervalSeconds", tg.HealthCheckIntervalSeconds, &p.PeriodSeconds, "periodSeconds"},
			{"HealthCheckTimeoutSeconds", tg.HealthCheckTimeoutSeconds, &p.TimeoutSeconds, "timeoutSeconds"},
			{"HealthyThresholdCount", tg.HealthyThresholdCount, &p.SuccessThreshold, "successThreshold"},
			{"UnhealthyThresholdCount", tg.UnhealthyThresholdCount, &p.FailureThreshold, "failureThreshold"},
		} {
			v, ok := f.v.int()
			if !ok || v < 0 || v > 3600 {
				return inputErr(t, f.name, "want a whole number, found %s", f.v.raw)
			}
			if f.v.set {
				*f.dst = int32(v)
				t.Mapped(f.name, target+"."+f.out)
			}
		}
		m.app.out.Readiness = p
	}
	switch pv := strings.ToUpper(tg.ProtocolVersion); pv {
	case "":
	case "HTTP1", "HTTP2", "GRPC":
		ap := map[string]string{"HTTP1": "http", "HTTP2": "http2", "GRPC": "grpc"}[pv]
		set := false
		for i := range m.app.out.Ports {
			pt := &m.app.out.Ports[i]
			if pt.ContainerPort == trafficPort && pt.AppProtocol == "" {
				pt.AppProtocol = ap
				set = true
			}
		}
		if set {
			t.Mapped("ProtocolVersion", m.app.target+".ports.appProtocol")
		} else {
			t.Drop("ProtocolVersion", "the port mapping already names its app protocol")
		}
		if pv == "GRPC" && m.app.out.Readiness != nil && m.app.out.Readiness.HTTPGet != nil {
			// A gRPC health check is not an HTTP GET; a TCP check is
			// the safe stand-in until a grpc probe is written by hand.
			m.app.out.Readiness.HTTPGet = nil
			m.app.out.Readiness.TCPPort = trafficPort
			m.expose.HealthPath = ""
			t.Warn("ProtocolVersion", target+".tcpSocket", "the load balancer checked gRPC health; the readiness probe checks the port only: use a grpc probe if the app serves grpc.health.v1")
		}
	default:
		t.Drop("ProtocolVersion", fmt.Sprintf("unknown protocol version %q", tg.ProtocolVersion))
	}
	for _, d := range tgDrops {
		m.dropIf(t, d.field, d.why)
	}
	return nil
}

// matcher compares the success codes the load balancer accepted with what
// an httpGet probe accepts: 200 to 399.
func (m *mapper) matcher(t *source.Tracker, tg *targetGroup, target string) error {
	if tg.Matcher == nil {
		return nil
	}
	if tg.Matcher.GrpcCode != "" {
		t.Warn("Matcher.GrpcCode", target, "gRPC status codes: the probe is HTTP; see ProtocolVersion")
	}
	codes := strings.TrimSpace(tg.Matcher.HTTPCode)
	if codes == "" {
		return nil
	}
	lo, hi := 1000, 0
	for _, part := range strings.Split(codes, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		x, err1 := strconv.Atoi(strings.TrimSpace(a))
		y := x
		var err2 error
		if isRange {
			y, err2 = strconv.Atoi(strings.TrimSpace(b))
		}
		if err1 != nil || err2 != nil || x < 100 || y > 599 || y < x {
			return inputErr(t, "Matcher.HttpCode", "want status codes like 200, 200,204 or 200-299, found %q", codes)
		}
		lo, hi = min(lo, x), max(hi, y)
	}
	switch {
	case lo >= 200 && hi <= 399:
		if lo == 200 && hi == 399 {
			t.Mapped("Matcher.HttpCode", target+".httpGet")
		} else {
			t.Warn("Matcher.HttpCode", target+".httpGet", fmt.Sprintf("the load balancer accepted only %s; the probe accepts any status from 200 to 399", codes))
		}
	default:
		t.Warn("Matcher.HttpCode", target+".httpGet", fmt.Sprintf("the load balancer accepted %s; the probe fails on anything outside 200-399, so the path must answer 2xx or 3xx", codes))
	}
	return nil
}
