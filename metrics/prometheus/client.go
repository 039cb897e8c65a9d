package prometheus

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A small client of the Prometheus HTTP API (/api/v1/query) rather than
// client_golang's api package: the provider needs exact control over what
// an answer means (one series or an error, NaN and empty as "unknown") and
// over the words of every error, which end up in one line of `shift
// validate` and in the reason a shift pauses.

// ErrUnauthorized is returned (wrapped) when Prometheus, or a proxy in
// front of it, refuses the credentials (401 or 403).
var ErrUnauthorized = errors.New("refused the credentials")

// ErrTimeout is returned (wrapped) when a query did not answer in time,
// whether the client gave up or Prometheus' own query timeout hit.
var ErrTimeout = errors.New("timed out")

// APIError is an error answer of the Prometheus API: a query it cannot
// parse or evaluate, or one it gave up on.
type APIError struct {
	// Status is the HTTP status code (400 bad_data, 422 execution, 503
	// timeout or unavailable).
	Status int
	// Type is Prometheus' errorType ("bad_data", "execution", "timeout",
	// "canceled", "internal", "unavailable").
	Type string
	// Message is Prometheus' error text.
	Message string
}

func (e *APIError) Error() string { return e.Type + ": " + e.Message }

// Is makes errors.Is(err, ErrTimeout) hold for Prometheus' own timeouts.
func (e *APIError) Is(target error) bool {
	return target == ErrTimeout && (e.Type == "timeout" || e.Type == "canceled")
}

// result is one query's answer reduced to a value.
type result struct {
	// Value is the single series' value; NaN when Empty.
	Value float64
	// Empty says the query returned no series at all.
	Empty bool
}

type client struct {
	base    *url.URL
	hc      *http.Client
	timeout time.Duration
	headers map[string]string
	// token is a bearer token read once; tokenFile is read on every
	// request so that a rotated token (a projected service-account token)
	// is picked up.
	token, tokenFile   string
	username, password string
}

func newTransport(caFile string) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the query's context
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile: %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// query evaluates an instant query at t.
func (c *client) query(ctx context.Context, q string, t time.Time) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	form := url.Values{}
	form.Set("query", q)
	form.Set("time", strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64))
	// Prometheus stops evaluating when its own timeout is reached, so a
	// heavy query does not keep running after we gave up on it.
	form.Set("timeout", promDuration(c.timeout))
	body, status, err := c.post(ctx, "api/v1/query", form)
	if err == nil && status == http.StatusMethodNotAllowed {
		// Some proxies in front of Prometheus allow only GET.
		body, status, err = c.get(ctx, "api/v1/query", form)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return result{Value: math.NaN()}, fmt.Errorf("no answer within %v: %w", c.timeout, ErrTimeout)
		}
		return result{Value: math.NaN()}, err
	}
	return parseResponse(status, body)
}

func (c *client) endpoint(path string) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + path
	u.RawPath = ""
	return u.String()
}

func (c *client) post(ctx context.Context, path string, form url.Values) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(path), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *client) get(ctx context.Context, path string, form url.Values) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(path)+"?"+form.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	return c.do(req)
}

// maxBody bounds an answer: one series' value is a few hundred bytes; a
// query that returns a huge vector is refused anyway.
const maxBody = 4 << 20

func (c *client) do(req *http.Request) ([]byte, int, error) {
	req.Header.Set("Accept", "application/json")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	switch {
	case c.tokenFile != "":
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, 0, fmt.Errorf("cannot read the bearer token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return nil, 0, fmt.Errorf("the bearer token file %s is empty", c.tokenFile)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.username != "":
		req.SetBasicAuth(c.username, c.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("cannot reach prometheus at %s: %w", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading prometheus' answer: %w", err)
	}
	if len(b) > maxBody {
		return nil, resp.StatusCode, fmt.Errorf("prometheus' answer is larger than %d MiB", maxBody>>20)
	}
	return b, resp.StatusCode, nil
}

// apiResponse is the envelope of every /api/v1 answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// parseResponse reads an /api/v1/query answer. It is the parser of the
// one input this package takes from the network, and is fuzzed.
func parseResponse(status int, body []byte) (result, error) {
	none := result{Value: math.NaN()}
	var r apiResponse
	jsonErr := json.Unmarshal(body, &r)
	if jsonErr != nil || r.Status == "" {
		// Not the API: a proxy's or load balancer's own page.
		switch status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return none, fmt.Errorf("prometheus %w (%d %s)", ErrUnauthorized, status, http.StatusText(status))
		case http.StatusNotFound:
			return none, fmt.Errorf("no Prometheus API there (404 Not Found): check the address and its path prefix")
		}
		if status/100 != 2 {
			return none, fmt.Errorf("prometheus answered %d %s: %s", status, http.StatusText(status), snippet(body))
		}
		return none, fmt.Errorf("prometheus' answer is not the API's JSON: %s", snippet(body))
	}
	if r.Status != "success" {
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return none, fmt.Errorf("prometheus %w (%d %s): %s", ErrUnauthorized, status, http.StatusText(status), oneLine(r.Error))
		}
		t := r.ErrorType
		if t == "" {
			t = "error"
		}
		return none, &APIError{Status: status, Type: t, Message: oneLine(r.Error)}
	}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return none, fmt.Errorf("prometheus' answer has no readable data: %v", err)
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  json.RawMessage   `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return none, fmt.Errorf("prometheus' vector is unreadable: %v", err)
		}
		switch len(vec) {
		case 0:
			return result{Value: math.NaN(), Empty: true}, nil
		case 1:
			v, err := sampleValue(vec[0].Value)
			if err != nil {
				return none, err
			}
			return result{Value: v}, nil
		}
		var sets []string
		for i, s := range vec {
			if i == 3 {
				sets = append(sets, "…")
				break
			}
			sets = append(sets, labelSet(s.Metric))
		}
		return none, fmt.Errorf("the query returns %d series (%s), not one: aggregate them, e.g. with sum(...)", len(vec), strings.Join(sets, ", "))
	case "scalar":
		v, err := sampleValue(data.Result)
		if err != nil {
			return none, err
		}
		return result{Value: v}, nil
	case "matrix":
		return none, errors.New("the query returns a range vector: wrap it in a function such as increase(...) or rate(...)")
	case "string":
		return none, errors.New("the query returns a string, not a number")
	}
	return none, fmt.Errorf("prometheus' answer has an unknown result type %q", data.ResultType)
}

// sampleValue reads [<unix time>, "<value>"]; the value may be "NaN",
// "+Inf" or "-Inf".
func sampleValue(raw json.RawMessage) (float64, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return math.NaN(), fmt.Errorf("prometheus' sample %s is not [time, value]", snippet(raw))
	}
	var s string
	if err := json.Unmarshal(pair[1], &s); err != nil {
		return math.NaN(), fmt.Errorf("prometheus' sample value %s is not a string", snippet(pair[1]))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN(), fmt.Errorf("prometheus' sample value %q is not a number", s)
	}
	return v, nil
}

func labelSet(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// snippet returns the start of a body for an error message, on one line.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 120 {
		b = append(b[:120:120], "…"...)
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return oneLine(string(b))
}

// oneLine folds a multi-line message: every error this package returns
// must fit on one line of `shift validate`.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// promDuration writes d as a Prometheus duration: whole seconds as "15s",
// anything finer in milliseconds ("1500ms"), which every Prometheus 2.x
// parses (compound durations like "1m30s" need 2.x releases we cannot
// count on at every user).
func promDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10) + "s"
	}
	return strconv.FormatInt(ms, 10) + "ms"
}
