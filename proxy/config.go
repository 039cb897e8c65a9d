package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Side is one of the two backends of a shift.
type Side int

const (
	// SideLegacy is the side traffic moves away from.
	SideLegacy Side = iota
	// SideNew is the side traffic moves to.
	SideNew
)

func (s Side) String() string {
	if s == SideNew {
		return "new"
	}
	return "legacy"
}

func (s Side) other() Side { return 1 - s }

// Weights are the shares of traffic in percent; they sum to 100.
type Weights struct {
	Legacy int `json:"legacy"`
	New    int `json:"new"`
}

// Validate checks that the weights are in 0..100 and sum to 100.
func (w Weights) Validate() error {
	if w.Legacy < 0 || w.New < 0 || w.Legacy+w.New != 100 {
		return fmt.Errorf("weights legacy %d / new %d must be in 0..100 and sum to 100", w.Legacy, w.New)
	}
	return nil
}

// Config configures a Proxy. The zero value of every field but Legacy or
// New is usable.
type Config struct {
	// Legacy and New are the upstream base URLs of each side,
	// "http://host:port" or "https://host:port", without a path. Several
	// addresses per side share its traffic, least-loaded first. A side
	// may be empty only while its weight is 0; requests never go to an
	// empty side.
	Legacy, New []string

	// Weights is the initial split. The zero value sends everything to
	// Legacy.
	Weights Weights

	// StickyCookie names the cookie that carries a user's key; "" means
	// "cutover-user", "-" means no cookie (keyless requests are then split
	// at random by weight on every request).
	StickyCookie string
	// StickyHeader names a request header whose value is the user's key
	// (say "X-User-Id"). It takes precedence over the cookie; requests
	// without it fall back to the cookie. "" means none.
	StickyHeader string

	// MaxReplayBody is the largest request body buffered so that the
	// request can be retried or replayed; larger bodies are streamed and
	// never replayed. 0 means 1 MiB; negative means never buffer.
	MaxReplayBody int64
	// RetryBudget is the share of requests per second that may be
	// replayed on the other side after the new side failed them (0.2 =
	// 20 %). 0 means 1: every failure of the new side may be replayed,
	// because legacy served all the traffic before the shift began, so
	// taking back the new side's share never loads it beyond what it
	// carried then. Lower it when legacy was scaled down during the
	// shift. Negative means no replays beyond RetryFloor. Requests
	// that never reached a side (refused connections) are moved to the
	// other side outside the budget: they add no load to the failing one.
	RetryBudget float64
	// RetryFloor is the number of replays per second allowed whatever the
	// request rate. 0 means 10; negative means none.
	RetryFloor int

	// UpstreamIdleTimeout closes pooled upstream connections idle this
	// long; keep it below the upstreams' own keep-alive timeout so that
	// the proxy, not the upstream, closes an idle connection. 0 means 30 s.
	// An upstream's "Keep-Alive: timeout=N" lowers it for that connection.
	UpstreamIdleTimeout time.Duration
	// MaxIdlePerUpstream caps idle pooled connections per upstream
	// address. 0 means 512.
	MaxIdlePerUpstream int
	// DialTimeout bounds connecting to an upstream. 0 means 2 s: a side
	// that does not answer SYNs is abandoned for the other side quickly.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// head after the request was sent, and then each wait for more of its
	// body (so a stream may last forever if it sends something at least
	// that often). 0 means 60 s.
	ResponseHeaderTimeout time.Duration
	// UpstreamTLS configures TLS to https:// upstreams. nil means the
	// system roots and the URL's host name.
	UpstreamTLS *tls.Config
	// RewriteHost sends the upstream URL's host as Host. false keeps the
	// client's Host.
	RewriteHost bool

	// ReadHeaderTimeout bounds reading a request head once its first
	// byte arrived. 0 means 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes client connections idle this long between
	// requests, and bounds each wait for more of a request body. 0 means
	// 120 s (above common load balancers' 60 s, so that they close
	// first).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a client. 0 means 60 s.
	WriteTimeout time.Duration
	// MaxHeaderBytes caps a request head. 0 means 64 KiB.
	MaxHeaderBytes int
	// TLS, when set, makes Serve terminate TLS and offer h2 and
	// http/1.1 by ALPN. nil means plain HTTP (HTTP/1.1 and h2c with prior
	// knowledge).
	TLS *tls.Config
	// Via, when set, is added as "Via: <Via>" to requests sent upstream
	// (say "1.1 cutover"). "" adds none.
	Via string

	// MirrorPercent is the initial share of legacy-bound requests also
	// sent to the new side for comparison. 0 means none.
	MirrorPercent int
	// MirrorUnsafe also mirrors methods other than GET, HEAD and OPTIONS.
	// false mirrors only those: a mirrored POST would run its side effects
	// twice when both sides share a database.
	MirrorUnsafe bool
	// MirrorConcurrency bounds mirrored requests in flight; beyond it a
	// mirror is skipped and counted as dropped. 0 means 64.
	MirrorConcurrency int

	// AdminToken is the bearer token of the admin API. "" refuses every
	// admin request that needs it (all but /healthz).
	AdminToken string
	// MetricsPublic serves /metrics on the admin handler without the
	// token. false requires it.
	MetricsPublic bool

	// Logger receives operational events (upstream marked down, admin
	// changes). nil discards them. The hot path never logs per request.
	Logger *slog.Logger
}

const (
	defaultCookie        = "cutover-user"
	defaultMaxReplayBody = 1 << 20
)

// upstreamURL is a parsed upstream base URL.
type upstreamURL struct {
	raw     string
	tls     bool
	host    string // host:port to dial
	hostHdr string // for Host and SNI
}

func parseUpstream(raw string) (upstreamURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return upstreamURL{}, fmt.Errorf("upstream %q: %w", raw, err)
	}
	var out upstreamURL
	out.raw = raw
	switch u.Scheme {
	case "http":
	case "https":
		out.tls = true
	default:
		return out, fmt.Errorf("upstream %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return out, fmt.Errorf("upstream %q: no host", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return out, fmt.Errorf("upstream %q: only scheme://host:port is supported, without path, query or user", raw)
	}
	out.hostHdr = u.Host
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if out.tls {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	out.host = host
	return out, nil
}

// settings is Config with defaults applied.
type settings struct {
	Config
	cookie []byte // nil: no cookie
	header []byte // nil: none
	legacy []upstreamURL
	new    []upstreamURL
}

func (c Config) withDefaults() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	for _, raw := range c.Legacy {
		u, err := parseUpstream(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("legacy: %w", err))
			continue
		}
		s.legacy = append(s.legacy, u)
	}
	for _, raw := range c.New {
		u, err := parseUpstream(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("new: %w", err))
			continue
		}
		s.new = append(s.new, u)
	}
	if len(c.Legacy) == 0 && len(c.New) == 0 {
		errs = append(errs, errors.New("no upstreams: set Legacy, New or both"))
	}
	if c.Weights == (Weights{}) {
		s.Weights = Weights{Legacy: 100}
	}
	if err := s.Weights.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := s.checkWeights(s.Weights); err != nil {
		errs = append(errs, err)
	}
	switch c.StickyCookie {
	case "":
		s.cookie = []byte(defaultCookie)
	case "-":
	default:
		if !validToken(c.StickyCookie) {
			errs = append(errs, fmt.Errorf("sticky cookie name %q is not a token", c.StickyCookie))
		}
		s.cookie = []byte(c.StickyCookie)
	}
	if c.StickyHeader != "" {
		if !validToken(c.StickyHeader) {
			errs = append(errs, fmt.Errorf("sticky header name %q is not a token", c.StickyHeader))
		}
		s.header = []byte(c.StickyHeader)
	}
	if s.MaxReplayBody == 0 {
		s.MaxReplayBody = defaultMaxReplayBody
	}
	if s.MaxReplayBody < 0 {
		s.MaxReplayBody = 0
	}
	if s.RetryBudget == 0 {
		s.RetryBudget = 1
	}
	if s.RetryBudget < 0 {
		s.RetryBudget = 0
	}
	if s.RetryFloor == 0 {
		s.RetryFloor = 10
	}
	if s.RetryFloor < 0 {
		s.RetryFloor = 0
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.UpstreamIdleTimeout, 30*time.Second)
	def(&s.DialTimeout, 2*time.Second)
	def(&s.ResponseHeaderTimeout, 60*time.Second)
	def(&s.ReadHeaderTimeout, 10*time.Second)
	def(&s.IdleTimeout, 120*time.Second)
	def(&s.WriteTimeout, 60*time.Second)
	if s.MaxIdlePerUpstream <= 0 {
		s.MaxIdlePerUpstream = 512
	}
	if s.MaxHeaderBytes <= 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.MaxHeaderBytes < 1024 {
		s.MaxHeaderBytes = 1024
	}
	if s.MirrorPercent < 0 || s.MirrorPercent > 100 {
		errs = append(errs, fmt.Errorf("mirror percent %d is not in 0..100", s.MirrorPercent))
	}
	if s.MirrorConcurrency <= 0 {
		s.MirrorConcurrency = 64
	}
	if strings.ContainsAny(s.Via, "\r\n") {
		errs = append(errs, errors.New("via must be one line"))
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.Logger = s.Logger.With("component", "proxy")
	return s, errors.Join(errs...)
}

// checkWeights refuses traffic to a side without upstreams.
func (s *settings) checkWeights(w Weights) error {
	if w.Legacy > 0 && len(s.Legacy) == 0 {
		return fmt.Errorf("weight legacy %d but no legacy upstreams", w.Legacy)
	}
	if w.New > 0 && len(s.New) == 0 {
		return fmt.Errorf("weight new %d but no new upstreams", w.New)
	}
	return nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isToken[s[i]] {
			return false
		}
	}
	return true
}
