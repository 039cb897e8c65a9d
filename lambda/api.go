package lambda

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// The Runtime API, version 2018-06-01, as Lambda serves it to a runtime:
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
const (
	apiPrefix = "/2018-06-01/runtime"

	hdrRequestID       = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline        = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID         = "Lambda-Runtime-Trace-Id"
	hdrClientContext   = "Lambda-Runtime-Client-Context"
	hdrCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	hdrErrorType       = "Lambda-Runtime-Function-Error-Type"
	hdrErrorBody       = "Lambda-Runtime-Function-Error-Body"
	hdrResponseMode    = "Lambda-Runtime-Function-Response-Mode"

	// maxBuffered is Lambda's limit on a buffered response (6 MB).
	maxBuffered = 6 * 1024 * 1024
	// maxStreamed is Lambda's limit on a streamed response collected
	// whole (20 MB); one passed on to Invocation.Stream has none.
	maxStreamed = 20 * 1024 * 1024
	// maxErrorBody bounds what a runtime may post as an error.
	maxErrorBody = 1024 * 1024
)

func (p *proc) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", p.next)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", p.response)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", p.invocationError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", p.initError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "InvalidRequest", "cutover serves the Lambda Runtime API 2018-06-01 only (no extensions, telemetry or SnapStart restore APIs): "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// apiError answers the runtime in the Runtime API's error shape.
func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	_, _ = w.Write(b)
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

// next hands the process its next invocation, waiting as long as it
// takes. Calling it also ends the process's previous invocation, as on
// Lambda.
func (p *proc) next(w http.ResponseWriter, r *http.Request) {
	rt := p.rt
	// What the previous invocation wrote belongs to it.
	for _, o := range p.outputs {
		o.drain()
	}
	rt.mu.Lock()
	if p.isDying() {
		rt.mu.Unlock()
		apiError(w, http.StatusGone, "InvalidStateTransition", "the process is being stopped")
		return
	}
	if c := p.current; c != nil && !c.finished {
		rt.finishLocked(c, Response{Err: &FunctionError{Type: "Runtime.NoResponse", Message: "RequestId: " + c.id + " Error: the runtime asked for the next invocation without answering this one"}}, nil)
	}
	p.current = nil
	if !p.initDone {
		p.initDone = true
		p.initTimer.Stop()
		d := time.Since(p.started)
		rt.metrics.initDuration.Observe(d.Seconds())
		if !rt.everInit {
			rt.everInit = true
			close(rt.initOnce)
		}
		rt.log.Debug("function process initialised", "process", p.n, "initDurationMs", float64(d.Microseconds())/1000)
	}
	c := p.first
	p.first = nil
	cold := c != nil
	if c == nil && len(rt.waiting) > 0 {
		c = rt.waiting[0]
		rt.waiting = rt.waiting[1:]
	}
	if c == nil {
		p.state = stateIdle
		rt.idle = append(rt.idle, p)
		rt.mu.Unlock()
		select {
		case <-p.wake:
		case <-p.dying:
		case <-r.Context().Done():
		}
		rt.mu.Lock()
		c = p.assigned
		p.assigned = nil
		if c == nil {
			// Stopped, or the runtime hung up: it is not idle any more.
			rt.idle = deleteProc(rt.idle, p)
			if p.state == stateIdle {
				p.state = stateStarting
			}
			rt.mu.Unlock()
			if r.Context().Err() == nil {
				apiError(w, http.StatusGone, "InvalidStateTransition", "the process is being stopped")
			}
			return
		}
		if r.Context().Err() != nil || p.isDying() {
			// It hung up as it was handed the call: another process runs it.
			c.proc = nil
			rt.waiting = append([]*call{c}, rt.waiting...)
			rt.dispatchLocked()
			rt.mu.Unlock()
			return
		}
	}
	p.state = stateBusy
	p.current = c
	p.lastID = c.id
	c.proc = p
	c.cold = cold
	p.invocations++
	now := time.Now()
	c.started = now
	limit := now.Add(rt.cfg.Function.Timeout)
	c.deadline = limit
	if !c.inv.Deadline.IsZero() && c.inv.Deadline.Before(limit) {
		c.deadline = c.inv.Deadline
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { p.timeout(c) })
	rt.metrics.busy.Inc()
	rt.metrics.invocations.Inc()
	if c.cold {
		rt.metrics.coldStarts.Inc()
	}
	rt.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(hdrRequestID, c.id)
	h.Set(hdrDeadline, strconv.FormatInt(c.deadline.UnixMilli(), 10))
	h.Set(hdrFunctionARN, rt.cfg.Function.ARN())
	if c.inv.TraceID != "" {
		h.Set(hdrTraceID, c.inv.TraceID)
	}
	if c.inv.ClientContext != nil {
		h.Set(hdrClientContext, string(c.inv.ClientContext))
	}
	if c.inv.CognitoIdentity != nil {
		h.Set(hdrCognitoIdentity, string(c.inv.CognitoIdentity))
	}
	h.Set("Content-Length", strconv.Itoa(len(c.inv.Payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(c.inv.Payload)
}

func deleteProc(l []*proc, p *proc) []*proc {
	for i, x := range l {
		if x == p {
			return append(l[:i], l[i+1:]...)
		}
	}
	return l
}

// timeout ends an invocation that ran past its deadline: Lambda stops the
// execution environment and starts a fresh one.
func (p *proc) timeout(c *call) {
	rt := p.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c.finished {
		return
	}
	d := time.Since(c.started)
	fe := &FunctionError{Type: "Sandbox.Timedout", Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", c.id, d.Seconds()), Timeout: true}
	resp := Response{Err: fe}
	if c.streaming != nil {
		resp.Streamed = true
	}
	rt.finishLocked(c, resp, nil)
	p.stopLocked(killTimeout, syscall.SIGKILL)
}

// claim finds the invocation a runtime answers for: the one it is running.
func (p *proc) claim(w http.ResponseWriter, r *http.Request) *call {
	id := r.PathValue("id")
	rt := p.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	c := p.current
	switch {
	case c == nil && id == p.lastID:
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" was already answered or timed out")
		return nil
	case c == nil || c.id != id:
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" is running on this runtime")
		return nil
	case c.finished:
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" timed out")
		return nil
	}
	return c
}

// response takes a function's answer, buffered or streamed.
func (p *proc) response(w http.ResponseWriter, r *http.Request) {
	c := p.claim(w, r)
	if c == nil {
		return
	}
	rt := p.rt
	// Whether a response streams is the caller's choice, as on Lambda:
	// the runtime client writes chunked either way (aws-lambda-go always
	// does); Node's sets the response-mode header.
	streamed := c.inv.Stream != nil
	resp := Response{ContentType: r.Header.Get("Content-Type"), Streamed: streamed}
	var body []byte
	var readErr error
	if streamed {
		done := make(chan struct{})
		rt.mu.Lock()
		if c.finished {
			rt.mu.Unlock()
			apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+c.id+" timed out")
			return
		}
		c.streaming = done
		rt.mu.Unlock()
		if s, ok := c.inv.Stream.(StreamStarter); ok {
			s.StartStream(resp.ContentType)
		}
		_, readErr = copyFlush(c.inv.Stream, r.Body)
		close(done)
	} else {
		limit := int64(maxBuffered)
		if r.Header.Get(hdrResponseMode) == "streaming" {
			limit = maxStreamed
		}
		body, readErr = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if readErr == nil && int64(len(body)) > limit {
			rt.mu.Lock()
			rt.finishLocked(c, Response{Err: &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", limit)}}, nil)
			p.current = nil
			rt.mu.Unlock()
			apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("the response is larger than %d bytes", limit))
			return
		}
	}
	if readErr != nil {
		// The process died or the deadline cut it off mid-body: the
		// timeout or the exit reports it.
		return
	}
	resp.Payload = body
	if t := r.Trailer.Get(hdrErrorType); t != "" {
		// A mid-stream error: what was sent stays sent.
		resp.Err = trailerError(t, r.Trailer.Get(hdrErrorBody))
	}
	rt.mu.Lock()
	ok := rt.finishLocked(c, resp, nil)
	if ok {
		p.current = nil
	}
	rt.mu.Unlock()
	if !ok {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+c.id+" timed out")
		return
	}
	accepted(w)
}

// copyFlush copies a streamed body on, flushing each chunk so the caller
// sees it as the function writes it.
func copyFlush(dst io.Writer, src io.Reader) (int64, error) {
	f, _ := dst.(interface{ Flush() })
	buf := make([]byte, 32*1024)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				// The caller went away; keep reading so the function's
				// response completes, as Lambda would.
				dst, f = io.Discard, nil
			}
			if f != nil {
				f.Flush()
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func trailerError(typ, b64 string) *FunctionError {
	fe := &FunctionError{Type: typ, Message: "the function failed while streaming its response"}
	if raw, err := base64.StdEncoding.DecodeString(b64); err == nil && len(raw) > 0 {
		parseErrorBody(fe, raw)
	}
	return fe
}

// parseErrorBody reads {"errorMessage","errorType","stackTrace"}; a body
// that is not that becomes the message.
func parseErrorBody(fe *FunctionError, raw []byte) {
	var body struct {
		Message    *string         `json:"errorMessage"`
		Type       string          `json:"errorType"`
		StackTrace json.RawMessage `json:"stackTrace"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Message == nil && body.Type == "" {
		fe.Message = string(bytes.TrimSpace(raw))
		return
	}
	if body.Message != nil {
		fe.Message = *body.Message
	}
	if body.Type != "" {
		fe.Type = body.Type
	}
	if len(body.StackTrace) > 0 && string(body.StackTrace) != "null" {
		fe.StackTrace = body.StackTrace
	}
}

// readError reads an error a runtime posts.
func readError(r *http.Request) *FunctionError {
	fe := &FunctionError{Type: r.Header.Get(hdrErrorType)}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
	if len(raw) > 0 {
		parseErrorBody(fe, raw)
	}
	if fe.Type == "" {
		fe.Type = "Unhandled"
	}
	return fe
}

// invocationError takes the error a function reports for an invocation.
func (p *proc) invocationError(w http.ResponseWriter, r *http.Request) {
	c := p.claim(w, r)
	if c == nil {
		return
	}
	fe := readError(r)
	rt := p.rt
	rt.mu.Lock()
	ok := rt.finishLocked(c, Response{Err: fe}, nil)
	if ok {
		p.current = nil
	}
	rt.mu.Unlock()
	if !ok {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+c.id+" timed out")
		return
	}
	accepted(w)
}

// initError takes the error a runtime reports when it cannot init. Lambda
// then discards the execution environment; the runtime stops this one.
func (p *proc) initError(w http.ResponseWriter, r *http.Request) {
	rt := p.rt
	rt.mu.Lock()
	if p.initDone {
		rt.mu.Unlock()
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "init errors are reported before the first invocation")
		return
	}
	rt.mu.Unlock()
	fe := readError(r)
	fe.Crash = true
	if r.Header.Get(hdrErrorType) == "" && fe.Type == "Unhandled" {
		fe.Type = "Runtime.Unknown"
	}
	rt.log.Warn("function init failed", "process", p.n, "errorType", fe.Type, "errorMessage", fe.Message)
	accepted(w)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	rt.mu.Lock()
	p.initErr = fe
	p.stopLocked(killInitError, syscall.SIGKILL)
	rt.mu.Unlock()
}

// slogErrorLog sends net/http's own complaints to the runtime's log.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}
