package prometheus

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/metrics"
)

// FuzzParseResponse feeds arbitrary answers to the parser of Prometheus'
// API: it must never panic, and an answer it accepts is one value or an
// empty result, never both.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		vector("1"), vector("NaN"), vector("+Inf"), emptyVector, badData("parse error"),
		`{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		`{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"1"]},{"metric":{},"value":[1,"2"]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}`,
		`{"status":"success","data":null}`, `{"status":"error"}`, `<html>401</html>`, ``, `null`, `[]`,
	} {
		for _, status := range []int{200, 400, 401, 404, 422, 503} {
			f.Add(status, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := parseResponse(status, body)
		if err != nil {
			if !math.IsNaN(r.Value) {
				t.Fatalf("an error with a value %v", r.Value)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a message on several lines: %q", err)
			}
			return
		}
		if r.Empty && !math.IsNaN(r.Value) {
			t.Fatalf("empty with a value %v", r.Value)
		}
	})
}

// FuzzQueryTemplate feeds arbitrary query templates and side names to
// compile and render: a template is accepted or refused with an error
// naming the query, never a panic, and an accepted one renders for any
// side settings.
func FuzzQueryTemplate(f *testing.F) {
	for _, q := range Presets {
		f.Add(q.Requests, "be_payments", "legacy1")
		f.Add(q.P99, `weird "name"\`, `a.b|c`)
	}
	paths, _ := filepath.Glob("testdata/*/settings.yaml")
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		f.Add(string(b), "be", "srv")
	}
	f.Add("{{.Side", "", "")
	f.Add("{{range .}}{{end}}", "x", "y")
	f.Add("{{template \"x\"}}", "x", "y")
	f.Add("{{.Window | printf \"%s%s\" .Service}}", "x", "")
	f.Fuzz(func(t *testing.T, query, backend, server string) {
		c, err := compile("requests", query)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "queries.requests: ") {
				t.Fatalf("error does not name the query: %v", err)
			}
			return
		}
		p := &Provider{service: "svc", sides: map[metrics.Side]SideSettings{
			metrics.New: {Backend: backend, Servers: []string{server}},
		}}
		v := p.vars(metrics.New, 0)
		// Escaped for a double-quoted PromQL string (Go's rules): it
		// reads back as the name itself.
		if utf8.ValidString(backend) {
			if got, err := strconv.Unquote(`"` + v.Backend + `"`); err != nil || got != backend {
				t.Fatalf("backend %q escaped as %q reads back as %q (%v)", backend, v.Backend, got, err)
			}
		}
		if utf8.ValidString(server) {
			re, err := strconv.Unquote(`"` + v.Servers + `"`)
			if err != nil {
				t.Fatalf("servers %q escaped as %q: %v", server, v.Servers, err)
			}
			if m, err := regexp.MatchString("^(?:"+re+")$", server); err != nil || !m {
				t.Fatalf("regex %q does not match server %q (%v)", re, server, err)
			}
		}
		c.render(v)
	})
}
