// Package awsstub is a local stand-in for the few AWS APIs cutover calls:
// the Elastic Load Balancing v2 Query API (listeners, rules, target groups,
// load balancers) and CloudWatch GetMetricData. AWS cannot be reached from
// the test machines, so the ALB router and the CloudWatch provider are
// tested with the real AWS SDK for Go v2 against this server, which speaks
// the wire formats the SDK speaks (Query protocol with XML answers for
// ELBv2, Smithy RPC v2 CBOR for CloudWatch) and keeps state between calls.
// Tests built on it are protocol tests, never end-to-end tests: the stub
// implements what the calls mean as AWS documents it, not AWS itself.
//
// Faults are injected per API action: throttling for the next N calls,
// latency, and hooks that run after a change was applied but before the
// answer goes out (to kill a client mid-call, or to drop the connection so
// the client never learns that its change was applied).
package awsstub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default identity of the stub's resources.
const (
	Region  = "eu-west-1"
	Account = "123456789012"
)

// Server is the stub. The zero value is not usable; call New or Start.
type Server struct {
	// Region and Account appear in the ARNs the stub makes.
	Region, Account string

	mu     sync.Mutex
	http   *httptest.Server
	faults map[string]*fault
	calls  map[string]int
	log    []Call

	elb elbState
	cw  cwState
}

// Call is one request the stub answered (or failed on purpose).
type Call struct {
	// Service is "elasticloadbalancing" or "monitoring".
	Service string
	// Action is the API action (DescribeRules, GetMetricData, …).
	Action string
	// Err is the error code the stub answered with; "" for success.
	Err string
}

// Outcome tells the stub what to do after a hook ran.
type Outcome int

const (
	// Answer sends the normal answer.
	Answer Outcome = iota
	// Drop closes the connection without answering: the change was
	// applied, but the client cannot know it.
	Drop
	// Fail answers 500 InternalFailure although the change was applied.
	Fail
)

// Hook runs after a mutating action changed the stub's state, before the
// answer is written. n counts the action's calls, from 1.
type Hook func(action string, n int) Outcome

type fault struct {
	throttle int
	latency  time.Duration
	hook     Hook
}

// New returns a stub that is not listening yet; serve it with Handler or
// call Start.
func New() *Server {
	s := &Server{Region: Region, Account: Account, faults: map[string]*fault{}, calls: map[string]int{}}
	s.elb.init()
	s.cw.init()
	return s
}

// Start starts a stub on a loopback port and closes it when the test ends.
func Start(t testing.TB) *Server {
	s := New()
	s.http = httptest.NewServer(s.Handler())
	t.Cleanup(s.http.Close)
	return s
}

// Post sends one call to url: a JSON-protocol one with X-Amz-Target
// target, or a query-protocol one when target is "", with Content-Type
// contentType and the Authorization header auth when it is not "". It
// returns the status and the body: for tests of what a stub refuses before
// the SDK would ever send it.
func Post(t testing.TB, url, target, contentType, body, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// FakeEnv gives the AWS SDK static fake credentials for the test and keeps
// it away from the machine's AWS files and the instance metadata service.
func FakeEnv(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTUBSTUBSTUBSTUB")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "stub-secret-not-a-real-one")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// URL is the endpoint to give the SDK (BaseEndpoint).
func (s *Server) URL() string {
	if s.http == nil {
		return ""
	}
	return s.http.URL
}

// Throttle makes the next n calls of action ("" for any action) fail with
// the service's throttling error (Throttling, HTTP 400), as AWS does when
// an account exceeds its API rate.
func (s *Server) Throttle(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(action).throttle = n
}

// Latency delays every call of action ("" for any) by d before it is
// handled.
func (s *Server) Latency(action string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(action).latency = d
}

// OnApplied sets the hook that runs after a mutating action (ModifyRule,
// ModifyListener) applied its change and before it answers; nil removes it.
func (s *Server) OnApplied(action string, h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(action).hook = h
}

// Calls returns how many calls of action ("" for all) reached the stub,
// throttled ones included.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if action == "" {
		return len(s.log)
	}
	return s.calls[action]
}

// Log returns every call so far, oldest first.
func (s *Server) Log() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.log...)
}

func (s *Server) fault(action string) *fault {
	f := s.faults[action]
	if f == nil {
		f = &fault{}
		s.faults[action] = f
	}
	return f
}

// admit counts a call and decides on injected faults: it returns the
// latency to wait and whether to throttle.
func (s *Server) admit(service, action string) (time.Duration, bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[action]++
	n := s.calls[action]
	var lat time.Duration
	throttle := false
	for _, key := range []string{"", action} {
		f := s.faults[key]
		if f == nil {
			continue
		}
		lat += f.latency
		if f.throttle > 0 && !throttle {
			f.throttle--
			throttle = true
		}
	}
	c := Call{Service: service, Action: action}
	if throttle {
		c.Err = "Throttling"
	}
	s.log = append(s.log, c)
	return lat, throttle, n
}

// gate is what both APIs do before an action: check the signature's
// scope, count the call, wait out injected latency and refuse an injected
// throttle. It returns the action's call number and the error to answer
// with; ok is false when the client went away during the wait and nothing
// is to be answered.
func (s *Server) gate(r *http.Request, service, action string) (n int, e *apiError, ok bool) {
	if err := SignedFor(r, service); err != nil {
		return 0, &apiError{status: http.StatusForbidden, code: "IncompleteSignature", message: err.Error()}, true
	}
	lat, throttle, n := s.admit(service, action)
	if lat > 0 {
		select {
		case <-timeAfter(lat):
		case <-r.Context().Done():
			return n, nil, false
		}
	}
	if throttle {
		return n, errf("Throttling", "Rate exceeded"), true
	}
	return n, nil, true
}

func (s *Server) noteError(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) > 0 && s.log[len(s.log)-1].Err == "" {
		s.log[len(s.log)-1].Err = code
	}
}

func (s *Server) hook(action string) Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.faults[action]; f != nil {
		return f.hook
	}
	return nil
}

// Handler serves both APIs on one endpoint, as a VPC endpoint would not,
// but as the SDK's BaseEndpoint lets a test point both clients at.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "the stub answers POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, cwPathPrefix):
			s.serveCloudWatch(w, r, body)
		default:
			s.serveELB(w, r, body)
		}
	})
}

// SignedFor checks that the request carries a SigV4 signature scoped to
// service ("sqs", "kinesis", "dynamodb", "elasticloadbalancing",
// "monitoring"): the stubs do not verify signatures, but a client that
// signs for the wrong service or not at all would fail against AWS.
func SignedFor(r *http.Request, service string) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return fmt.Errorf("request is not signed with SigV4")
	}
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return fmt.Errorf("signature has no credential scope")
	}
	cred := auth[i+len("Credential="):]
	if j := strings.IndexByte(cred, ','); j >= 0 {
		cred = cred[:j]
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != service || parts[4] != "aws4_request" {
		return fmt.Errorf("signature scope %q is not for service %s", cred, service)
	}
	return nil
}

// hijackClose closes the client's connection without an answer.
func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func requestID() string {
	b := randomHex(32)
	return b[:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:32]
}
