package sim

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// runFor runs l for d and waits for it to stop.
func runFor(l *Load, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.Run(ctx) }()
	wg.Wait()
}

func TestLoadCountsWhatClientsSee(t *testing.T) {
	b, err := StartBackend("legacy", time.Millisecond, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := &Load{URL: b.URL, RPS: 200}
	start := time.Now()
	runFor(l, 500*time.Millisecond)
	c := l.Counts()
	if c.Requests < 50 || c.Errors != 0 || c.Refused != 0 {
		t.Fatalf("healthy backend: %+v", c)
	}
	qs, n := l.Quantiles(start, time.Now(), 0.5, 0.99)
	if n != int(c.Requests) || qs[0] < time.Millisecond || qs[1] < qs[0] {
		t.Errorf("quantiles %v over %d requests", qs, n)
	}
	if w := l.Window(start, time.Now()); w != c {
		t.Errorf("window %+v, counts %+v", w, c)
	}
	if w := l.Window(time.Now(), time.Now().Add(time.Hour)); w.Requests != 0 {
		t.Errorf("window after the run: %+v", w)
	}

	b.Fail()
	failStart := time.Now()
	runFor(l, 300*time.Millisecond)
	d := l.Counts().Sub(c)
	if w := l.Window(failStart, time.Now()); w != d {
		t.Errorf("window of the failing run %+v, counts %+v", w, d)
	}
	if d.Requests == 0 || d.Errors != d.Requests {
		t.Errorf("failing backend: %+v, want every request an error", d)
	}
	if b.FirstFailure().IsZero() {
		t.Error("no first failure recorded")
	}
	f := l.Failures()
	if len(f) == 0 || f[0].Status != 500 || f[0].Method == "" {
		t.Errorf("failures %+v", f)
	}
	b.Heal()
	if !b.FirstFailure().IsZero() {
		t.Error("Heal kept the first failure")
	}
}

func TestLoadSeesRefusedConnectionsAndRejections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	l := &Load{URL: "http://" + addr, RPS: 100, FreshEvery: 2}
	runFor(l, 200*time.Millisecond)
	if c := l.Counts(); c.Refused == 0 || c.Refused != c.Errors {
		t.Errorf("closed port: %+v, want refused connections", c)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Idempotency-Key") == "" {
			t.Error("a POST without an Idempotency-Key")
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	l = &Load{URL: srv.URL, RPS: 100, Path: "/probe"}
	runFor(l, 200*time.Millisecond)
	if c := l.Counts(); c.Rejected == 0 || c.Errors != 0 {
		t.Errorf("4xx answers: %+v, want rejections, not errors", c)
	}
}
