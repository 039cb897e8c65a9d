package lint

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/zegl/kube-score/config"
	ks "github.com/zegl/kube-score/domain"
	"github.com/zegl/kube-score/parser"
	"github.com/zegl/kube-score/score"
	"github.com/zegl/kube-score/score/checks"
	"github.com/zegl/kube-score/scorecard"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// KubeScoreFinding is one kube-score check that an object failed.
type KubeScoreFinding struct {
	// Check is kube-score's check id ("container-image-tag").
	Check string `json:"check"`
	// Grade is "CRITICAL" or "WARNING".
	Grade string `json:"grade"`
	// Object is "Kind/name".
	Object string `json:"object"`
	// Message joins kube-score's comments: the path (container name)
	// first, then summary and description.
	Message string `json:"message"`
}

func (f KubeScoreFinding) String() string {
	return fmt.Sprintf("%s %s: %s: %s", f.Grade, f.Object, f.Check, f.Message)
}

// KubeScoreVersion is the Kubernetes version kube-score checks API
// versions against: the one cutover's output targets.
const KubeScoreVersion = "v1.33"

// KubeScore runs kube-score's default checks on a multi-document YAML
// stream and returns every CRITICAL and WARNING result, sorted. The
// kube-score/ignore annotations are disabled (as with
// --disable-ignore-checks-annotations): rendered output must not be able
// to silence its own findings. Kinds kube-score does not know (the CRDs)
// are skipped by kube-score itself.
func KubeScore(manifests []byte) ([]KubeScoreFinding, error) {
	ver, err := config.ParseSemver(KubeScoreVersion)
	if err != nil {
		return nil, err
	}
	run := &config.RunConfiguration{
		UseIgnoreChecksAnnotation:   false,
		UseOptionalChecksAnnotation: false,
		KubernetesVersion:           ver,
		MinReplicasDeployment:       2,
		MinReplicasHPA:              2,
	}
	p, err := parser.New(&parser.Config{})
	if err != nil {
		return nil, fmt.Errorf("kube-score: %w", err)
	}
	objs, err := p.ParseFiles([]ks.NamedReader{namedReader{bytes.NewReader(manifests), "rendered.yaml"}})
	if err != nil {
		return nil, fmt.Errorf("kube-score cannot parse the rendered output: %w", err)
	}
	card, err := score.Score(objs, score.RegisterAllChecks(objs, &checks.Config{}, run), run)
	if err != nil {
		return nil, fmt.Errorf("kube-score: %w", err)
	}
	scaled := scaledJobPolicies(manifests)
	var out []KubeScoreFinding
	for _, o := range *card {
		for _, c := range o.Checks {
			if c.Skipped || c.Grade > scorecard.GradeWarning {
				continue
			}
			if c.Check.ID == "networkpolicy-targets-pod" && o.TypeMeta.Kind == "NetworkPolicy" && scaled[o.ObjectMeta.Name] {
				// The policy selects the pods of a KEDA ScaledJob, which
				// kube-score does not know: they exist once KEDA
				// creates Jobs.
				continue
			}
			out = append(out, KubeScoreFinding{
				Check:   c.Check.ID,
				Grade:   c.Grade.String(),
				Object:  o.TypeMeta.Kind + "/" + o.ObjectMeta.Name,
				Message: commentText(c),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Message < b.Message
	})
	return out, nil
}

// scaledJobPolicies returns the names of the NetworkPolicies in the
// stream whose pod selector (not the empty one) matches the pod template
// of a KEDA ScaledJob in the same stream.
func scaledJobPolicies(manifests []byte) map[string]bool {
	out := map[string]bool{}
	o, err := decodeObjects(manifests)
	if err != nil {
		return out // what kube-score already reported
	}
	for _, p := range o.policies {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil || sel.Empty() {
			continue
		}
		for _, w := range o.workloads {
			if w.Kind == "ScaledJob" && sel.Matches(labels.Set(w.Template.Labels)) {
				out[p.Name] = true
			}
		}
	}
	return out
}

func commentText(ts scorecard.TestScore) string {
	var parts []string
	for _, c := range ts.Comments {
		s := c.Summary
		if c.Description != "" {
			s += ": " + c.Description
		}
		if c.Path != "" {
			s = "(" + c.Path + ") " + s
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ts.Check.Name
	}
	return strings.Join(parts, "; ")
}

type namedReader struct {
	io.Reader
	name string
}

func (r namedReader) Name() string { return r.name }
