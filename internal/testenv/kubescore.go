package testenv

import "sort"

// KubeScorePending are the kube-score CRITICAL checks the generated chart
// does not pass yet, with why. The convert end-to-end test allows them
// and lint's tests ignore them; every other CRITICAL fails. This list is
// the open work between the chart and kube-score's defaults: each entry
// is to be fixed in the chart, or kept as a deliberate policy with its
// reason written here. Delete an entry as soon as the chart passes it.
var KubeScorePending = map[string]string{
	"container-resources": "the chart sets no CPU limit (throttling; requests are the policy) " +
		"and no requests where the input named none (compose, systemd without limits)",
	"container-security-context-readonlyrootfilesystem": "set only where the input asked for it: " +
		"nothing says the application never writes to its root filesystem",
	"container-security-context-user-group-id": "a UID/GID above 10000 only where the input named one: " +
		"the image decides which user can run it",
	"pod-probes-identical": "an ECS/compose health check becomes both liveness and readiness",
}

// KubeScorePendingChecks returns the ids of KubeScorePending, sorted.
func KubeScorePendingChecks() []string {
	out := make([]string, 0, len(KubeScorePending))
	for id := range KubeScorePending {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
