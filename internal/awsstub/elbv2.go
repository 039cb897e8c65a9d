package awsstub

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// elbXMLNS is the namespace of every ELBv2 answer.
const elbXMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// LoadBalancer is an Application Load Balancer in the stub.
type LoadBalancer struct {
	Arn, Name, VpcID string
}

// TargetGroup is a target group in the stub.
type TargetGroup struct {
	Arn, Name string
	// TargetType is "ip", "instance", "lambda" or "alb".
	TargetType string
	VpcID      string
}

// TargetWeight is one target group of a forward action.
type TargetWeight struct {
	Arn    string
	Weight int
}

// Stickiness is a forward action's target group stickiness.
type Stickiness struct {
	Enabled bool
	// DurationSeconds is 1..604800 when Enabled.
	DurationSeconds int
}

// Forward is a forward action's configuration.
type Forward struct {
	TargetGroups []TargetWeight
	Stickiness   Stickiness
}

// OIDC is the part of an authenticate-oidc action the stub keeps. The
// client secret is write-only, as in AWS: answers never carry it, and a
// modification must send it again or say UseExistingClientSecret.
type OIDC struct {
	Issuer, AuthorizationEndpoint, TokenEndpoint, UserInfoEndpoint, ClientID string
	ClientSecret                                                             string
}

// Action is one action of a rule or of a listener's default actions.
type Action struct {
	// Type is "forward" or "authenticate-oidc" (the stub knows no others).
	Type string
	// Order is 1..50000; zero means unset (AWS then orders by position).
	Order int
	// TargetGroupArn is the single target group of a simple forward.
	TargetGroupArn string
	Forward        *Forward
	OIDC           *OIDC
}

// ForwardTo is a forward action to the given target groups.
func ForwardTo(tgs ...TargetWeight) Action {
	return Action{Type: "forward", Forward: &Forward{TargetGroups: tgs}}
}

// Condition is a rule condition (path-pattern, host-header, …).
type Condition struct {
	Field  string
	Values []string
}

type listener struct {
	arn, lb  string
	port     int
	protocol string
	actions  []Action
}

type rule struct {
	arn, listener string
	priority      string
	conditions    []Condition
	actions       []Action
}

type elbState struct {
	lbs       map[string]*LoadBalancer
	tgs       map[string]*TargetGroup
	listeners map[string]*listener
	rules     map[string]*rule
	// order keeps creation order for stable answers.
	order    []string
	pageSize int
}

func (e *elbState) init() {
	e.lbs = map[string]*LoadBalancer{}
	e.tgs = map[string]*TargetGroup{}
	e.listeners = map[string]*listener{}
	e.rules = map[string]*rule{}
}

func (s *Server) arn(resource string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:%s", s.Region, s.Account, resource)
}

// AddLoadBalancer creates an application load balancer and returns its ARN.
func (s *Server) AddLoadBalancer(name, vpc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn := s.arn("loadbalancer/app/" + name + "/" + randomHex(16))
	s.elb.lbs[arn] = &LoadBalancer{Arn: arn, Name: name, VpcID: vpc}
	s.elb.order = append(s.elb.order, arn)
	return arn
}

// AddTargetGroup creates a target group and returns its ARN.
func (s *Server) AddTargetGroup(name, targetType, vpc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn := s.arn("targetgroup/" + name + "/" + randomHex(16))
	s.elb.tgs[arn] = &TargetGroup{Arn: arn, Name: name, TargetType: targetType, VpcID: vpc}
	s.elb.order = append(s.elb.order, arn)
	return arn
}

// AddListener creates an HTTP listener on the load balancer and returns its
// ARN. It panics on a bad fixture.
func (s *Server) AddListener(lbArn string, port int, defaults ...Action) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb := s.elb.lbs[lbArn]
	if lb == nil {
		panic("awsstub: no load balancer " + lbArn)
	}
	arn := s.arn("listener/" + strings.TrimPrefix(lbResource(lbArn), "loadbalancer/") + "/" + randomHex(16))
	if err := s.elb.checkActions(lbArn, defaults); err != nil {
		panic("awsstub: " + err.Error())
	}
	s.elb.listeners[arn] = &listener{arn: arn, lb: lbArn, port: port, protocol: "HTTP", actions: cloneActions(defaults)}
	s.elb.order = append(s.elb.order, arn)
	return arn
}

// AddRule creates a rule on the listener with a path-pattern condition and
// returns its ARN. It panics on a bad fixture.
func (s *Server) AddRule(listenerArn string, priority int, pathPattern string, actions ...Action) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.elb.listeners[listenerArn]
	if l == nil {
		panic("awsstub: no listener " + listenerArn)
	}
	if err := s.elb.checkActions(l.lb, actions); err != nil {
		panic("awsstub: " + err.Error())
	}
	arn := s.arn("listener-rule/" + strings.TrimPrefix(lbResource(listenerArn), "listener/") + "/" + randomHex(16))
	s.elb.rules[arn] = &rule{arn: arn, listener: listenerArn, priority: strconv.Itoa(priority),
		conditions: []Condition{{Field: "path-pattern", Values: []string{pathPattern}}}, actions: cloneActions(actions)}
	s.elb.order = append(s.elb.order, arn)
	return arn
}

// SetActions replaces the actions of a rule, or the default actions of a
// listener, as an operator in the console would.
func (s *Server) SetActions(arn string, actions ...Action) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.elb.rules[arn]; r != nil {
		if err := s.elb.checkActions(s.elb.listeners[r.listener].lb, actions); err != nil {
			return err
		}
		r.actions = cloneActions(actions)
		return nil
	}
	if l := s.elb.listeners[arn]; l != nil {
		if err := s.elb.checkActions(l.lb, actions); err != nil {
			return err
		}
		l.actions = cloneActions(actions)
		return nil
	}
	return fmt.Errorf("no rule or listener %s", arn)
}

// Actions returns a copy of the actions of a rule or the default actions
// of a listener; nil when arn names neither.
func (s *Server) Actions(arn string) []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.elb.rules[arn]; r != nil {
		return cloneActions(r.actions)
	}
	if l := s.elb.listeners[arn]; l != nil {
		return cloneActions(l.actions)
	}
	return nil
}

// Weights returns the weight of each target group in the forward action of
// a rule or of a listener's default actions.
func (s *Server) Weights(arn string) map[string]int {
	out := map[string]int{}
	for _, a := range s.Actions(arn) {
		if a.Type != "forward" {
			continue
		}
		if a.Forward == nil {
			out[a.TargetGroupArn] = 1
			continue
		}
		for _, tg := range a.Forward.TargetGroups {
			out[tg.Arn] = tg.Weight
		}
	}
	return out
}

// SetPageSize makes Describe* calls answer at most n items per page (and a
// NextMarker), whatever the client asks; zero means the client's page size.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elb.pageSize = n
}

func lbResource(arn string) string {
	if i := strings.LastIndex(arn, ":"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func cloneActions(in []Action) []Action {
	if in == nil {
		return nil
	}
	out := make([]Action, len(in))
	for i, a := range in {
		out[i] = a
		if a.Forward != nil {
			f := *a.Forward
			f.TargetGroups = append([]TargetWeight(nil), a.Forward.TargetGroups...)
			out[i].Forward = &f
		}
		if a.OIDC != nil {
			o := *a.OIDC
			out[i].OIDC = &o
		}
	}
	return out
}

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// tgLoadBalancers returns the load balancers whose listeners or rules
// forward to the target group.
func (e *elbState) tgLoadBalancers(tg string) []string {
	seen := map[string]bool{}
	uses := func(actions []Action) bool {
		for _, a := range actions {
			if a.TargetGroupArn == tg {
				return true
			}
			if a.Forward != nil {
				for _, w := range a.Forward.TargetGroups {
					if w.Arn == tg {
						return true
					}
				}
			}
		}
		return false
	}
	for _, l := range e.listeners {
		if uses(l.actions) {
			seen[l.lb] = true
		}
	}
	for _, r := range e.rules {
		if uses(r.actions) {
			seen[e.listeners[r.listener].lb] = true
		}
	}
	var out []string
	for lb := range seen {
		out = append(out, lb)
	}
	sort.Strings(out)
	return out
}

// checkActions validates actions for a rule or listener on load balancer
// lb, as AWS does; an authenticate-oidc action must carry its secret (or,
// in a modification, reuse the existing one: keepSecrets).
func (e *elbState) checkActions(lb string, actions []Action) *apiError {
	if len(actions) == 0 {
		return errf("ValidationError", "at least one action is required")
	}
	forwards := 0
	for i, a := range actions {
		switch a.Type {
		case "forward":
			forwards++
			if i != len(actions)-1 {
				return errf("InvalidLoadBalancerAction", "a forward action must be the last action")
			}
			var arns []string
			if a.Forward != nil {
				if len(a.Forward.TargetGroups) == 0 {
					return errf("ValidationError", "ForwardConfig needs at least one target group")
				}
				if len(a.Forward.TargetGroups) > 5 {
					return errf("TooManyTargetGroups", "a forward action takes at most 5 target groups")
				}
				if a.TargetGroupArn != "" && (len(a.Forward.TargetGroups) != 1 || a.Forward.TargetGroups[0].Arn != a.TargetGroupArn) {
					return errf("ValidationError", "with both TargetGroupArn and ForwardConfig, ForwardConfig must name only that target group")
				}
				dup := map[string]bool{}
				for _, w := range a.Forward.TargetGroups {
					if w.Weight < 0 || w.Weight > 999 {
						return errf("ValidationError", "target group weight %d is outside 0..999", w.Weight)
					}
					if dup[w.Arn] {
						return errf("ValidationError", "target group %s is named twice", w.Arn)
					}
					dup[w.Arn] = true
					arns = append(arns, w.Arn)
				}
				if st := a.Forward.Stickiness; st.Enabled && (st.DurationSeconds < 1 || st.DurationSeconds > 604800) {
					return errf("ValidationError", "stickiness duration %d is outside 1..604800 seconds", st.DurationSeconds)
				}
			} else {
				if a.TargetGroupArn == "" {
					return errf("ValidationError", "a forward action needs TargetGroupArn or ForwardConfig")
				}
				arns = []string{a.TargetGroupArn}
			}
			for _, arn := range arns {
				tg := e.tgs[arn]
				if tg == nil {
					return errf("TargetGroupNotFound", "Target groups '%s' not found", arn)
				}
				if lbRec := e.lbs[lb]; lbRec != nil && tg.VpcID != lbRec.VpcID {
					return errf("ValidationError", "target group '%s' is in VPC %s, the load balancer in %s", arn, tg.VpcID, lbRec.VpcID)
				}
				for _, other := range e.tgLoadBalancers(arn) {
					if other != lb {
						return errf("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", arn)
					}
				}
			}
		case "authenticate-oidc":
			if a.OIDC == nil || a.OIDC.Issuer == "" || a.OIDC.ClientID == "" {
				return errf("ValidationError", "authenticate-oidc needs AuthenticateOidcConfig with Issuer and ClientId")
			}
			if a.OIDC.ClientSecret == "" {
				return errf("ValidationError", "You must specify a client secret for an OIDC authentication action, or set UseExistingClientSecret")
			}
		default:
			return errf("ValidationError", "the stub knows no action type %q", a.Type)
		}
	}
	if forwards == 0 {
		return errf("ValidationError", "the stub needs a forward action as the last action")
	}
	return nil
}

// --- the Query protocol ---

// qnode is one level of a Query-protocol parameter tree
// ("Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight").
type qnode struct {
	val  string
	set  bool
	kids map[string]*qnode
}

func parseQuery(form url.Values) *qnode {
	root := &qnode{}
	for k, vs := range form {
		n := root
		for _, part := range strings.Split(k, ".") {
			if n.kids == nil {
				n.kids = map[string]*qnode{}
			}
			c := n.kids[part]
			if c == nil {
				c = &qnode{}
				n.kids[part] = c
			}
			n = c
		}
		if len(vs) > 0 {
			n.val, n.set = vs[0], true
		}
	}
	return root
}

func (n *qnode) get(path ...string) *qnode {
	for _, p := range path {
		if n == nil || n.kids == nil {
			return nil
		}
		n = n.kids[p]
	}
	return n
}

func (n *qnode) str(path ...string) string {
	if c := n.get(path...); c != nil {
		return c.val
	}
	return ""
}

// members returns the list under "<name>.member.N", in order of N.
func (n *qnode) members(name string) []*qnode {
	m := n.get(name, "member")
	if m == nil {
		return nil
	}
	var out []*qnode
	for i := 1; ; i++ {
		c := m.kids[strconv.Itoa(i)]
		if c == nil {
			return out
		}
		out = append(out, c)
	}
}

func (n *qnode) strings(name string) []string {
	var out []string
	for _, m := range n.members(name) {
		out = append(out, m.val)
	}
	return out
}

func (n *qnode) int(path ...string) (int, bool, error) {
	c := n.get(path...)
	if c == nil || !c.set {
		return 0, false, nil
	}
	v, err := strconv.Atoi(c.val)
	if err != nil {
		return 0, true, errf("ValidationError", "%s: %q is not an integer", strings.Join(path, "."), c.val)
	}
	return v, true, nil
}

func parseActions(n *qnode, name string) ([]Action, *apiError) {
	var out []Action
	for i, m := range n.members(name) {
		a := Action{Type: m.str("Type"), TargetGroupArn: m.str("TargetGroupArn")}
		var err error
		bad := func(e error) *apiError {
			if ae, ok := e.(*apiError); ok {
				return ae
			}
			return errf("ValidationError", "%s.member.%d: %v", name, i+1, e)
		}
		if a.Order, _, err = m.int("Order"); err != nil {
			return nil, bad(err)
		}
		if fc := m.get("ForwardConfig"); fc != nil {
			f := &Forward{}
			for j, tg := range fc.members("TargetGroups") {
				w, ok, err := tg.int("Weight")
				if err != nil {
					return nil, bad(err)
				}
				if !ok {
					w = 1 // AWS's default weight
				}
				if tg.str("TargetGroupArn") == "" {
					return nil, errf("ValidationError", "%s.member.%d.ForwardConfig.TargetGroups.member.%d: TargetGroupArn is required", name, i+1, j+1)
				}
				f.TargetGroups = append(f.TargetGroups, TargetWeight{Arn: tg.str("TargetGroupArn"), Weight: w})
			}
			if sc := fc.get("TargetGroupStickinessConfig"); sc != nil {
				f.Stickiness.Enabled = sc.str("Enabled") == "true"
				if f.Stickiness.DurationSeconds, _, err = sc.int("DurationSeconds"); err != nil {
					return nil, bad(err)
				}
			}
			a.Forward = f
		}
		if oc := m.get("AuthenticateOidcConfig"); oc != nil {
			a.OIDC = &OIDC{
				Issuer: oc.str("Issuer"), AuthorizationEndpoint: oc.str("AuthorizationEndpoint"),
				TokenEndpoint: oc.str("TokenEndpoint"), UserInfoEndpoint: oc.str("UserInfoEndpoint"),
				ClientID: oc.str("ClientId"), ClientSecret: oc.str("ClientSecret"),
			}
			if oc.str("UseExistingClientSecret") == "true" {
				a.OIDC.ClientSecret = useExisting
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// useExisting marks an OIDC secret to take from the action being replaced.
const useExisting = "\x00use-existing"

// keepSecrets fills in OIDC secrets the client asked to keep.
func keepSecrets(old, updated []Action) *apiError {
	for i := range updated {
		o := updated[i].OIDC
		if o == nil || o.ClientSecret != useExisting {
			continue
		}
		o.ClientSecret = ""
		for _, prev := range old {
			if prev.OIDC != nil && prev.OIDC.ClientID == o.ClientID {
				o.ClientSecret = prev.OIDC.ClientSecret
			}
		}
		if o.ClientSecret == "" {
			return errf("ValidationError", "UseExistingClientSecret: there is no existing client secret for client %q", o.ClientID)
		}
	}
	return nil
}

// --- XML answers ---

type members[T any] struct {
	Member []T `xml:"member"`
}

type xmlTargetWeight struct {
	TargetGroupArn string `xml:"TargetGroupArn"`
	Weight         int    `xml:"Weight"`
}

type xmlStickiness struct {
	Enabled         bool `xml:"Enabled"`
	DurationSeconds *int `xml:"DurationSeconds,omitempty"`
}

type xmlForward struct {
	TargetGroups members[xmlTargetWeight] `xml:"TargetGroups"`
	Stickiness   xmlStickiness            `xml:"TargetGroupStickinessConfig"`
}

type xmlOIDC struct {
	Issuer                string `xml:"Issuer"`
	AuthorizationEndpoint string `xml:"AuthorizationEndpoint"`
	TokenEndpoint         string `xml:"TokenEndpoint"`
	UserInfoEndpoint      string `xml:"UserInfoEndpoint"`
	ClientID              string `xml:"ClientId"`
}

type xmlAction struct {
	Type           string      `xml:"Type"`
	Order          *int        `xml:"Order,omitempty"`
	TargetGroupArn string      `xml:"TargetGroupArn,omitempty"`
	Forward        *xmlForward `xml:"ForwardConfig,omitempty"`
	OIDC           *xmlOIDC    `xml:"AuthenticateOidcConfig,omitempty"`
}

func xmlActions(in []Action) members[xmlAction] {
	var out members[xmlAction]
	for i, a := range in {
		x := xmlAction{Type: a.Type, TargetGroupArn: a.TargetGroupArn}
		// AWS answers with the order it assigned: the position when unset.
		order := a.Order
		if order == 0 {
			order = i + 1
		}
		x.Order = &order
		if a.Type == "forward" {
			f := &xmlForward{}
			if a.Forward != nil {
				for _, w := range a.Forward.TargetGroups {
					f.TargetGroups.Member = append(f.TargetGroups.Member, xmlTargetWeight{w.Arn, w.Weight})
				}
				f.Stickiness.Enabled = a.Forward.Stickiness.Enabled
				if a.Forward.Stickiness.Enabled {
					d := a.Forward.Stickiness.DurationSeconds
					f.Stickiness.DurationSeconds = &d
				}
			} else {
				// A simple forward reads back as a forward config with one
				// target group of weight 1, as AWS answers it.
				f.TargetGroups.Member = []xmlTargetWeight{{a.TargetGroupArn, 1}}
			}
			x.Forward = f
		}
		if a.OIDC != nil {
			x.OIDC = &xmlOIDC{a.OIDC.Issuer, a.OIDC.AuthorizationEndpoint, a.OIDC.TokenEndpoint, a.OIDC.UserInfoEndpoint, a.OIDC.ClientID}
		}
		out.Member = append(out.Member, x)
	}
	return out
}

type xmlCondition struct {
	Field  string          `xml:"Field"`
	Values members[string] `xml:"Values"`
}

type xmlRule struct {
	RuleArn    string                `xml:"RuleArn"`
	Priority   string                `xml:"Priority"`
	IsDefault  bool                  `xml:"IsDefault"`
	Conditions members[xmlCondition] `xml:"Conditions"`
	Actions    members[xmlAction]    `xml:"Actions"`
}

func (r *rule) xml() xmlRule {
	x := xmlRule{RuleArn: r.arn, Priority: r.priority, Actions: xmlActions(r.actions)}
	for _, c := range r.conditions {
		x.Conditions.Member = append(x.Conditions.Member, xmlCondition{Field: c.Field, Values: members[string]{Member: c.Values}})
	}
	return x
}

type xmlListener struct {
	ListenerArn     string             `xml:"ListenerArn"`
	LoadBalancerArn string             `xml:"LoadBalancerArn"`
	Port            int                `xml:"Port"`
	Protocol        string             `xml:"Protocol"`
	DefaultActions  members[xmlAction] `xml:"DefaultActions"`
}

func (l *listener) xml() xmlListener {
	return xmlListener{l.arn, l.lb, l.port, l.protocol, xmlActions(l.actions)}
}

type xmlTargetGroup struct {
	TargetGroupArn   string          `xml:"TargetGroupArn"`
	TargetGroupName  string          `xml:"TargetGroupName"`
	Protocol         string          `xml:"Protocol"`
	Port             int             `xml:"Port"`
	VpcID            string          `xml:"VpcId"`
	TargetType       string          `xml:"TargetType"`
	LoadBalancerArns members[string] `xml:"LoadBalancerArns"`
}

type xmlLoadBalancer struct {
	LoadBalancerArn  string `xml:"LoadBalancerArn"`
	LoadBalancerName string `xml:"LoadBalancerName"`
	VpcID            string `xml:"VpcId"`
	Type             string `xml:"Type"`
	Scheme           string `xml:"Scheme"`
	State            struct {
		Code string `xml:"Code"`
	} `xml:"State"`
}

type xmlResult struct {
	Rules         *members[xmlRule]         `xml:"Rules,omitempty"`
	Listeners     *members[xmlListener]     `xml:"Listeners,omitempty"`
	TargetGroups  *members[xmlTargetGroup]  `xml:"TargetGroups,omitempty"`
	LoadBalancers *members[xmlLoadBalancer] `xml:"LoadBalancers,omitempty"`
	NextMarker    string                    `xml:"NextMarker,omitempty"`
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func writeELBError(w http.ResponseWriter, e *apiError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	writeXML(w, e.status, struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		XMLNS   string   `xml:"xmlns,attr"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}{XMLNS: elbXMLNS, Error: struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}{typ, e.code, e.message}, RequestID: requestID()})
}

func writeELBResult(w http.ResponseWriter, action string, res xmlResult) {
	type result struct {
		XMLName  xml.Name
		XMLNS    string `xml:"xmlns,attr"`
		Inner    any
		Metadata struct {
			RequestID string `xml:"RequestId"`
		} `xml:"ResponseMetadata"`
	}
	// encoding/xml cannot name an element at run time through a field, so
	// the result element is built with its own XMLName.
	inner := struct {
		XMLName xml.Name
		xmlResult
	}{XMLName: xml.Name{Local: action + "Result"}, xmlResult: res}
	out := result{XMLName: xml.Name{Local: action + "Response"}, XMLNS: elbXMLNS, Inner: inner}
	out.Metadata.RequestID = requestID()
	writeXML(w, http.StatusOK, out)
}

// page cuts items at marker (an index) to the page size.
func page[T any](items []T, marker string, asked, forced int) ([]T, string, *apiError) {
	start := 0
	if marker != "" {
		n, err := strconv.Atoi(marker)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", errf("ValidationError", "invalid Marker %q", marker)
		}
		start = n
	}
	size := asked
	if forced > 0 && (size == 0 || forced < size) {
		size = forced
	}
	if size <= 0 {
		size = 400
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[start:end], next, nil
}

func (s *Server) serveELB(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeELBError(w, errf("MalformedQueryString", "%v", err))
		return
	}
	action := form.Get("Action")
	if form.Get("Version") != "2015-12-01" {
		writeELBError(w, errf("InvalidAction", "unknown or missing Version %q", form.Get("Version")))
		return
	}
	n, e, ok := s.gate(r, "elasticloadbalancing", action)
	if !ok {
		return
	}
	if e != nil {
		writeELBError(w, e)
		return
	}
	q := parseQuery(form)
	res, applied, aerr := s.elbAction(action, q)
	if aerr != nil {
		s.noteError(aerr.code)
		writeELBError(w, aerr)
		return
	}
	if applied {
		if h := s.hook(action); h != nil {
			switch h(action, n) {
			case Drop:
				s.noteError("dropped")
				hijackClose(w)
				return
			case Fail:
				s.noteError("InternalFailure")
				writeELBError(w, &apiError{status: http.StatusInternalServerError, code: "InternalFailure", message: "an internal error occurred after the change was applied"})
				return
			}
		}
	}
	writeELBResult(w, action, res)
}

// elbAction runs one API action under the lock; applied is true when it
// changed state.
func (s *Server) elbAction(action string, q *qnode) (xmlResult, bool, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.elb
	pageSize, _, err := q.int("PageSize")
	if err != nil {
		return xmlResult{}, false, err.(*apiError)
	}
	switch action {
	case "DescribeLoadBalancers":
		var out []xmlLoadBalancer
		want := q.strings("LoadBalancerArns")
		for _, arn := range e.selected(want, func(a string) bool { return e.lbs[a] != nil }) {
			lb := e.lbs[arn]
			if lb == nil {
				return xmlResult{}, false, errf("LoadBalancerNotFound", "Load balancers '[%s]' not found", arn)
			}
			x := xmlLoadBalancer{LoadBalancerArn: lb.Arn, LoadBalancerName: lb.Name, VpcID: lb.VpcID, Type: "application", Scheme: "internal"}
			x.State.Code = "active"
			out = append(out, x)
		}
		pg, next, perr := page(out, q.str("Marker"), pageSize, e.pageSize)
		if perr != nil {
			return xmlResult{}, false, perr
		}
		return xmlResult{LoadBalancers: &members[xmlLoadBalancer]{pg}, NextMarker: next}, false, nil

	case "DescribeTargetGroups":
		want := q.strings("TargetGroupArns")
		lbFilter := q.str("LoadBalancerArn")
		var out []xmlTargetGroup
		for _, arn := range e.selected(want, func(a string) bool { return e.tgs[a] != nil }) {
			tg := e.tgs[arn]
			if tg == nil {
				return xmlResult{}, false, errf("TargetGroupNotFound", "One or more target groups not found")
			}
			lbs := e.tgLoadBalancers(arn)
			if lbFilter != "" && !contains(lbs, lbFilter) {
				continue
			}
			out = append(out, xmlTargetGroup{tg.Arn, tg.Name, "HTTP", 8080, tg.VpcID, tg.TargetType, members[string]{lbs}})
		}
		pg, next, perr := page(out, q.str("Marker"), pageSize, e.pageSize)
		if perr != nil {
			return xmlResult{}, false, perr
		}
		return xmlResult{TargetGroups: &members[xmlTargetGroup]{pg}, NextMarker: next}, false, nil

	case "DescribeListeners":
		want := q.strings("ListenerArns")
		lbArn := q.str("LoadBalancerArn")
		if len(want) == 0 && lbArn == "" {
			return xmlResult{}, false, errf("ValidationError", "You must specify either listener ARNs or a load balancer ARN")
		}
		if lbArn != "" && e.lbs[lbArn] == nil {
			return xmlResult{}, false, errf("LoadBalancerNotFound", "Load balancer '%s' not found", lbArn)
		}
		var out []xmlListener
		for _, arn := range e.selected(want, func(a string) bool { l := e.listeners[a]; return l != nil && (lbArn == "" || l.lb == lbArn) }) {
			l := e.listeners[arn]
			if l == nil {
				return xmlResult{}, false, errf("ListenerNotFound", "One or more listeners not found")
			}
			out = append(out, l.xml())
		}
		pg, next, perr := page(out, q.str("Marker"), pageSize, e.pageSize)
		if perr != nil {
			return xmlResult{}, false, perr
		}
		return xmlResult{Listeners: &members[xmlListener]{pg}, NextMarker: next}, false, nil

	case "DescribeRules":
		want := q.strings("RuleArns")
		lArn := q.str("ListenerArn")
		if len(want) == 0 && lArn == "" {
			return xmlResult{}, false, errf("ValidationError", "You must specify either listener rule ARNs or a listener ARN")
		}
		var out []xmlRule
		if lArn != "" {
			l := e.listeners[lArn]
			if l == nil {
				return xmlResult{}, false, errf("ListenerNotFound", "Listener '%s' not found", lArn)
			}
			var rs []*rule
			for _, arn := range e.order {
				if r := e.rules[arn]; r != nil && r.listener == lArn {
					rs = append(rs, r)
				}
			}
			sort.SliceStable(rs, func(i, j int) bool {
				a, _ := strconv.Atoi(rs[i].priority)
				b, _ := strconv.Atoi(rs[j].priority)
				return a < b
			})
			for _, r := range rs {
				out = append(out, r.xml())
			}
			// The default rule comes last, made of the listener's default
			// actions.
			def := rule{arn: s.arn("listener-rule/" + strings.TrimPrefix(lbResource(lArn), "listener/") + "/default"), priority: "default", actions: l.actions}
			x := def.xml()
			x.IsDefault = true
			out = append(out, x)
		} else {
			for _, arn := range want {
				r := e.rules[arn]
				if r == nil {
					return xmlResult{}, false, errf("RuleNotFound", "One or more rules not found")
				}
				out = append(out, r.xml())
			}
		}
		pg, next, perr := page(out, q.str("Marker"), pageSize, e.pageSize)
		if perr != nil {
			return xmlResult{}, false, perr
		}
		return xmlResult{Rules: &members[xmlRule]{pg}, NextMarker: next}, false, nil

	case "ModifyRule":
		arn := q.str("RuleArn")
		r := e.rules[arn]
		if r == nil {
			if strings.HasSuffix(arn, "/default") {
				return xmlResult{}, false, errf("OperationNotPermitted", "Default rule '%s' cannot be modified; use ModifyListener", arn)
			}
			return xmlResult{}, false, errf("RuleNotFound", "One or more rules not found")
		}
		if q.get("Conditions") != nil {
			return xmlResult{}, false, errf("ValidationError", "the stub does not modify conditions")
		}
		if q.get("Actions") == nil {
			return xmlResult{Rules: &members[xmlRule]{[]xmlRule{r.xml()}}}, false, nil
		}
		actions, aerr := parseActions(q, "Actions")
		if aerr != nil {
			return xmlResult{}, false, aerr
		}
		if aerr := keepSecrets(r.actions, actions); aerr != nil {
			return xmlResult{}, false, aerr
		}
		if aerr := e.checkActions(e.listeners[r.listener].lb, actions); aerr != nil {
			return xmlResult{}, false, aerr
		}
		r.actions = actions
		return xmlResult{Rules: &members[xmlRule]{[]xmlRule{r.xml()}}}, true, nil

	case "ModifyListener":
		arn := q.str("ListenerArn")
		l := e.listeners[arn]
		if l == nil {
			return xmlResult{}, false, errf("ListenerNotFound", "One or more listeners not found")
		}
		for _, k := range []string{"Port", "Protocol", "Certificates", "SslPolicy", "AlpnPolicy", "MutualAuthentication"} {
			if q.get(k) != nil {
				return xmlResult{}, false, errf("ValidationError", "the stub does not modify %s", k)
			}
		}
		if q.get("DefaultActions") == nil {
			return xmlResult{Listeners: &members[xmlListener]{[]xmlListener{l.xml()}}}, false, nil
		}
		actions, aerr := parseActions(q, "DefaultActions")
		if aerr != nil {
			return xmlResult{}, false, aerr
		}
		if aerr := keepSecrets(l.actions, actions); aerr != nil {
			return xmlResult{}, false, aerr
		}
		if aerr := e.checkActions(l.lb, actions); aerr != nil {
			return xmlResult{}, false, aerr
		}
		l.actions = actions
		return xmlResult{Listeners: &members[xmlListener]{[]xmlListener{l.xml()}}}, true, nil
	}
	return xmlResult{}, false, errf("InvalidAction", "The action %s is not valid for this web service (the stub implements DescribeLoadBalancers, DescribeTargetGroups, DescribeListeners, DescribeRules, ModifyRule, ModifyListener)", action)
}

// selected returns want in order, or, when want is empty, every known ARN
// for which keep is true, in creation order.
func (e *elbState) selected(want []string, keep func(string) bool) []string {
	if len(want) > 0 {
		return want
	}
	var out []string
	for _, arn := range e.order {
		if keep(arn) {
			out = append(out, arn)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
