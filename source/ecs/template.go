package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cutoverhq/cutover/source"
)

// Task definitions kept as templates (Terraform's templatefile and
// template_file, envsubst, Go templates) put variables where JSON wants a
// number or a list: "cpu": ${cpu}, "containerPort": {{ .Port }}. Such a
// file is not JSON until the template is rendered, but everything around
// the variables can be converted, and the variables become what the user
// fills in, as quoted placeholders do.

// quoteTemplates returns data with every template expression that stands
// outside a JSON string (${…}, $${…}, {{…}}) turned into a JSON string
// holding it, or nil when there is none or the result is still not JSON.
// Expressions never span lines, so every field keeps its line.
func quoteTemplates(data []byte) []byte {
	if !bytes.Contains(data, []byte("${")) && !bytes.Contains(data, []byte("{{")) {
		return nil
	}
	var out []byte
	changed := false
	inString := false
	for i := 0; i < len(data); i++ {
		b := data[i]
		if inString {
			out = append(out, b)
			switch b {
			case '\\':
				if i+1 < len(data) {
					i++
					out = append(out, data[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		if b == '"' {
			inString = true
			out = append(out, b)
			continue
		}
		if end := templateEnd(data, i); end > i {
			tok, _ := json.Marshal(string(data[i:end]))
			out = append(out, tok...)
			changed = true
			i = end - 1
			continue
		}
		out = append(out, b)
	}
	if !changed || !json.Valid(out) {
		return nil
	}
	return out
}

// templateEnd returns the end of the template expression that starts at
// data[i], or -1: "${…}" and "$${…}" up to the brace that closes the
// first, "{{…}}" up to the first "}}", none of them across a line.
func templateEnd(data []byte, i int) int {
	rest := data[i:]
	var open, close string
	switch {
	case bytes.HasPrefix(rest, []byte("$${")):
		open, close = "$${", "}"
	case bytes.HasPrefix(rest, []byte("${")):
		open, close = "${", "}"
	case bytes.HasPrefix(rest, []byte("{{")):
		open, close = "{{", "}}"
	default:
		return -1
	}
	depth := 0
	for j := len(open); j < len(rest); j++ {
		switch c := rest[j]; {
		case c == '\n' || c == '\r':
			return -1
		case close == "}}" && bytes.HasPrefix(rest[j:], []byte("}}")):
			return i + j + 2
		case close == "}" && c == '{':
			depth++
		case close == "}" && c == '}':
			if depth == 0 {
				return i + j + 1
			}
			depth--
		}
	}
	return -1
}

// templated reports whether a number field holds a template variable
// instead of a number.
func (n num) templated() bool { return n.set && hasPlaceholder(n.raw) }

// templatedNumbers reports the number fields the convert cannot know
// because they hold template variables, and takes them out of the input,
// so every later step sees them as not given: ECS's defaults, or the
// task's totals, apply, and the report says what to set by hand.
func (m *mapper) templatedNumbers() error {
	forget := func(t *source.Tracker, field string, n *num, what string) {
		if !n.templated() {
			return
		}
		t.Warn(field, "", fmt.Sprintf("%s is the template variable %s, which cutover cannot resolve: %s", field[strings.LastIndex(field, ".")+1:], n.raw, what))
		delete(m.present[t.Pos], source.JoinPath(t.Prefix, field))
		*n = num{}
	}
	td := m.td.td
	task := m.t
	forget(task, "cpu", &td.CPU, "the containers' own cpu, or the chart's defaults, apply; set resources by hand")
	forget(task, "memory", &td.Memory, "the containers' own memory, or the chart's defaults, apply; set resources by hand")
	for i := range td.ContainerDefinitions {
		d := &td.ContainerDefinitions[i]
		c := m.t.At(m.td.containerPath(i))
		forget(c, "cpu", &d.CPU, "left out; set the container's CPU request by hand")
		forget(c, "memory", &d.Memory, "left out; set the container's memory limit by hand")
		forget(c, "memoryReservation", &d.MemoryReservation, "left out; set the container's memory request by hand")
		forget(c, "stopTimeout", &d.StopTimeout, "ECS's default of 30 s applies")
		for j := range d.PortMappings {
			pm := &d.PortMappings[j]
			f := fmt.Sprintf("portMappings[%d]", j)
			if pm.ContainerPort.templated() {
				// The whole mapping describes a port that is not
				// carried over: one warning stands for all of it.
				c.Warn(f, "", fmt.Sprintf("containerPort is the template variable %s, which cutover cannot resolve: the port is NOT carried over; add it to the container's ports (and the Service) by hand", pm.ContainerPort.raw))
				*pm = portMapping{}
				continue
			}
			forget(c, f+".hostPort", &pm.HostPort, "each pod has its own IP, so no host port is needed")
		}
		if hc := d.HealthCheck; hc != nil {
			forget(c, "healthCheck.interval", &hc.Interval, "ECS's default of 30 s applies")
			forget(c, "healthCheck.timeout", &hc.Timeout, "ECS's default of 5 s applies")
			forget(c, "healthCheck.retries", &hc.Retries, "ECS's default of 3 applies")
			forget(c, "healthCheck.startPeriod", &hc.StartPeriod, "no start period applies; raise the startup probe's failureThreshold by hand if the app starts slowly")
		}
	}
	if m.sd != nil {
		forget(m.st, "desiredCount", &m.sd.s.DesiredCount, "the chart's default replica count applies")
	}
	return nil
}

// skeletonEntries leaves out the list entries of the ECS service that hold
// only zero values, as `aws ecs create-service --generate-cli-skeleton`
// prints them and users leave them: a load balancer with no container, a
// capacity provider with no name. Each is reported; the later steps skip
// the zeroed entry.
func (m *mapper) skeletonEntries() error {
	if m.sd == nil {
		return nil
	}
	s, t := m.sd.s, m.st
	blank := func(f string) bool { return m.blank[t.Pos][source.JoinPath(t.Prefix, f)] }
	const why = "an entry with only empty and zero values, as the CLI's skeleton prints it: it says nothing"
	for j := range s.LoadBalancers {
		if f := fmt.Sprintf("loadBalancers[%d]", j); blank(f) {
			t.Drop(f, why)
			s.LoadBalancers[j] = loadBalancer{}
		}
	}
	for j := range s.ServiceRegistries {
		if f := fmt.Sprintf("serviceRegistries[%d]", j); blank(f) {
			t.Drop(f, why)
			s.ServiceRegistries[j] = registry{}
		}
	}
	for j, vc := range s.VolumeConfigurations {
		if f := fmt.Sprintf("volumeConfigurations[%d]", j); strings.TrimSpace(vc.Name) == "" && m.has(t, f) {
			t.Drop(f, "configures no volume: it names none (an empty entry, as the CLI skeleton prints it)")
		}
	}
	for j := range s.CapacityProviderStrategy {
		if f := fmt.Sprintf("capacityProviderStrategy[%d]", j); blank(f) {
			t.Drop(f, why)
			s.CapacityProviderStrategy[j] = capacityItem{}
		}
	}
	return nil
}

// skeletonContainers does for the task definition what skeletonEntries does
// for the service: entries that name nothing (a dependency on no
// container, a port 0, a health check with an empty command, a tmpfs or a
// volume without a path or name), as `aws ecs register-task-definition
// --generate-cli-skeleton` prints them, are reported and skipped.
func (m *mapper) skeletonContainers() error {
	td := m.td.td
	skip := func(t *source.Tracker, f, why string) {
		t.Drop(f, why)
		if m.skipped == nil {
			m.skipped = map[string]bool{}
		}
		m.skipped[source.JoinPath(t.Prefix, f)] = true
	}
	for i := range td.ContainerDefinitions {
		d := &td.ContainerDefinitions[i]
		c := m.t.At(m.td.containerPath(i))
		for j, dep := range d.DependsOn {
			if strings.TrimSpace(dep.ContainerName) == "" && m.has(c, fmt.Sprintf("dependsOn[%d]", j)) {
				skip(c, fmt.Sprintf("dependsOn[%d]", j), "names no container to wait for (an empty entry, as the CLI skeleton prints it)")
			}
		}
		for j, pm := range d.PortMappings {
			if p, ok := pm.ContainerPort.int(); ok && pm.ContainerPort.set && p == 0 && strings.TrimSpace(pm.ContainerPortRange) == "" {
				skip(c, fmt.Sprintf("portMappings[%d]", j), "port 0 is no port (an empty entry, as the CLI skeleton prints it)")
			}
		}
		if hc := d.HealthCheck; hc != nil && strings.TrimSpace(strings.Join(hc.Command, "")) == "" && m.has(c, "healthCheck") {
			skip(c, "healthCheck", "a health check without a command checks nothing (as the CLI skeleton prints it)")
		}
		if lp := d.LinuxParameters; lp != nil {
			for j, tf := range lp.Tmpfs {
				if strings.TrimSpace(tf.ContainerPath) == "" {
					skip(c, fmt.Sprintf("linuxParameters.tmpfs[%d]", j), "a tmpfs mount without a path (an empty entry, as the CLI skeleton prints it)")
				}
			}
		}
	}
	for j, v := range td.Volumes {
		if f := fmt.Sprintf("volumes[%d]", j); strings.TrimSpace(v.Name) == "" && m.has(m.t, f) {
			skip(m.t, f, "a volume without a name, which no mount point can use (an empty entry, as the CLI skeleton prints it)")
		}
	}
	if es := td.EphemeralStorage; es != nil {
		if v, ok := es.SizeInGiB.int(); ok && es.SizeInGiB.set && v == 0 {
			skip(m.t, "ephemeralStorage", "0 GiB is no size (the CLI skeleton's placeholder): the node's default ephemeral storage applies")
		}
	}
	return nil
}

// skip reports whether skeletonContainers left out field under t.
func (m *mapper) skip(t *source.Tracker, field string) bool {
	return m.skipped[source.JoinPath(t.Prefix, field)]
}
