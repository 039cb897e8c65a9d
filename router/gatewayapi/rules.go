package gatewayapi

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/cutoverhq/cutover/router"
)

// This file works on spec.rules as the API server returns it, untyped, so
// that a write carries back every field of every rule, including fields a
// newer Gateway API release added that this build's Go types do not know.
// The Gateway API CRDs make spec.rules and each rule's backendRefs atomic
// lists: server-side apply cannot own one weight inside them, only the
// whole list, so a weight change re-applies the whole list as it is now
// with only the weights changed.

// maxWeight is the largest backendRef weight the Gateway API CRD accepts.
const maxWeight = 1_000_000

// rulePick chooses which rules carry the weights.
type rulePick struct {
	// index selects rule index only; nil means "not by index".
	index *int
	// name selects the rule with this name (spec.rules[].name, in the
	// experimental channel); "" means "not by name".
	name string
}

func (p rulePick) String() string {
	switch {
	case p.index != nil:
		return fmt.Sprintf("rule %d", *p.index)
	case p.name != "":
		return fmt.Sprintf("rule %q", p.name)
	}
	return "every rule that references both sides"
}

// ruleSel is one rule whose weights cutover sets: the backendRef indexes
// of each side (in the order of the Refs) and of the others.
type ruleSel struct {
	index       int
	legacy, new []int
	others      []int
}

// selection locates the weights in spec.rules.
type selection struct {
	rules []ruleSel
}

// backendRefs returns rule i's backendRefs, or an error saying what is
// malformed (the route comes from a cluster, not from us: never trust its
// shape).
func backendRefs(rules []any, i int) ([]map[string]any, error) {
	rule, ok := rules[i].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("spec.rules[%d] is not an object", i)
	}
	raw, ok := rule["backendRefs"]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("spec.rules[%d].backendRefs is not a list", i)
	}
	out := make([]map[string]any, len(list))
	for j, b := range list {
		m, ok := b.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("spec.rules[%d].backendRefs[%d] is not an object", i, j)
		}
		out[j] = m
	}
	return out, nil
}

// matches reports whether backendRef b points at r; routeNS is the
// namespace a backendRef without one means.
func matches(b map[string]any, r Ref, routeNS string) bool {
	if g, _ := b["group"].(string); g != "" && g != "core" {
		return false
	}
	if k, ok := b["kind"].(string); ok && k != "Service" {
		return false
	}
	if n, _ := b["name"].(string); n != r.Name {
		return false
	}
	ns, _ := b["namespace"].(string)
	if ns == "" {
		ns = routeNS
	}
	want := r.Namespace
	if want == "" {
		want = routeNS
	}
	if ns != want {
		return false
	}
	if r.Port != 0 {
		p, ok, err := integer(b["port"])
		if !ok || err != nil || p != int64(r.Port) {
			return false
		}
	}
	return true
}

// describeRef names backendRef b for a message.
func describeRef(b map[string]any) string {
	name, _ := b["name"].(string)
	s := name
	if ns, _ := b["namespace"].(string); ns != "" {
		s += "." + ns
	}
	if p, ok, err := integer(b["port"]); ok && err == nil {
		s += fmt.Sprintf(":%d", p)
	}
	if k, _ := b["kind"].(string); k != "" && k != "Service" {
		s = k + " " + s
	}
	return s
}

// integer reads a JSON number: int64 from the API machinery's decoder,
// float64 from encoding/json.
func integer(v any) (n int64, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return x, true, nil
	case int:
		return int64(x), true, nil
	case int32:
		return int64(x), true, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, true, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), true, nil
	}
	return 0, true, fmt.Errorf("%v is not a number", v)
}

// weight is a backendRef's weight; Gateway API defaults a missing one
// to 1.
func weight(b map[string]any) (int64, error) {
	w, ok, err := integer(b["weight"])
	if err != nil {
		return 0, fmt.Errorf("weight: %w", err)
	}
	if !ok {
		return 1, nil
	}
	if w < 0 || w > maxWeight {
		return 0, fmt.Errorf("weight %d is outside 0..%d", w, maxWeight)
	}
	return w, nil
}

// selectRules finds the rules, and in them the backendRefs, that carry
// the weights. Without a pick, every rule that references both sides
// does: a route whose /pay and /refund rules both point at the service
// moves as a whole. A rule that references only one side is left alone
// (an /admin rule that stays on legacy), unless it references part of a
// side, which is a mistake in the plan or the route.
func selectRules(rules []any, routeNS string, legacy, newer []Ref, pick rulePick) (selection, error) {
	var sel selection
	if pick.index != nil && (*pick.index < 0 || *pick.index >= len(rules)) {
		return sel, fmt.Errorf("ruleIndex %d: the route has %d rule(s)", *pick.index, len(rules))
	}
	var partial, oneSide []string
	found := false
	for i := range rules {
		if pick.index != nil && i != *pick.index {
			continue
		}
		if pick.name != "" {
			rule, _ := rules[i].(map[string]any)
			if n, _ := rule["name"].(string); n != pick.name {
				continue
			}
		}
		found = true
		refs, err := backendRefs(rules, i)
		if err != nil {
			return sel, err
		}
		rs := ruleSel{index: i}
		var missing []string
		locate := func(side string, want []Ref) ([]int, error) {
			var idx []int
			for _, r := range want {
				at := -1
				for j, b := range refs {
					if !matches(b, r, routeNS) {
						continue
					}
					if at >= 0 {
						return nil, fmt.Errorf("spec.rules[%d]: backendRefs %d and %d both match %s backend %s: add the port to tell them apart", i, at, j, side, r)
					}
					at = j
				}
				if at < 0 {
					missing = append(missing, fmt.Sprintf("%s backendRef %s", side, r))
					continue
				}
				idx = append(idx, at)
			}
			return idx, nil
		}
		if rs.legacy, err = locate("legacy", legacy); err != nil {
			return sel, err
		}
		if rs.new, err = locate("new", newer); err != nil {
			return sel, err
		}
		if len(missing) > 0 {
			has := []string{}
			for _, b := range refs {
				has = append(has, describeRef(b))
			}
			msg := fmt.Sprintf("spec.rules[%d] lacks the %s (it has %s)", i, strings.Join(missing, " and the "), orNone(has))
			if pick.index == nil && pick.name == "" && (len(rs.legacy) == 0 || len(rs.new) == 0) {
				// A rule for one side only, or for something else: not
				// ours to move, but worth naming if no rule is.
				oneSide = append(oneSide, msg)
			} else {
				partial = append(partial, msg)
			}
			continue
		}
		mine := map[int]bool{}
		for _, j := range append(append([]int{}, rs.legacy...), rs.new...) {
			if mine[j] {
				return sel, fmt.Errorf("spec.rules[%d].backendRefs[%d] matches both a legacy and a new reference", i, j)
			}
			mine[j] = true
		}
		for j := range refs {
			if !mine[j] {
				rs.others = append(rs.others, j)
			}
		}
		sel.rules = append(sel.rules, rs)
	}
	if pick.name != "" && !found {
		var names []string
		for _, r := range rules {
			rule, _ := r.(map[string]any)
			if n, _ := rule["name"].(string); n != "" {
				names = append(names, n)
			}
		}
		return sel, fmt.Errorf("no rule named %q (named rules: %s)", pick.name, orNone(names))
	}
	if len(partial) > 0 {
		return sel, errors.New(strings.Join(partial, "; "))
	}
	if len(sel.rules) == 0 {
		msg := fmt.Sprintf("no rule references both the legacy backendRef %s and the new backendRef %s", joinRefs(legacy), joinRefs(newer))
		if len(oneSide) > 0 {
			msg += ": " + strings.Join(oneSide, "; ")
		}
		return sel, errors.New(msg)
	}
	return sel, nil
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func joinRefs(rs []Ref) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, " + ")
}

// sums returns the total weight of each side in one selected rule, after
// checking that no other backendRef of the rule takes traffic.
func sums(rules []any, rs ruleSel) (legacy, newer int64, err error) {
	refs, err := backendRefs(rules, rs.index)
	if err != nil {
		return 0, 0, err
	}
	for _, j := range rs.others {
		w, err := weight(refs[j])
		if err != nil {
			return 0, 0, fmt.Errorf("spec.rules[%d].backendRefs[%d]: %w", rs.index, j, err)
		}
		if w != 0 {
			return 0, 0, fmt.Errorf("spec.rules[%d] also sends traffic to %s (weight %d), which is neither side of the shift: set its weight to 0 or remove it", rs.index, describeRef(refs[j]), w)
		}
	}
	add := func(idx []int) (int64, error) {
		var sum int64
		for _, j := range idx {
			w, err := weight(refs[j])
			if err != nil {
				return 0, fmt.Errorf("spec.rules[%d].backendRefs[%d]: %w", rs.index, j, err)
			}
			sum += w
		}
		return sum, nil
	}
	if legacy, err = add(rs.legacy); err != nil {
		return 0, 0, err
	}
	if newer, err = add(rs.new); err != nil {
		return 0, 0, err
	}
	return legacy, newer, nil
}

// readWeights returns the split the selected rules make. Weights the
// route got from elsewhere (3:1, or 1:1 from defaults) are turned into
// percentages, rounded; selected rules that split differently are an
// error, since no one percentage describes them.
func readWeights(rules []any, sel selection) (router.Weights, error) {
	var out router.Weights
	for k, rs := range sel.rules {
		l, n, err := sums(rules, rs)
		if err != nil {
			return router.Weights{}, err
		}
		if l+n == 0 {
			return router.Weights{}, fmt.Errorf("spec.rules[%d]: every backendRef has weight 0, so the route answers 500", rs.index)
		}
		// Rounded in integers: float rounding differs at .5 across
		// platforms, and the sums stay far below 2^63/100.
		pct := int((200*n + l + n) / (2 * (l + n)))
		w := router.ForNew(pct)
		if k > 0 && w != out {
			return router.Weights{}, fmt.Errorf("the selected rules split differently: spec.rules[%d] %v, spec.rules[%d] %v", sel.rules[0].index, out, rs.index, w)
		}
		out = w
	}
	return out, nil
}

// targets returns the weight each backendRef of a side gets: every
// backendRef of a side gets an equal share of the side's percentage,
// scaled so that all weights stay integers (3 legacy refs and 2 new ones
// at 90/10: 90×2 each and 10×3 each).
func targets(w router.Weights, nLegacy, nNew int) (legacy, newer int64) {
	return int64(w.Legacy) * int64(nNew), int64(w.New) * int64(nLegacy)
}

// setWeights writes w into the selected rules and reports whether any
// weight changed. It refuses, changing nothing, when another backendRef
// of a selected rule takes traffic.
func setWeights(rules []any, sel selection, w router.Weights) (changed bool, err error) {
	// Check every rule before changing any, so that a refusal leaves
	// the rules as they were.
	for _, rs := range sel.rules {
		if _, _, err := sums(rules, rs); err != nil {
			return false, err
		}
		if lw, nw := targets(w, len(rs.legacy), len(rs.new)); lw > maxWeight || nw > maxWeight {
			return false, fmt.Errorf("spec.rules[%d]: %d backendRefs per side need weights above %d", rs.index, max(len(rs.legacy), len(rs.new)), maxWeight)
		}
	}
	for _, rs := range sel.rules {
		refs, _ := backendRefs(rules, rs.index)
		lw, nw := targets(w, len(rs.legacy), len(rs.new))
		for _, j := range rs.legacy {
			changed = put(refs[j], lw) || changed
		}
		for _, j := range rs.new {
			changed = put(refs[j], nw) || changed
		}
	}
	return changed, nil
}

// put sets one weight; a missing weight that defaults to the same value
// counts as unchanged, since traffic is the same.
func put(b map[string]any, w int64) bool {
	if cur, err := weight(b); err == nil && cur == w {
		return false
	}
	b["weight"] = w
	return true
}
