// Command loadgen sends constant load to a URL from its own process and
// counts every request by class, so the end-to-end shift tests can prove
// what clients saw. On SIGTERM or at the end of -duration it writes a JSON
// summary to -out.
//
// Classes: "get" (idempotent), "post-key" (POST with an Idempotency-Key,
// idempotent), "post" (POST without a key: not idempotent). A failure is a
// transport error or a status that is not 2xx. A failed "post" whose error
// answer carries "X-Cutover-Side: new" reached the new side, which is the
// only failure a shift may cause for non-idempotent requests when the new
// side dies.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type class struct {
	Sent   atomic.Int64
	Failed atomic.Int64
	// FailedNew counts failures marked as coming from the new side.
	FailedNew atomic.Int64
}

type summary struct {
	Class     string   `json:"class"`
	Sent      int64    `json:"sent"`
	Failed    int64    `json:"failed"`
	FailedNew int64    `json:"failed_new"`
	Samples   []string `json:"samples,omitempty"`
}

func main() {
	url := flag.String("url", "", "target base URL")
	rps := flag.Int("rps", 200, "requests per second")
	duration := flag.Duration("duration", time.Hour, "stop after this long")
	out := flag.String("out", "", "write the JSON summary here")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	classes := map[string]*class{"get": {}, "post-key": {}, "post": {}}
	var mu sync.Mutex
	samples := map[string][]string{}
	note := func(c, s string) {
		mu.Lock()
		if len(samples[c]) < 20 {
			samples[c] = append(samples[c], time.Now().Format("15:04:05.000")+" "+s)
		}
		mu.Unlock()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(*rps))
	defer tick.Stop()
	sem := make(chan struct{}, 128)
loop:
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := "get"
			var req *http.Request
			switch n % 10 {
			case 0, 1:
				name = "post-key"
				req, _ = http.NewRequest(http.MethodPost, *url+"/pay", strings.NewReader(`{"amount":100}`))
				req.Header.Set("Idempotency-Key", fmt.Sprintf("k-%d", n))
			case 2:
				name = "post"
				req, _ = http.NewRequest(http.MethodPost, *url+"/log", strings.NewReader(`{"event":"x"}`))
			default:
				req, _ = http.NewRequest(http.MethodGet, *url+"/balance", nil)
			}
			req.Header.Set("X-User-Id", fmt.Sprint(rand.IntN(5000)))
			c := classes[name]
			c.Sent.Add(1)
			// Requests in flight when the run ends are still counted: the
			// client waits for them (no context cancellation).
			resp, err := hc.Do(req)
			if err != nil {
				c.Failed.Add(1)
				note(name, err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				c.Failed.Add(1)
				side := resp.Header.Get("X-Cutover-Side")
				if side == "new" {
					c.FailedNew.Add(1)
				}
				note(name, fmt.Sprintf("%d side=%q", resp.StatusCode, side))
			}
		}(n)
	}
	wg.Wait()
	var res []summary
	for _, name := range []string{"get", "post-key", "post"} {
		c := classes[name]
		res = append(res, summary{Class: name, Sent: c.Sent.Load(), Failed: c.Failed.Load(), FailedNew: c.FailedNew.Load(), Samples: samples[name]})
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if *out == "" {
		fmt.Println(string(b))
		return
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
