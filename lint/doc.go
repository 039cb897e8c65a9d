// Package lint checks a cutover layout (the chart and values that
// `cutover convert` writes, as the user has since edited them) before it
// is deployed.
//
// It renders every service in every environment with the layout's own
// chart and reports two kinds of problems:
//
//   - best-practice failures in what would be deployed: kube-score's
//     CRITICAL and WARNING checks (with kube-score/ignore annotations
//     disabled, so output cannot silence itself), and cutover's own checks
//     that kube-score does not make: missing probes and resources, a fixed
//     replica count beside an HPA or KEDA ScaledObject, a PodDisruptionBudget
//     stricter than the autoscaler's minimum, unpinned images, a grace
//     period without a preStop hook, and `fill:` values still unfilled;
//   - drift: a value that differs between environments although base.yaml
//     does not list it under `environmentKeys:`. Environments are meant to
//     differ only where the team decided they may; anything else is a
//     change that was tested in one environment and not the other.
package lint
