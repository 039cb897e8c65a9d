package ecs

import (
	"fmt"
	"math"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// defaultScaleInCooldown is Application Auto Scaling's scale-in cooldown
// for ECS when a target tracking policy does not set one.
const defaultScaleInCooldown = 300

// scaling maps scalable targets and target tracking policies to the
// HorizontalPodAutoscaler, and explains the policies it cannot map.
func (m *mapper) scaling() error {
	sc := &service.Scaling{}
	var minC, maxC int64
	haveTarget := false
	byFam := func(t *source.Tracker) {
		if m.byFam {
			t.Warn("ResourceId", "", fmt.Sprintf("no ECS service in the input: matched to task definition family %s by name", m.td.td.Family))
		} else {
			switch {
			case t.Holds("ResourceId"):
				t.Mapped("ResourceId", "joins service "+m.svc.Name)
			case t.Holds("ScalingTargetId"):
				// A template's policy names its scalable target, whose
				// ResourceId names the service.
				t.Mapped("ScalingTargetId", "joins service "+m.svc.Name)
			default:
				t.Use("ResourceId")
			}
		}
		t.Use("ServiceNamespace")
		t.Use("ScalableDimension")
	}
	var targetT *source.Tracker
	for _, td := range m.tgts {
		t := source.NewTracker(td.path, td.pos, &m.svc.Report).At(td.prefix)
		m.aux = append(m.aux, t)
		if haveTarget {
			t.Drop("", "a second scalable target for the same service: the first one applies")
			continue
		}
		byFam(t)
		lo, ok1 := td.t.MinCapacity.int()
		hi, ok2 := td.t.MaxCapacity.int()
		switch {
		case !ok1 || lo < 0 || lo > math.MaxInt32:
			return inputErr(t, "MinCapacity", "want a whole number of tasks, found %s", td.t.MinCapacity.raw)
		case !ok2 || hi < 0 || hi > math.MaxInt32:
			return inputErr(t, "MaxCapacity", "want a whole number of tasks, found %s", td.t.MaxCapacity.raw)
		case !td.t.MaxCapacity.set:
			return inputErr(t, "MaxCapacity", "the scalable target has no MaxCapacity")
		case hi < lo:
			return inputErr(t, "MaxCapacity", "MaxCapacity %d is below MinCapacity %d", hi, lo)
		}
		minC, maxC, haveTarget, targetT = lo, hi, true, t
		if ss := td.t.SuspendedState; ss != nil {
			var off []string
			for _, s := range []struct {
				v    *bool
				name string
			}{{ss.DynamicScalingInSuspended, "scale-in"}, {ss.DynamicScalingOutSuspended, "scale-out"}, {ss.ScheduledScalingSuspended, "scheduled scaling"}} {
				if s.v != nil && *s.v {
					off = append(off, s.name)
				}
			}
			if len(off) > 0 {
				t.Warn("SuspendedState", "HorizontalPodAutoscaler", fmt.Sprintf("%s was suspended on ECS; the autoscaler will act", strings.Join(off, ", ")))
			} else {
				t.Drop("SuspendedState", "nothing was suspended")
			}
		}
		for _, f := range []string{"RoleARN", "ScalableTargetARN", "CreationTime"} {
			m.dropIf(t, f, "Application Auto Scaling's own bookkeeping: the HorizontalPodAutoscaler needs no role")
		}
	}

	converted := false
	scaleDown := int64(-1)
	for _, pd := range m.pols {
		t := source.NewTracker(pd.path, pd.pos, &m.svc.Report).At(pd.prefix)
		m.aux = append(m.aux, t)
		byFam(t)
		t.Use("PolicyARN")
		t.Use("PolicyName")
		if t.Has("ScalingTargetId") {
			// A template's policy names its scalable target by Ref.
			t.Mapped("ScalingTargetId", "joins its scalable target")
		}
		p := pd.p
		m.dropIf(t, "Alarms", "the CloudWatch alarms Application Auto Scaling kept for this policy; the autoscaler reads the metric itself")
		m.dropIf(t, "CreationTime", "Application Auto Scaling's own bookkeeping")
		switch p.PolicyType {
		case "TargetTrackingScaling":
			ct := t.At("TargetTrackingScalingPolicyConfiguration")
			conf := p.TargetTrackingConf
			if conf == nil {
				m.dropIf(t, "PolicyType", "the policy has no target tracking configuration")
				continue
			}
			t.Use("PolicyType")
			tv, ok := conf.TargetValue.float()
			if !ok || !conf.TargetValue.set || tv <= 0 {
				return inputErr(ct, "TargetValue", "want a positive number, found %q", conf.TargetValue.raw)
			}
			metric := ""
			if conf.PredefinedMetricSpecification != nil {
				metric = conf.PredefinedMetricSpecification.PredefinedMetricType
			}
			var hpa string
			switch metric {
			case "ECSServiceAverageCPUUtilization":
				sc.TargetCPUPercent = int32(math.Round(min(tv, 100)))
				hpa = "HorizontalPodAutoscaler cpu averageUtilization"
			case "ECSServiceAverageMemoryUtilization":
				sc.TargetMemoryPercent = int32(math.Round(min(tv, 100)))
				hpa = "HorizontalPodAutoscaler memory averageUtilization"
			case "ALBRequestCountPerTarget":
				ct.Warn("", "", fmt.Sprintf("%s: keep %g requests per task per minute. The HPA has no request-rate metric of its own: use a KEDA ScaledObject with the prometheus scaler on the ingress controller's request rate per pod (or the aws-cloudwatch scaler on RequestCountPerTarget while the ALB still fronts the service)", p.PolicyName, tv))
				continue
			case "":
				name := "a customized metric"
				if cm := conf.CustomizedMetricSpecification; cm != nil && cm.MetricName != "" {
					name = cm.Namespace + "/" + cm.MetricName
				}
				ct.Warn("", "", fmt.Sprintf("%s tracks %s at %g: use a KEDA ScaledObject with the aws-cloudwatch scaler on that metric, or the prometheus scaler once the metric is scraped", p.PolicyName, name, tv))
				continue
			default:
				ct.Warn("", "", fmt.Sprintf("%s tracks %s at %g: use a KEDA ScaledObject on the same metric", p.PolicyName, metric, tv))
				continue
			}
			converted = true
			ct.Mapped("TargetValue", hpa)
			ct.Mapped("PredefinedMetricSpecification", hpa)
			in, ok := conf.ScaleInCooldown.int()
			if !ok || in < 0 {
				return inputErr(ct, "ScaleInCooldown", "want a whole number of seconds, found %s", conf.ScaleInCooldown.raw)
			}
			if !conf.ScaleInCooldown.set {
				in = defaultScaleInCooldown
			} else {
				ct.Mapped("ScaleInCooldown", "HorizontalPodAutoscaler behavior.scaleDown.stabilizationWindowSeconds")
			}
			scaleDown = max(scaleDown, in)
			m.dropIf(ct, "ScaleOutCooldown", "the autoscaler scales up without a cooldown (at most doubling every 15 s); set behavior.scaleUp by hand if scale-ups must be slower")
			if conf.DisableScaleIn != nil && *conf.DisableScaleIn {
				ct.Warn("DisableScaleIn", "HorizontalPodAutoscaler", "this policy never scaled in; the autoscaler will: set behavior.scaleDown.selectPolicy Disabled by hand to keep that")
			} else {
				m.dropIf(ct, "DisableScaleIn", "false: the autoscaler scales in too")
			}
		case "StepScaling":
			var alarms []string
			for _, a := range p.Alarms {
				if a.AlarmName != "" {
					alarms = append(alarms, a.AlarmName)
				}
			}
			msg := fmt.Sprintf("%s is a step scaling policy, which no Kubernetes autoscaler reproduces step by step", p.PolicyName)
			if len(alarms) > 0 {
				msg += fmt.Sprintf("; its alarms (%s) name the metric", strings.Join(alarms, ", "))
			}
			msg += ": use a KEDA ScaledObject (aws-cloudwatch scaler) with a target value on that metric, or an HPA on CPU or memory"
			t.Warn("", "", msg)
		case "PredictiveScaling":
			t.Warn("", "", fmt.Sprintf("%s is a predictive scaling policy: Kubernetes has none; KEDA's cron scaler can pre-scale for known peaks", p.PolicyName))
		default:
			t.Warn("", "", fmt.Sprintf("%s: unknown policy type %q, not converted", p.PolicyName, p.PolicyType))
		}
	}

	if !converted {
		switch {
		case m.desired != nil && *m.desired == 0:
			m.svc.Replicas = m.desired
			m.st.Warn("desiredCount", "Deployment .spec.replicas", "0: the service ran no tasks (or the file is a CLI skeleton), so the Deployment runs no pods until replicas is raised in values/services/"+m.svc.Name+".yaml")
		case m.desired != nil && m.desiredDefault:
			m.svc.Replicas = m.desired
			m.st.Warn("desiredCount", fmt.Sprintf("Deployment .spec.replicas %d", *m.desired), fmt.Sprintf("not set: CloudFormation's default of %d task applies", *m.desired))
		case m.desired != nil:
			m.svc.Replicas = m.desired
			m.st.Mapped("desiredCount", "Deployment .spec.replicas")
		}
		if haveTarget {
			targetT.Warn("MinCapacity", "", fmt.Sprintf("no CPU or memory target tracking policy was converted, so the replica count is fixed; ECS scaled between %d and %d tasks", minC, maxC))
			targetT.Use("MaxCapacity")
		}
		return nil
	}
	if !haveTarget {
		lo := int64(1)
		if m.desired != nil && *m.desired > 0 {
			lo = int64(*m.desired)
		}
		minC, maxC = lo, max(2*lo, lo+1)
		t := source.NewTracker(m.pols[0].path, m.pols[0].pos, &m.svc.Report).At(m.pols[0].prefix)
		t.Warn("ResourceId", "HorizontalPodAutoscaler minReplicas, maxReplicas", fmt.Sprintf("the service's min and max capacity are unknown (pass `aws application-autoscaling describe-scalable-targets --service-namespace ecs` output): min %d, max %d for now", minC, maxC))
	} else {
		targetT.Mapped("MinCapacity", "HorizontalPodAutoscaler .spec.minReplicas")
		targetT.Mapped("MaxCapacity", "HorizontalPodAutoscaler .spec.maxReplicas")
	}
	if minC == 0 {
		minC = 1
		maxC = max(maxC, 1)
		targetT.Warn("MinCapacity", "HorizontalPodAutoscaler .spec.minReplicas 1", "ECS could scale to zero tasks; an HPA cannot (without the HPAScaleToZero feature gate): KEDA can, with an event source that wakes it")
	}
	sc.MinReplicas, sc.MaxReplicas = int32(minC), int32(maxC)
	sc.ScaleDownStabilizationSeconds = int32(scaleDown)
	m.svc.Scaling = sc
	if m.desired != nil && !m.desiredDefault {
		m.st.Warn("desiredCount", "HorizontalPodAutoscaler", fmt.Sprintf("the autoscaler owns the replica count (%d when exported)", *m.desired))
	}
	return nil
}

// finish decides the kind, the readiness probe where no load balancer
// said one, graceful shutdown, and places the containers.
func (m *mapper) finish() error {
	app := m.app
	if m.expose == nil && len(app.out.Ports) > 0 {
		m.expose = &service.Expose{Port: app.out.Ports[0].ContainerPort, Internal: true}
	}
	// A port that clients reached on the instance (a fixed host port,
	// host networking) or through a load balancer is on the Service
	// whichever container serves it; a sidecar's says so on the port.
	for _, c := range m.cs {
		for _, r := range c.ports {
			if !r.reached {
				continue
			}
			if c.role == roleSidecar {
				c.out.Ports[r.port].Served = true
			}
			if m.expose == nil && (c.role == roleMain || c.role == roleSidecar) {
				m.expose = &service.Expose{Port: c.out.Ports[r.port].ContainerPort, Internal: true}
			}
		}
	}
	m.svc.Expose = m.expose
	if m.expose == nil {
		m.svc.Kind = service.KindWorker
		field, t := "family", m.t
		switch {
		case m.sd != nil && m.sd.named != nil && !m.st.Holds("serviceName"):
			// A template's service without ServiceName: the row goes
			// where the resource is, beside the one on its name.
			field, t = m.sd.named.field, source.NewTracker(m.sd.path, m.sd.pos, &m.svc.Report)
		case m.sd != nil:
			field, t = "serviceName", m.st
		case m.td.bare && m.app != nil:
			// A bare list has no family; the application's container
			// stands for the task.
			field, t = "name", m.app.t
		}
		t.Warn(field, "kind worker", "no load balancer, service registry or port mapping: a worker, a Deployment without a Service")
	} else {
		m.svc.Kind = service.KindServer
		if app.out.Readiness == nil && (hasPort(app, m.expose.Port) || !m.served(m.expose.Port)) {
			app.out.Readiness = &service.Probe{TCPPort: m.expose.Port}
			if !(m.sd != nil && len(m.sd.s.LoadBalancers) > 0) {
				field := "portMappings"
				for i, pm := range app.def.PortMappings {
					if v, _ := pm.ContainerPort.int(); v == int64(m.expose.Port) {
						field = fmt.Sprintf("portMappings[%d].containerPort", i)
						break
					}
				}
				app.t.Warn(field, app.target+".readinessProbe.tcpSocket", fmt.Sprintf("no load balancer health check is known: the pod is ready once port %d accepts connections", m.expose.Port))
			}
		}
		// The pod's Service sends traffic to every container's ports;
		// an essential container beside the app that serves one is ready
		// once it accepts connections, as the app is without a check.
		for _, c := range m.cs {
			if c == app || c.role != roleMain || len(c.out.Ports) == 0 || c.out.Readiness != nil || c.out.Ports[0].Protocol == "UDP" {
				continue
			}
			p := c.out.Ports[0].ContainerPort
			c.out.Readiness = &service.Probe{TCPPort: p}
			// It gets the app's preStop sleep too: endpoints stop
			// sending to it before SIGTERM, as they stop for the app.
			c.out.PreStopSleepSeconds = preStopSeconds
			c.t.Warn(m.portField(c, p), c.target+".readinessProbe.tcpSocket", fmt.Sprintf("an essential container that serves port %d: the pod is ready once it accepts connections there too, and it sleeps before SIGTERM as the app does", p))
		}
		// A sidecar that serves the Service is checked as well; it needs
		// no preStop sleep, since Kubernetes stops sidecars only after
		// the main containers have stopped.
		for _, c := range m.cs {
			if c.role != roleSidecar || c.out.Readiness != nil {
				continue
			}
			for _, p := range c.out.Ports {
				if p.Served && p.Protocol != "UDP" {
					c.out.Readiness = &service.Probe{TCPPort: p.ContainerPort}
					c.t.Warn(m.portField(c, p.ContainerPort), c.target+".readinessProbe.tcpSocket", fmt.Sprintf("a sidecar that serves port %d on the Service: the pod is ready once it accepts connections there too", p.ContainerPort))
					break
				}
			}
		}
	}

	// ECS gave each container stopTimeout between SIGTERM and SIGKILL;
	// the pod's grace period must cover the longest, plus the preStop
	// sleep, which Kubernetes counts inside the grace period.
	stop := int64(0)
	for _, c := range m.cs {
		if c.role == roleMain || c.role == roleSidecar {
			v, _ := c.def.StopTimeout.int()
			if !c.def.StopTimeout.set {
				v = defaultStopTimeout
			}
			stop = max(stop, v)
		}
	}
	if m.expose != nil {
		app.out.PreStopSleepSeconds = preStopSeconds
		stop += preStopSeconds
	}
	m.svc.TerminationGracePeriodSeconds = &stop
	m.reportPorts()
	m.place()
	return nil
}

// served reports whether a container of the pod declares port for the
// Service: a main container, or a sidecar whose port is Served. Its own
// readiness probe covers that port.
func (m *mapper) served(port int32) bool {
	for _, c := range m.cs {
		for _, p := range c.out.Ports {
			if p.ContainerPort == port && (c.role == roleMain || p.Served) {
				return true
			}
		}
	}
	return false
}

// portField is the field of c's port mapping for port, for a report row;
// "portMappings" when none is left to name.
func (m *mapper) portField(c *cinfo, port int32) string {
	for i, pm := range c.def.PortMappings {
		if v, _ := pm.ContainerPort.int(); v == int64(port) && !m.skip(c.t, fmt.Sprintf("portMappings[%d]", i)) {
			return fmt.Sprintf("portMappings[%d].containerPort", i)
		}
	}
	return "portMappings"
}
