package testenv

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// The converted output passes kube-score's CRITICAL checks, except where
// the input itself forces one: an image tagged latest (kept as given), a
// container the input ran privileged, with a writable root filesystem, or
// as a user or group id below 10000. The chart keeps what the input said
// and the report names the kube-score check beside the container; the
// tests allow exactly those findings, through KubeScoreForced.

// kubeScoreComment is one comment of a kube-score finding as
// lint.KubeScoreFinding.Message writes it: "(container) Summary: ...".
var kubeScoreComment = regexp.MustCompile(`\(([^()]+)\) ([^:;]+)`)

// KubeScoreForced returns nil when the input of svc forces every comment of
// one kube-score finding (check id and message as lint.KubeScore gives
// them), and svc's report names that check beside each container; else an
// error saying what the input does not explain.
func KubeScoreForced(svc *service.Service, check, message string) error {
	comments := kubeScoreComment.FindAllStringSubmatch(message, -1)
	if len(comments) == 0 {
		return fmt.Errorf("%s: the finding names no container, so the input cannot force it", check)
	}
	for _, m := range comments {
		name, summary := m[1], strings.ToLower(m[2])
		c := container(svc, name)
		if c == nil {
			return fmt.Errorf("%s: container %s is not in the service", check, name)
		}
		var forced bool
		switch check {
		case "container-image-tag":
			forced = c.Image != "" && service.UnpinnedImage(c.Image)
		case "container-security-context-privileged":
			forced = c.Privileged
		case "container-security-context-readonlyrootfilesystem":
			forced = strings.Contains(summary, "writable root filesystem") &&
				c.ReadOnlyRootFilesystem != nil && !*c.ReadOnlyRootFilesystem
		case "container-security-context-user-group-id":
			switch {
			case strings.Contains(summary, "low user id"):
				forced = c.RunAsUser != nil && *c.RunAsUser < 10000
			case strings.Contains(summary, "low group id"):
				forced = c.RunAsGroup != nil && *c.RunAsGroup < 10000
			}
		}
		if !forced {
			return fmt.Errorf("%s: %s: %s is not what the input asked for", check, name, m[2])
		}
		if !reportNames(svc, name, check) {
			return fmt.Errorf("%s: %s: the input forces it, but the report does not name the check beside the container", check, name)
		}
	}
	return nil
}

func container(svc *service.Service, name string) *service.Container {
	for _, list := range [][]service.Container{svc.Containers, svc.InitContainers, svc.Sidecars} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// reportNames reports whether a finding about the container (its name in
// the field path) names the kube-score check.
func reportNames(svc *service.Service, name, check string) bool {
	for _, f := range svc.Report.Findings {
		if strings.Contains(f.Message, check) && fieldNames(f.Field, name) {
			return true
		}
	}
	return false
}

// fieldNames reports whether a report field path is about the container:
// "containers[app].user", "containers.app.image".
func fieldNames(field, name string) bool {
	return strings.Contains(field, "["+name+"]") || strings.Contains(field, "."+name+".")
}
