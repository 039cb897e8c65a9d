package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cutoverhq/cutover/internal/admin"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/metrics/embedded"
	"github.com/cutoverhq/cutover/plan"
	dataplane "github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/router"
	routerproxy "github.com/cutoverhq/cutover/router/proxy"
	"github.com/cutoverhq/cutover/shift"
)

// ---- a real shift behind the dashboard -----------------------------------

const (
	aliceToken = "alice-0123456789abcdef"
	bobToken   = "bob-0123456789abcdef"
)

// shiftEnv is a shift running in process: two backends, the embedded
// proxy between them with live traffic, a runner whose first step waits
// for an approval from group leads (four-eyes, started by alice), and the
// dashboard with the admin API on one loopback server.
type shiftEnv struct {
	URL    string
	Runner *shift.Runner
	// apiCalls counts requests that reached /v1/ (authenticated or not),
	// commands the POSTs among them.
	apiCalls, commands atomic.Int64
	// statusCalls counts GET /v1/shift: the page's poll.
	statusCalls atomic.Int64
	// failNew makes the new backend answer 500.
	failNew atomic.Bool
}

const planYAML = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata:
  name: payments-api-web-test
spec:
  service: payments-api
  legacy: {addresses: ["%s"]}
  new: {addresses: ["%s"]}
  router: {type: proxy, listen: "127.0.0.1:0"}
  metrics: {type: embedded}
  steps:
    - weight: 10
      hold: 30s
      approval: {count: 1, group: leads, fourEyes: true}
    - weight: 50
      hold: 30s
    - weight: 100
  slo:
    errorRate: {max: 5%%}
    latencyP99: {max: 2s}
  analysis:
    interval: 200ms
    window: 5s
    minRequests: 5
`

func startShift(t *testing.T) *shiftEnv {
	t.Helper()
	env := &shiftEnv{}
	backend := func(name string, minMs, maxMs int, fail *atomic.Bool) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Duration(minMs)*time.Millisecond + rand.N(time.Duration(maxMs-minMs)*time.Millisecond))
			if fail != nil && fail.Load() {
				http.Error(w, "broken", http.StatusInternalServerError)
				return
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	legacy := backend("legacy", 1, 4, nil)
	newer := backend("new", 2, 8, &env.failNew)

	p, err := plan.Parse("plan.yaml", fmt.Appendf(nil, planYAML, legacy.URL, newer.URL))
	if err != nil {
		t.Fatal(err)
	}
	rt, provider, trafficURL := newDataPlane(t, legacy.URL, newer.URL)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	go func() {
		// Steady traffic through the data plane, so that the judge has
		// both sides to compare once the new side takes its share.
		defer func() { done <- struct{}{} }()
		hc := &http.Client{Timeout: 2 * time.Second}
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, trafficURL+"/pay", nil)
			if res, err := hc.Do(req); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			time.Sleep(8 * time.Millisecond)
		}
	}()

	tokens := writeTokens(t)
	hist := &shift.History{}
	r := &shift.Runner{Plan: p, Router: rt, Provider: provider, StartedBy: "alice", Observers: []shift.Observer{hist}}
	go func() {
		defer func() { done <- struct{}{} }()
		if _, err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("runner: %v", err)
		}
	}()

	env.Runner = r
	api := r.AdminHandler(tokens, hist)
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		env.apiCalls.Add(1)
		if req.Method == http.MethodPost {
			env.commands.Add(1)
		}
		if req.Method == http.MethodGet && req.URL.Path == "/v1/shift" {
			env.statusCalls.Add(1)
		}
		api.ServeHTTP(w, req)
	}))
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env.URL = srv.URL + "/"

	waitFor(t, 10*time.Second, "the shift to wait for approval", func() bool {
		return r.State().Phase == shift.WaitingApproval
	})
	return env
}

// command posts an operator command to the admin API, as the CLI would.
func (env *shiftEnv) command(t *testing.T, token, kind string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, env.URL+"v1/shift/"+kind, strings.NewReader(`{"reason":"from the test"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", kind, res.Status, b)
	}
}

// newDataPlane starts the embedded proxy between the two backends on a
// loopback port, and returns its router, its metrics and its address.
func newDataPlane(t *testing.T, legacyURL, newURL string) (router.Router, metrics.Provider, string) {
	t.Helper()
	p, err := dataplane.New(dataplane.Config{Legacy: []string{legacyURL}, New: []string{newURL}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, dataplane.ErrClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("proxy: %v", err)
		}
	})
	return routerproxy.NewLocal(p, ""), embedded.NewFor(p), "http://" + ln.Addr().String()
}

// writeTokens writes a token file as an operator would, one token in
// clear and one as its SHA-256, and loads it.
func writeTokens(t *testing.T) *admin.Tokens {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tokens.yaml")
	data := fmt.Sprintf("tokens:\n  - name: alice\n    groups: [leads]\n    token: %s\n  - name: bob\n    groups: [leads, payments]\n    token: %s\n", aliceToken, bobToken)
	if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := admin.LoadTokens(f)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- the browser ----------------------------------------------------------

// required mirrors internal/testenv: under CI, or with
// CUTOVER_REQUIRE_ASSETS=1, a missing browser fails instead of skipping.
func required() bool {
	for _, k := range []string{"CUTOVER_REQUIRE_ASSETS", "CI"} {
		if v := os.Getenv(k); v != "" && v != "0" && v != "false" {
			return true
		}
	}
	return false
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CUTOVER_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "Chromium is not installed (/usr/bin/chromium): run hack/deps.sh or apt-get install chromium, or set CUTOVER_CHROMIUM"
	if required() {
		t.Fatal(msg + " (required under CI / CUTOVER_REQUIRE_ASSETS=1)")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts headless Chromium with an empty profile and returns a
// context for one tab, sized 1280×800. Call it after startShift: cleanups
// run last first, and the browser must close the dashboard's event stream
// before httptest.Server.Close waits for every request to end.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// The first action starts the browser and binds its life to the
	// context it is given: the tab's, not the timeout's below.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting Chromium %s: %v", exe, err)
	}
	// Any uncaught exception, console.error or CSP violation of the page
	// fails the test. Failed loads (a 401 for a wrong token) are the
	// browser's network log, and expected.
	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(tab)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
		<-read
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("the page logged: %s", p)
		}
	})
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v\npage text:\n%s", err, pageText(ctx))
	}
}

func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

// waitJS waits until the JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(pctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, pageText(ctx))
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v\npage text:\n%s", expr, err, pageText(ctx))
	}
	return v
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	return eval[string](t, ctx, expr)
}

func signIn(t *testing.T, ctx context.Context, env *shiftEnv, token string) {
	t.Helper()
	run(t, ctx,
		chromedp.Navigate(env.URL),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	waitJS(t, ctx, "the shift's phase", `document.getElementById('phase').textContent === 'WaitingApproval'`)
}

// screenshot saves the viewport as PNG into dir and checks its size.
func screenshot(t *testing.T, ctx context.Context, dir, name string, w, h int) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// screenshotDir is t.TempDir(), or CUTOVER_WEB_SCREENSHOTS to keep the
// pictures for a person to look at.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("CUTOVER_WEB_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// ---- the dashboard in the browser -------------------------------------------

func TestDashboardWithoutTokenAsksForOneAndShowsNoData(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	env := startShift(t)
	ctx := newBrowser(t)
	run(t, ctx, chromedp.Navigate(env.URL), chromedp.WaitVisible(chromedp.ID("token")))
	// Give a wrongly eager page the time to fetch something.
	time.Sleep(1500 * time.Millisecond)
	if n := env.apiCalls.Load(); n != 0 {
		t.Errorf("the page called the admin API %d times before it had a token", n)
	}
	text := pageText(ctx)
	for _, leak := range []string{"payments-api", "WaitingApproval", "Decision log", "Approve"} {
		if strings.Contains(text, leak) {
			t.Errorf("without a token the page shows %q:\n%s", leak, text)
		}
	}
	if !strings.Contains(strings.ToLower(text), "admin token") || eval[bool](t, ctx, `document.getElementById('login').hidden || !document.getElementById('dash').hidden`) {
		t.Errorf("the token prompt is missing, or the dashboard shown:\n%s", text)
	}

	// A wrong token is refused by the server, dropped, and asked again.
	run(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), "not-a-valid-token-at-all"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	waitJS(t, ctx, "the refusal", `document.getElementById('login-error').textContent.includes('refused') && !document.getElementById('login').hidden`)
	if c := evalString(t, ctx, `document.cookie`); strings.Contains(c, "cutover_token=") {
		t.Errorf("the refused token stays in the cookie: %q", c)
	}
	if text := pageText(ctx); strings.Contains(text, "WaitingApproval") {
		t.Errorf("a refused token shows data:\n%s", text)
	}
}

func TestDashboardApproveMovesTheShift(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	env := startShift(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env, bobToken)

	// The cookie is what the page authenticates with: SameSite=Strict, so
	// another site cannot make the browser POST a command with it.
	cookies := eval[[]string](t, ctx, `document.cookie.split('; ')`)
	if !contains(cookies, "cutover_token="+bobToken) {
		t.Errorf("cookies %q lack the token", cookies)
	}
	waitJS(t, ctx, "the approval panel", `!document.getElementById('approval').hidden`)
	if s := evalString(t, ctx, `document.getElementById('approval-text').textContent`); !strings.Contains(s, "group leads") || !strings.Contains(s, "not alice") {
		t.Errorf("approval text %q does not say who may approve", s)
	}
	if s := evalString(t, ctx, `document.getElementById('waiting').textContent`); !strings.Contains(s, "needs 1 approval") {
		t.Errorf("waiting = %q", s)
	}
	if s := evalString(t, ctx, `document.querySelector('#timeline li[aria-current=step]')?.textContent ?? ''`); !strings.Contains(s, "Step 1") || !strings.Contains(s, "waiting for approval") {
		t.Errorf("current step in the timeline = %q", s)
	}
	// Accessibility: every button has a name, the status is announced.
	if unnamed := eval[int](t, ctx, `[...document.querySelectorAll('button')].filter(b => !(b.textContent.trim() || b.getAttribute('aria-label'))).length`); unnamed != 0 {
		t.Errorf("%d buttons have no accessible name", unnamed)
	}
	if s := evalString(t, ctx, `document.getElementById('live').getAttribute('aria-live') + ' ' + document.getElementById('live').textContent`); !strings.HasPrefix(s, "polite WaitingApproval") {
		t.Errorf("live status region = %q", s)
	}

	dir := screenshotDir(t)
	screenshot(t, ctx, dir, "waiting-approval-1280x800.png", 1280, 800)

	run(t, ctx,
		chromedp.SendKeys(chromedp.ID("approval-reason"), "CHG-2041"),
		chromedp.Click(chromedp.ID("approve")),
	)
	waitFor(t, 10*time.Second, "the runner to leave WaitingApproval", func() bool {
		return env.Runner.State().Phase != shift.WaitingApproval
	})
	if s := env.Runner.State(); s.Step != 0 || len(s.Approvals) != 1 || s.Approvals[0].Actor != "bob" {
		t.Errorf("after approval: step %d, approvals %+v", s.Step, s.Approvals)
	}
	waitJS(t, ctx, "the answer to approve", `document.getElementById('message').textContent.includes('approved by bob')`)
	waitJS(t, ctx, "step 1 to move", `['Setting', 'Holding'].includes(document.getElementById('phase').textContent)`)
	waitJS(t, ctx, "the new weight", `document.getElementById('weights').textContent.includes('new 10%')`)
	waitJS(t, ctx, "the timeline to hold step 1", `(document.querySelector('#timeline li[aria-current=step]')?.textContent ?? '').includes('holding')`)
	waitJS(t, ctx, "the approval in the decision log", `[...document.querySelectorAll('#log tr')].some(r => r.textContent.includes('approved') && r.textContent.includes('bob'))`)
	waitJS(t, ctx, "the approval panel to go", `document.getElementById('approval').hidden`)
	// Samples arrive once the new side takes traffic: both sides drawn.
	waitJS(t, ctx, "charts of both sides", `document.querySelectorAll('#ch-p99 path.line.legacy, #ch-p99 path.line.new').length === 2 && document.querySelectorAll('#ch-req path.line').length === 2`)
	waitJS(t, ctx, "a verdict", `document.querySelectorAll('#verdict tbody tr').length > 0`)
	time.Sleep(2 * time.Second) // a few more samples, for the picture
	screenshot(t, ctx, dir, "dashboard-1280x800.png", 1280, 800)

	// After the approval's burst of events the page still polls once a
	// second: an event refreshes at once, but never starts a second loop.
	before := env.statusCalls.Load()
	time.Sleep(3 * time.Second)
	if n := env.statusCalls.Load() - before; n < 2 || n > 5 {
		t.Errorf("the page read the status %d times in 3s, want about 3", n)
	}

	// A narrow screen: one column, nothing wider than the viewport.
	run(t, ctx, chromedp.EmulateViewport(390, 844))
	waitJS(t, ctx, "the narrow layout", `document.documentElement.scrollWidth <= window.innerWidth`)
	screenshot(t, ctx, dir, "dashboard-390x844.png", 390, 844)
}

func TestDashboardFourEyesRefusalIsShown(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	env := startShift(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env, aliceToken)
	waitJS(t, ctx, "the approve button", `!document.getElementById('approve').disabled`)
	run(t, ctx, chromedp.Click(chromedp.ID("approve")))
	waitJS(t, ctx, "the refusal", `document.getElementById('message').textContent.includes('four-eyes')`)
	msg := evalString(t, ctx, `document.getElementById('message').className + ': ' + document.getElementById('message').textContent`)
	if !strings.Contains(msg, "error") || !strings.Contains(msg, "alice started the shift and cannot approve it") {
		t.Errorf("refusal message = %q", msg)
	}
	if visible := evalString(t, ctx, `getComputedStyle(document.getElementById('message')).display + ' ' + document.getElementById('message').getBoundingClientRect().height`); strings.HasPrefix(visible, "none") || strings.HasSuffix(visible, " 0") {
		t.Errorf("the refusal is not visible: %s", visible)
	}
	if ph := env.Runner.State().Phase; ph != shift.WaitingApproval {
		t.Errorf("after alice's approval the shift is %s, want still WaitingApproval", ph)
	}
	if s := env.Runner.State(); len(s.Approvals) != 0 {
		t.Errorf("alice's approval was counted: %+v", s.Approvals)
	}
	screenshot(t, ctx, screenshotDir(t), "four-eyes-refusal-1280x800.png", 1280, 800)
	waitJS(t, ctx, "the refusal in the decision log", `[...document.querySelectorAll('#log tr')].some(r => r.textContent.includes('command-refused') && r.textContent.includes('alice'))`)
}

func TestDashboardAbortAsksFirst(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	env := startShift(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env, bobToken)

	// Cancelling the confirmation sends nothing.
	run(t, ctx, chromedp.Click(chromedp.ID("abort")), chromedp.WaitVisible(chromedp.ID("abort-dialog")))
	run(t, ctx, chromedp.Click(chromedp.ID("abort-cancel")), chromedp.WaitNotVisible(chromedp.ID("abort-dialog")))
	time.Sleep(300 * time.Millisecond)
	if n := env.commands.Load(); n != 0 {
		t.Errorf("cancelling the abort sent %d commands", n)
	}
	if ph := env.Runner.State().Phase; ph != shift.WaitingApproval {
		t.Fatalf("cancelled abort left the shift %s", ph)
	}

	run(t, ctx,
		chromedp.Click(chromedp.ID("abort")),
		chromedp.WaitVisible(chromedp.ID("abort-dialog")),
		chromedp.SendKeys(chromedp.ID("abort-reason"), "new side misconfigured"),
		chromedp.Click(chromedp.ID("abort-confirm")),
	)
	waitFor(t, 10*time.Second, "the shift to abort", func() bool { return env.Runner.State().Phase == shift.Aborted })
	if r := env.Runner.State().Reason; !strings.Contains(r, "bob") || !strings.Contains(r, "new side misconfigured") {
		t.Errorf("abort reason = %q", r)
	}
	waitJS(t, ctx, "the page to show the end", `document.getElementById('phase').textContent === 'Aborted' && document.getElementById('abort').disabled && document.getElementById('approval').hidden`)
}

func TestDashboardShowsRollback(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	env := startShift(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env, bobToken)
	env.command(t, bobToken, "approve")
	waitFor(t, 10*time.Second, "the shift to hold step 1", func() bool { return env.Runner.State().Phase == shift.Holding })
	// Let the charts gather a few healthy seconds before the new side
	// breaks.
	waitJS(t, ctx, "samples of the new side", `document.querySelectorAll('#ch-err path.line.new').length === 1`)
	time.Sleep(2 * time.Second)
	env.failNew.Store(true)
	waitFor(t, 10*time.Second, "the rollback", func() bool { return env.Runner.State().Phase == shift.RolledBack })

	waitJS(t, ctx, "the page to show the rollback", `document.getElementById('phase').textContent === 'RolledBack'`)
	waitJS(t, ctx, "the weight back at 0", `document.getElementById('weights').textContent.startsWith('legacy 100% · new 0%')`)
	waitJS(t, ctx, "the step's outcome", `(document.querySelector('#timeline li')?.textContent ?? '').includes('rolled back')`)
	waitJS(t, ctx, "the rollback in the decision log", `[...document.querySelectorAll('#log tr')].some(r => r.textContent.includes('rolled-back'))`)
	waitJS(t, ctx, "a rollback marker on the charts", `document.querySelectorAll('#ch-err line.marker.bad').length === 1`)
	waitJS(t, ctx, "a failing verdict", `[...document.querySelectorAll('#verdict tbody tr.r-fail')].some(r => r.textContent.includes('error rate'))`)
	if s := evalString(t, ctx, `document.getElementById('waiting').textContent`); !strings.Contains(s, "ended") {
		t.Errorf("after the rollback, waiting = %q", s)
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll('#operate button, #approval button')].filter(b => !b.disabled).length`); n != 0 {
		t.Errorf("%d command buttons stay enabled after the shift ended", n)
	}
	screenshot(t, ctx, screenshotDir(t), "rolled-back-1280x800.png", 1280, 800)
}

// TestChartKeepsSpikesAndRoundsAxes runs chart.js's helpers in the
// browser: thinning thousands of samples to the chart's width must keep a
// one-sample error burst, gaps (no data) must stay gaps, and axes end on
// round numbers.
func TestChartKeepsSpikesAndRoundsAxes(t *testing.T) {
	chromiumPath(t)
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	ctx := newBrowser(t)
	// The page without a token loads no data; its origin lets the test
	// import the module.
	run(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	type result struct {
		Len        int       `json:"len"`
		Max        float64   `json:"max"`
		Gaps       int       `json:"gaps"`
		Ordered    bool      `json:"ordered"`
		Small      int       `json:"small"`
		NiceMax    []float64 `json:"niceMax"`
		PathPoints int       `json:"pathPoints"`
		Dots       int       `json:"dots"`
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[result](`import('./assets/chart.js').then(c => {
		const pts = [];
		for (let i = 0; i < 7200; i++) pts.push([i * 250, i === 4000 ? 100 : (i >= 5000 && i < 5010 ? null : 1)]);
		const r = c.reduce(pts, 0, 7199 * 250, 300);
		const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
		svg.style.width = '400px'; svg.style.height = '150px';
		document.body.append(svg);
		c.draw(svg, { series: [{ cls: 'new', points: [[0, 1], [1000, null], [2000, 2], [3000, null], [4000, 3], [5000, 4]] }], fmt: String });
		const d = svg.querySelector('path').getAttribute('d');
		return {
			len: r.length, max: Math.max(...r.map(p => p[1] ?? 0)), gaps: r.filter(p => p[1] === null).length,
			ordered: r.every((p, i) => i === 0 || r[i - 1][0] <= p[0]),
			small: c.reduce(pts.slice(0, 10), 0, 9, 300).length,
			niceMax: [0, 0.3, 1, 1.2, 3, 7, 42, 250, 251].map(c.niceMax),
			pathPoints: (d.match(/[ML]/g) || []).length, dots: svg.querySelectorAll('circle').length,
		};
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if res.Len > 3*300+10 || res.Len < 300 {
		t.Errorf("7200 points thinned for 300 px to %d", res.Len)
	}
	if res.Max != 100 {
		t.Errorf("the one-sample spike to 100 was lost: max %v", res.Max)
	}
	if res.Gaps == 0 {
		t.Error("a gap of no data was joined over")
	}
	if !res.Ordered {
		t.Error("thinned points are out of time order")
	}
	if res.Small != 10 {
		t.Errorf("10 points were thinned to %d although they fit", res.Small)
	}
	want := []float64{1, 0.5, 1, 2, 5, 10, 50, 250, 500}
	for i := range want {
		if i < len(res.NiceMax) && res.NiceMax[i] != want[i] {
			t.Errorf("niceMax = %v, want %v", res.NiceMax, want)
			break
		}
	}
	// [0,1] gap [2000,2] gap [4000,3] [5000,4]: three runs; the two lone
	// points get a dot each, since a path of one point draws nothing.
	if res.PathPoints != 4 || res.Dots != 2 {
		t.Errorf("path has %d points and %d dots, want 4 and 2", res.PathPoints, res.Dots)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
