package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	dataplane "github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/router/routertest"
)

func side(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return s
}

// TestConformanceInProcess runs the router suite against an in-process
// proxy started from plan settings, with real traffic through it.
func TestConformanceInProcess(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			legacy, newer := side(t, "legacy"), side(t, "new")
			settings := func(v any) error {
				s := v.(*Settings)
				s.Listen = "127.0.0.1:0"
				s.StickyCookie = "-" // no stickiness: each request is drawn anew
				return nil
			}
			r, err := New(context.Background(), router.Backends{Legacy: []string{legacy.URL}, New: []string{newer.URL}}, settings)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.(*Router).Close() })
			return r
		},
		Send: func(t *testing.T, r router.Router, n int) (int, int) {
			return routertest.Send(t, "http://"+r.(*Router).Addr(), n)
		},
		External: func(t *testing.T, r router.Router, w router.Weights) {
			// The in-process proxy, set by another part of the process.
			if err := r.(*Router).Proxy().SetWeights(dataplane.Weights{Legacy: w.Legacy, New: w.New}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestConformanceRemote drives a separate proxy through its admin API.
func TestConformanceRemote(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			legacy, newer := side(t, "legacy"), side(t, "new")
			p, err := dataplane.New(dataplane.Config{Legacy: []string{legacy.URL}, New: []string{newer.URL}, Weights: dataplane.Weights{Legacy: 100}, AdminToken: "remote-token-0123456789", StickyCookie: "-"})
			if err != nil {
				t.Fatal(err)
			}
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			go p.Serve(ln)
			admin := httptest.NewServer(p.AdminHandler())
			t.Cleanup(func() { admin.Close(); p.Close() })
			t.Setenv("CUTOVER_PROXY_TOKEN", "remote-token-0123456789")
			r, err := New(context.Background(), router.Backends{}, func(v any) error { v.(*Settings).Admin = admin.URL; return nil })
			if err != nil {
				t.Fatal(err)
			}
			traffic[r] = "http://" + ln.Addr().String()
			proxies[r] = p
			return r
		},
		Send: func(t *testing.T, r router.Router, n int) (int, int) { return routertest.Send(t, traffic[r], n) },
		External: func(t *testing.T, r router.Router, w router.Weights) {
			// The remote proxy, set on the proxy itself as another admin client would.
			if err := proxies[r].SetWeights(dataplane.Weights{Legacy: w.Legacy, New: w.New}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

var proxies = map[router.Router]*dataplane.Proxy{}

var traffic = map[router.Router]string{}

func TestSettingsRefusedClearly(t *testing.T) {
	for _, s := range []Settings{{}, {Listen: "127.0.0.1:0", Admin: "http://x"}} {
		s := s
		_, err := New(context.Background(), router.Backends{Legacy: []string{"http://127.0.0.1:1"}, New: []string{"http://127.0.0.1:2"}}, func(v any) error { *v.(*Settings) = s; return nil })
		if err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	t.Setenv("CUTOVER_PROXY_TOKEN", "")
	if _, err := New(context.Background(), router.Backends{}, func(v any) error { v.(*Settings).Admin = "http://127.0.0.1:1"; return nil }); err == nil {
		t.Errorf("remote proxy without a token accepted")
	}
}
