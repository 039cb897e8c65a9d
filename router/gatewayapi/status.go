package gatewayapi

import (
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Status is what the route's parents (Gateways) say about it. The weights
// in the route's spec move traffic only once a Gateway controller has
// accepted the route and resolved its backendRefs, for the route's
// current generation; Status tells whether that happened.
type Status struct {
	// Route is "namespace/name".
	Route string
	// Generation is the route's metadata.generation; it grows with every
	// change of the spec, including each weight change.
	Generation int64
	// Parents has one entry per spec.parentRefs entry, in that order,
	// followed by status entries for parents the spec no longer names.
	Parents []ParentStatus
}

// ParentStatus is one parent's view of the route.
type ParentStatus struct {
	// Parent names the parentRef: "namespace/name", with "/section" when
	// the parentRef names a listener, and "kind " first when it is not a
	// Gateway.
	Parent string
	// Controller is the controller that wrote this status; "" when no
	// controller reported on this parent.
	Controller string
	// Accepted and ResolvedRefs are the route's conditions for this
	// parent; a zero Condition means the controller did not report it.
	Accepted, ResolvedRefs Condition
}

// Condition is one status condition of the route for one parent.
type Condition struct {
	// Status is "True", "False" or "Unknown"; "" means not reported.
	Status metav1.ConditionStatus
	// Reason and Message are the controller's explanation.
	Reason, Message string
	// ObservedGeneration is the route generation the controller looked at.
	ObservedGeneration int64
}

// Err returns nil when every parent accepted the route and resolved its
// references for the current generation, and otherwise one line that says
// which parent does not, and why.
func (s Status) Err() error {
	if len(s.Parents) == 0 {
		return fmt.Errorf("HTTPRoute %s has no parentRefs: no Gateway serves it, so its weights move no traffic", s.Route)
	}
	var probs []string
	for _, p := range s.Parents {
		if p.Controller == "" {
			probs = append(probs, fmt.Sprintf("no Gateway controller has reported on parent %s (status.parents has no entry for it): the route moves no traffic through it", p.Parent))
			continue
		}
		for _, c := range []struct {
			name string
			c    Condition
			what string
		}{{"Accepted", p.Accepted, "has not accepted the route"}, {"ResolvedRefs", p.ResolvedRefs, "cannot resolve the route's backendRefs"}} {
			switch {
			case c.c.Status == "":
				probs = append(probs, fmt.Sprintf("parent %s (controller %s) reports no %s condition", p.Parent, p.Controller, c.name))
			case c.c.Status != metav1.ConditionTrue:
				probs = append(probs, fmt.Sprintf("parent %s (controller %s) %s: %s=%s %s: %s", p.Parent, p.Controller, c.what, c.name, c.c.Status, c.c.Reason, oneLine(c.c.Message)))
			case c.c.ObservedGeneration != 0 && c.c.ObservedGeneration < s.Generation:
				probs = append(probs, fmt.Sprintf("parent %s (controller %s) has not yet seen generation %d of the route (its %s is for generation %d)", p.Parent, p.Controller, s.Generation, c.name, c.c.ObservedGeneration))
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return errors.New(strings.Join(probs, "; "))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// statusOf reads the status of a route.
func statusOf(rt *gatewayv1.HTTPRoute) Status {
	s := Status{Route: rt.Namespace + "/" + rt.Name, Generation: rt.Generation}
	used := make([]bool, len(rt.Status.Parents))
	for _, ref := range rt.Spec.ParentRefs {
		p := ParentStatus{Parent: parentName(ref, rt.Namespace)}
		// Several controllers may report on one parent (rarely); the
		// first one that does stands for it, the others are listed after.
		for i, ps := range rt.Status.Parents {
			if used[i] || !sameParent(ps.ParentRef, ref, rt.Namespace) {
				continue
			}
			used[i] = true
			fill(&p, ps)
			break
		}
		s.Parents = append(s.Parents, p)
	}
	for i, ps := range rt.Status.Parents {
		if used[i] {
			continue
		}
		p := ParentStatus{Parent: parentName(ps.ParentRef, rt.Namespace)}
		fill(&p, ps)
		s.Parents = append(s.Parents, p)
	}
	return s
}

func fill(p *ParentStatus, ps gatewayv1.RouteParentStatus) {
	p.Controller = string(ps.ControllerName)
	for _, c := range ps.Conditions {
		cond := Condition{Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: c.ObservedGeneration}
		switch c.Type {
		case string(gatewayv1.RouteConditionAccepted):
			p.Accepted = cond
		case string(gatewayv1.RouteConditionResolvedRefs):
			p.ResolvedRefs = cond
		}
	}
}

func parentName(r gatewayv1.ParentReference, routeNS string) string {
	ns := routeNS
	if r.Namespace != nil && *r.Namespace != "" {
		ns = string(*r.Namespace)
	}
	s := ns + "/" + string(r.Name)
	if r.SectionName != nil && *r.SectionName != "" {
		s += "/" + string(*r.SectionName)
	}
	if r.Port != nil {
		s += fmt.Sprintf(":%d", *r.Port)
	}
	if r.Kind != nil && *r.Kind != "" && *r.Kind != "Gateway" {
		s = string(*r.Kind) + " " + s
	}
	return s
}

func sameParent(a, b gatewayv1.ParentReference, routeNS string) bool {
	str := func(p *string, def string) string {
		if p == nil || *p == "" {
			return def
		}
		return *p
	}
	group := func(r gatewayv1.ParentReference) string {
		if r.Group == nil {
			return gatewayv1.GroupName
		}
		return string(*r.Group)
	}
	kind := func(r gatewayv1.ParentReference) string {
		if r.Kind == nil || *r.Kind == "" {
			return "Gateway"
		}
		return string(*r.Kind)
	}
	ns := func(r gatewayv1.ParentReference) string {
		if r.Namespace == nil {
			return routeNS
		}
		return str((*string)(r.Namespace), routeNS)
	}
	section := func(r gatewayv1.ParentReference) string { return str((*string)(r.SectionName), "") }
	port := func(r gatewayv1.ParentReference) int32 {
		if r.Port == nil {
			return 0
		}
		return int32(*r.Port)
	}
	return group(a) == group(b) && kind(a) == kind(b) && ns(a) == ns(b) && a.Name == b.Name && section(a) == section(b) && port(a) == port(b)
}
