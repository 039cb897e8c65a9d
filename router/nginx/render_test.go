package nginx

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/router"
)

func TestSideWeights(t *testing.T) {
	for _, c := range []struct {
		pct, kl, kn, wl, wn int
	}{
		{0, 2, 2, 1, 0},
		{100, 2, 2, 0, 1},
		{10, 1, 1, 9, 1},
		{50, 1, 1, 1, 1},
		{10, 3, 1, 3, 1},
		{33, 2, 3, 67, 22},
		{37, 7, 3, 27, 37},
	} {
		wl, wn := sideWeights(c.pct, c.kl, c.kn)
		if wl != c.wl || wn != c.wn {
			t.Errorf("sideWeights(%d, %d, %d) = %d, %d; want %d, %d", c.pct, c.kl, c.kn, wl, wn, c.wl, c.wn)
		}
	}
}

// TestSideWeightsExact: every percentage over many shapes is exact, with
// weights of at least 1 on the side that takes traffic.
func TestSideWeightsExact(t *testing.T) {
	for kl := 1; kl <= 8; kl++ {
		for kn := 1; kn <= 8; kn++ {
			for pct := 1; pct < 100; pct++ {
				wl, wn := sideWeights(pct, kl, kn)
				if wl < 1 || wn < 1 || 100*kn*wn != pct*(kn*wn+kl*wl) {
					t.Fatalf("sideWeights(%d, %d, %d) = %d, %d: not exact", pct, kl, kn, wl, wn)
				}
			}
		}
	}
}

// TestRender pins the include file for a few shapes (golden files under
// testdata/render/<case>/; -update rewrites them).
func TestRender(t *testing.T) {
	for _, c := range []struct {
		name string
		pct  int
		b    router.Backends
		s    Settings
	}{
		{"start", 0, router.Backends{Service: "payments-api", Legacy: []string{"http://10.20.1.11:8080", "http://10.20.1.12:8080"}, New: []string{"http://payments-api.payments-prod.svc.cluster.local:8080"}}, Settings{}},
		{"ten-percent", 10, router.Backends{Service: "payments-api", Legacy: []string{"http://10.20.1.11:8080", "http://10.20.1.12:8080"}, New: []string{"http://payments-api.payments-prod.svc.cluster.local:8080"}}, Settings{}},
		{"stickiness-and-keepalive", 33, router.Backends{Service: "payments-api", Legacy: []string{"10.20.1.11:8080", "unix:/run/payments.sock"}, New: []string{"https://new-1.internal", "https://new-2.internal", "https://new-3.internal"}},
			Settings{Upstream: "payments_api", ServerParams: "max_fails=3 fail_timeout=10s", Directives: []string{"hash $cookie_cutover_user consistent", "keepalive 32"}}},
		{"done", 100, router.Backends{Service: "payments-api", Legacy: []string{"http://10.20.1.11:8080"}, New: []string{"http://10.30.0.5:8080"}}, Settings{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.s
			s.Include, s.Status = "/etc/nginx/cutover/payments-api.conf", "127.0.0.1:8099"
			r, err := New(context.Background(), c.b, func(v any) error { *v.(*Settings) = s; return nil })
			if err != nil {
				t.Fatal(err)
			}
			out, st := r.(*Router).f.render(c.pct, "golden")
			golden.Assert(t, filepath.Join("testdata", "render", c.name, "payments-api.conf"), out)
			head, err := parseHeader(string(out))
			if err != nil || head != st {
				t.Fatalf("header %+v %v, want %+v", head, err, st)
			}
			if !strings.Contains(string(out), fmt.Sprintf("return 200 \"%s\\n\";", st.line())) {
				t.Fatalf("status location does not answer the header's line")
			}
		})
	}
}

func TestKeyLine(t *testing.T) {
	for in, want := range map[string]string{
		"nginx: [emerg] 19910#19910: unknown directive \"x\" in /a.conf:9\nnginx: configuration file /n.conf test failed\n": `[emerg] unknown directive "x" in /a.conf:9`,
		"nginx: [alert] kill(123, 1) failed (3: No such process)\n":                                                         "[alert] kill(123, 1) failed (3: No such process)",
		"Failed to reload nginx.service: Unit nginx.service not found.\n":                                                   "Failed to reload nginx.service: Unit nginx.service not found.",
		"": "",
	} {
		if got := keyLine(in); got != want {
			t.Errorf("keyLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDump(t *testing.T) {
	d := parseDump(`nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
# configuration file /etc/nginx/nginx.conf:
user www-data;
# worker_shutdown_timeout 10s;
events { worker_connections 768; }
http { include /etc/nginx/cutover/*.conf; }

# configuration file /etc/nginx/cutover/payments-api.conf:
upstream payments-api { server 10.0.0.1:80 weight=1; }
`)
	if d.shutdownTimeout {
		t.Errorf("a commented-out worker_shutdown_timeout counted")
	}
	if !d.includes("/etc/nginx/cutover/payments-api.conf") || d.includes("/etc/nginx/cutover/other.conf") {
		t.Errorf("files %v", d.files)
	}
	if !parseDump("events {} worker_shutdown_timeout 30s; http {}").shutdownTimeout {
		t.Errorf("worker_shutdown_timeout on a shared line missed")
	}
}

// FuzzParseStatus: whatever the status address answers, parseStatus
// gives weights that sum to 100 or an error, never a panic.
func FuzzParseStatus(f *testing.F) {
	f.Add("cutover upstream=payments-api generation=golden legacy=90 new=10 digest=0123456789abcdef\n")
	f.Add("cutover upstream=a generation=b legacy=100 new=0 digest=c legacy=1")
	f.Add("<html>502 Bad Gateway</html>")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStatus(s)
		if err == nil && (st.Weights[0]+st.Weights[1] != 100 || st.Weights[0] < 0 || st.Weights[1] < 0) {
			t.Fatalf("parseStatus(%q) = %+v", s, st)
		}
		parseHeader(s)
	})
}

// FuzzParseDump: any `nginx -T` output parses without a panic.
func FuzzParseDump(f *testing.F) {
	f.Add("# configuration file /etc/nginx/nginx.conf:\nworker_shutdown_timeout 30s;\n")
	f.Add("# configuration file :\n#\n;;")
	f.Fuzz(func(t *testing.T, s string) {
		d := parseDump(s)
		d.includes("/etc/nginx/cutover/p.conf")
		d.includes("p.conf")
	})
}
