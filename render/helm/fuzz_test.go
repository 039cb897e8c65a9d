package helm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/source"
)

// FuzzTemplate feeds Template what users edit: the service values file.
// Whatever it holds, rendering must not panic, and a values problem must
// come back as an error (an *InputError where a file is to blame).
//
// Each run goes through Helm's engine, so an execution takes milliseconds;
// bound the minimization of the (large) seed files or it takes the whole
// run: go test -run '^$' -fuzz FuzzTemplate -fuzztime 60s -fuzzminimizetime 50x
func FuzzTemplate(f *testing.F) {
	base := map[string]render.Tree{}
	for _, name := range []string{"server-routes", "worker-sqs", "secrets", "cron", "efs"} {
		_, _, tree := renderCase(f, filepath.Join("testdata", name))
		base[name] = tree
	}
	cases, _ := filepath.Glob("testdata/*/out/values/services/*.yaml")
	for _, p := range cases {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("kind: server\ncontainers: [{name: a, image: b}]\nenvironments: {prod: {replicas: 0, pdb: null}}\n"))
	f.Add([]byte("kind: job\ncontainers: [{name: a, imageFill: x}]\nfill: {x: \"${X}\"}\n"))
	f.Add([]byte("kind: worker\ncontainers: [{name: a, image: b}]\nkeda: {triggers: [{type: aws-sqs-queue, auth: aws, metadata: {queueURL: x}, metadataFill: {queueURL: q}}]}\n"))
	f.Add([]byte("containers:\n  - &a {name: a, image: b}\n  - *a\n"))
	f.Add([]byte("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree := render.Tree{}
		for k, v := range base["server-routes"] {
			tree[k] = v
		}
		tree[ServiceValuesFile("orders-api")] = data
		out, err := TemplateTree(context.Background(), tree, "orders-api", "prod")
		if err != nil {
			var ie *source.InputError
			if errors.As(err, &ie) && ie.File == "" {
				t.Errorf("an InputError naming no file: %v", err)
			}
			return
		}
		if len(out) > 0 && !strings.HasPrefix(string(out), "---\n# Source: ") {
			t.Errorf("output not in helm template's form: %.80q", out)
		}
	})
}

// FuzzRoutePath: whatever path, method and host an input routes, what
// reaches the HTTPRoute is something Gateway API accepts.
func FuzzRoutePath(f *testing.F) {
	for _, s := range []string{"", "/", "/orders/{id}", "/a/*", "$default", "//x/./y/../z", "/%2F/a", "/a?b", "/ü", "orders", "/a/{proxy+}/b", "/x#frag"} {
		f.Add(s, "GET", "api.example.com")
	}
	f.Add("/a", "any", "*.Example.COM:8443")
	f.Add("/a", "PURGE", "10.0.0.1")
	f.Fuzz(func(t *testing.T, p, method, host string) {
		out, _ := routePath(p)
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") || strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") ||
			strings.Contains(out, "/./") || strings.Contains(out, "/../") || strings.Contains(strings.ToLower(out), "%2f") || strings.Contains(out, "#") {
			t.Fatalf("routePath(%q) = %q: not a Gateway API path", p, out)
		}
		if len(out) > 1 {
			for _, seg := range strings.Split(out[1:], "/") {
				if !validPathSegment(seg) {
					t.Fatalf("routePath(%q) = %q: segment %q", p, out, seg)
				}
			}
		}
		if m, ok := routeMethod(method); ok && m != "" && !httpMethods[m] {
			t.Fatalf("routeMethod(%q) = %q", method, m)
		}
		if h, ok := routeHost(host); ok && !hostnameRE.MatchString(h) {
			t.Fatalf("routeHost(%q) = %q", host, h)
		}
	})
}
