package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesPageAndAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	res, body := fetch(t, http.MethodGet, srv.URL+"/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / Content-Type = %q, want text/html", ct)
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}

	// Every asset the page names is served, with the type a browser needs
	// to run it (a module script served as text/plain does not run).
	refs := regexp.MustCompile(`(?:src|href)="(assets/[^"]+)"`).FindAllStringSubmatch(string(body), -1)
	if len(refs) < 3 {
		t.Fatalf("the page names %d assets, want its script, style and icon", len(refs))
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	for _, ref := range refs {
		res, b := fetch(t, http.MethodGet, srv.URL+"/"+ref[1], nil)
		if res.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("GET %s: %s, %d bytes", ref[1], res.Status, len(b))
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType[filepath.Ext(ref[1])]) {
			t.Errorf("GET %s Content-Type = %q", ref[1], ct)
		}
	}
	// The module the page loads imports chart.js by a relative path.
	if res, _ := fetch(t, http.MethodGet, srv.URL+"/assets/chart.js", nil); res.StatusCode != http.StatusOK {
		t.Errorf("GET /assets/chart.js: %s", res.Status)
	}

	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("GET / has no ETag")
	}
	if res, _ := fetch(t, http.MethodGet, srv.URL+"/", http.Header{"If-None-Match": {etag}}); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with its ETag: %s, want 304", res.Status)
	}
	if res, b := fetch(t, http.MethodHead, srv.URL+"/", nil); res.StatusCode != http.StatusOK || len(b) != 0 {
		t.Errorf("HEAD /: %s with %d bytes", res.Status, len(b))
	}
	for _, p := range []string{"/assets/index.html", "/assets/nope.js", "/v1/shift", "/index.html", "/assets/"} {
		if res, _ := fetch(t, http.MethodGet, srv.URL+p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, res.Status)
		}
	}
	if res, _ := fetch(t, http.MethodPost, srv.URL+"/", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %s, want 405", res.Status)
	}
}

func fetch(t *testing.T, method, url string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}
