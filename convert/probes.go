package convert

import (
	"fmt"
	"reflect"

	"github.com/cutoverhq/cutover/service"
)

// separateProbes makes liveness and readiness differ where an importer
// derived both from one health check (ECS healthCheck, compose
// healthcheck). The two answer different questions: readiness "should this
// pod get traffic now?", liveness "is the process wedged beyond repair?".
// Using a deep health check for liveness restarts every pod at once when a
// shared dependency (the database) fails, which turns a partial outage into
// a total one. So the health check stays the readiness probe and liveness
// becomes a TCP check of the serving port; a container with no port serves
// no traffic and keeps the check as liveness only.
func separateProbes(s *service.Service) {
	file := ""
	if len(s.Origin.Files) > 0 {
		file = s.Origin.Files[0]
	}
	fix := func(c *service.Container) {
		if c.Liveness == nil || c.Readiness == nil || !sameHandler(c.Liveness, c.Readiness) {
			return
		}
		port := servingPort(s, c)
		if port == 0 {
			c.Readiness = nil
			s.Report.Warn(file, 0, "containers."+c.Name+".healthCheck", "livenessProbe",
				"the health check is the liveness probe only: the container serves no port, so no Service sends it traffic and a readiness probe would add nothing")
			return
		}
		live := *c.Liveness
		live.Exec, live.HTTPGet, live.TCPPort = nil, nil, port
		if live.FailureThreshold < 3 {
			live.FailureThreshold = 3
		}
		c.Liveness = &live
		s.Report.Warn(file, 0, "containers."+c.Name+".healthCheck", "readinessProbe; livenessProbe tcpSocket",
			fmt.Sprintf("the health check became the readiness probe, and liveness a TCP check of port %d: a failing dependency then takes pods out of rotation instead of restarting them all", port))
	}
	for i := range s.Containers {
		fix(&s.Containers[i])
	}
	for i := range s.Sidecars {
		fix(&s.Sidecars[i])
	}
}

func sameHandler(a, b *service.Probe) bool {
	return reflect.DeepEqual(a.Exec, b.Exec) && reflect.DeepEqual(a.HTTPGet, b.HTTPGet) && a.TCPPort == b.TCPPort
}

// servingPort returns the port a container serves traffic on: the exposed
// port for the main container, else its first TCP port; 0 when none.
func servingPort(s *service.Service, c *service.Container) int32 {
	if s.Expose != nil && s.Expose.Port != 0 && len(s.Containers) > 0 && c == &s.Containers[0] {
		return s.Expose.Port
	}
	for _, p := range c.Ports {
		if p.Protocol == "" || p.Protocol == "TCP" {
			return p.ContainerPort
		}
	}
	return 0
}
