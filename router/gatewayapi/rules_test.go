package gatewayapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/router"
)

// rulesCase is one testdata/rules/<case>/case.yaml: a route, the plan's
// references, and the new side's percentage to set.
type rulesCase struct {
	Legacy    []string `json:"legacy"`
	New       []string `json:"new"`
	RuleIndex *int     `json:"ruleIndex"`
	RuleName  string   `json:"ruleName"`
	Set       int      `json:"set"`
	Route     struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec struct {
			ParentRefs any `json:"parentRefs"`
			Rules      any `json:"rules"`
		} `json:"spec"`
	} `json:"route"`
}

// rulesResult is what want.yaml holds: the split read before, the outcome
// of setting, the split read after, and the rules as they would be applied.
type rulesResult struct {
	Before  string `json:"before"`
	Set     string `json:"set"`
	Changed bool   `json:"changed"`
	After   string `json:"after,omitempty"`
	Rules   any    `json:"rules,omitempty"`
}

func TestRules(t *testing.T) {
	dirs, err := filepath.Glob("testdata/rules/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var c rulesCase
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join(dir, "want.yaml"), runRulesCase(t, c))
		})
	}
}

func runRulesCase(t *testing.T, c rulesCase) []byte {
	t.Helper()
	legacy, err := parseRefs("legacy", c.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := parseRefs("new", c.New)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := c.Route.Spec.Rules.([]any)
	pick := rulePick{index: c.RuleIndex, name: c.RuleName}
	ns := c.Route.Metadata.Namespace
	var res rulesResult
	res.Before = show(func() (router.Weights, error) {
		sel, err := selectRules(rules, ns, legacy, newer, pick)
		if err != nil {
			return router.Weights{}, err
		}
		return readWeights(rules, sel)
	})
	w := router.ForNew(c.Set)
	sel, err := selectRules(rules, ns, legacy, newer, pick)
	if err == nil {
		res.Changed, err = setWeights(rules, sel, w)
	}
	if err != nil {
		res.Set = "error: " + err.Error()
		// A refused change leaves the rules as they were.
		var orig rulesCase
		_ = yaml.Unmarshal(mustJSON(t, c), &orig)
		if string(mustJSON(t, rules)) != string(mustJSON(t, orig.Route.Spec.Rules)) {
			t.Errorf("a refused change altered the rules")
		}
	} else {
		res.Set = w.String()
		res.After = show(func() (router.Weights, error) { return readWeights(rules, sel) })
		if res.After != w.String() {
			t.Errorf("set %v, read back %s", w, res.After)
		}
		if again, err := setWeights(rules, sel, w); err != nil || again {
			t.Errorf("setting %v a second time: changed=%v err=%v", w, again, err)
		}
		res.Rules = rules
	}
	out, err := yaml.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func show(f func() (router.Weights, error)) string {
	w, err := f()
	if err != nil {
		return "error: " + err.Error()
	}
	return w.String()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRules feeds arbitrary spec.rules to the code that reads and writes
// weights: it must never panic, and whatever it sets it reads back.
func FuzzRules(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/rules/*")
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		var c rulesCase
		if err := yaml.Unmarshal(data, &c); err != nil {
			f.Fatal(err)
		}
		rules, _ := json.Marshal(c.Route.Spec.Rules)
		f.Add(rules, uint8(c.Set), int8(-1))
	}
	legacy := []Ref{{Name: "payments-legacy", Port: 8080}, {Name: "payments-vm1"}}
	newer := []Ref{{Name: "payments"}}
	f.Fuzz(func(t *testing.T, data []byte, pct uint8, index int8) {
		var rules []any
		if json.Unmarshal(data, &rules) != nil {
			return
		}
		w := router.ForNew(int(pct) % 101)
		var pick rulePick
		if index >= 0 {
			i := int(index)
			pick.index = &i
		}
		for _, l := range [][]Ref{legacy[:1], legacy} {
			sel, err := selectRules(rules, "payments-prod", l, newer, pick)
			if err != nil {
				continue
			}
			_, _ = readWeights(rules, sel)
			if _, err := setWeights(rules, sel, w); err != nil {
				continue
			}
			got, err := readWeights(rules, sel)
			if err != nil || got != w {
				t.Fatalf("set %v, read back %v, %v (rules %s)", w, got, err, data)
			}
		}
	})
}
