package source

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/service"
)

const doc = `{
  "taskDefinition": {
    "family": "web",
    "containerDefinitions": [
      {
        "name": "app",
        "memory": 512,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "x"}},
        "links": null,
        "hostname": ""
      }
    ],
    "mystery": {"a": 1, "b": [2, 3]}
  }
}`

func TestPositionsLines(t *testing.T) {
	p, err := ParsePositions("td.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]int{
		"taskDefinition.family":                         3,
		"taskDefinition.containerDefinitions[0].memory": 7,
		"taskDefinition.containerDefinitions[0].nope":   5, // falls back to the container
		"taskDefinition.mystery.b[1]":                   13,
	}
	for path, want := range cases {
		if got := p.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	sub := p.Sub("taskDefinition")
	if got := sub.Line("containerDefinitions[0].memory"); got != 7 {
		t.Errorf("Sub Line = %d, want 7", got)
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	_, err := ParsePositions("bad.yaml", []byte("a: 1\nb: [1, 2\nc: 3\n"))
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want *InputError, got %v", err)
	}
	if ie.File != "bad.yaml" || ie.Line == 0 {
		t.Errorf("error does not name file and line: %v", err)
	}
}

func TestTrackerReportsEveryUnmappedField(t *testing.T) {
	p, err := ParsePositions("td.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var r service.Report
	tr := NewTracker("td.json", p, &r).At("taskDefinition")
	tr.Mapped("family", "metadata.name")
	c := tr.At("containerDefinitions[0]")
	c.Use("name")
	c.Mapped("memory", "resources.limits.memory")
	c.Warn("logConfiguration", "", "logs go to stdout")
	if n := tr.Finish(); n != 1 {
		t.Fatalf("Finish reported %d fields, want 1 (mystery): %+v", n, r.Findings)
	}
	last := r.Findings[len(r.Findings)-1]
	if last.Field != "taskDefinition.mystery" || last.Status != service.Dropped || last.Line != 13 {
		t.Errorf("unexpected finding %+v", last)
	}
	for _, f := range r.Findings {
		if strings.Contains(f.Field, "links") || strings.Contains(f.Field, "hostname") {
			t.Errorf("null or empty field reported: %+v", f)
		}
	}
}

func TestLookupRefusesUnknownFormat(t *testing.T) {
	_, err := Lookup("cloudformation-nope")
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("want ErrUnknownFormat, got %v", err)
	}
}

// laughs returns a "billion laughs" document: anchor a is first, and each
// of the anchors b to i is level applied to ten aliases of the one before
// ("*a, *a, …").
func laughs(first string, level func(refs string) string) string {
	doc := "a: &a " + first + "\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		doc += n + ": &" + n + " " + level(strings.Repeat("*"+prev+", ", 9)+"*"+prev) + "\n"
		prev = n
	}
	return doc
}

// Regression: indexing expanded aliases, so a "billion laughs" document of
// a few hundred bytes kept the indexer busy for tens of seconds.
func TestPositionsDoNotExpandAliases(t *testing.T) {
	doc := laughs("[x, x, x, x, x, x, x, x, x, x]", func(refs string) string { return "[" + refs + "]" })
	p, err := ParsePositions("laughs.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	// 10^9 paths if expanded; the budget stops at about 10^5.
	if len(p.lines) > 150000 {
		t.Fatalf("indexed %d paths for a 9-line file", len(p.lines))
	}
	merged, err := ParsePositions("m.yaml", []byte("base: &b {image: x, cpu: 1}\nweb:\n  <<: *b\n  port: 80\n"))
	if err != nil {
		t.Fatal(err)
	}
	if merged.Line("web.image") == 0 || merged.Line("web.port") != 4 {
		t.Errorf("merge keys not indexed: %v", merged.lines)
	}
}

// Regression (netbox-docker, sentry self-hosted): a map that merged an
// anchor and then set one of its keys itself indexed the anchor's entries
// under that key too, so the report listed fields the document does not
// have (as "not mapped") and gave the key the anchor's line.
func TestPositionsSkipOverriddenMergedFields(t *testing.T) {
	doc := `x-common: &common
  restart: unless-stopped
  environment:
    LOG_LEVEL: info
x-more: &more
  restart: "no"
  stop_signal: SIGINT
web:
  <<: [*common, *more]
  environment:
    PORT: "8080"
`
	p, err := ParsePositions("compose.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.leaves["web.environment.LOG_LEVEL"] {
		t.Errorf("web.environment.LOG_LEVEL indexed: web's own environment replaces the anchor's")
	}
	for path, want := range map[string]int{
		"web.environment":      10, // its own, not the anchor's line 3
		"web.environment.PORT": 11,
		"web.restart":          2, // the first merge source wins
		"web.stop_signal":      7, // merged fields nobody overrides stay
	} {
		if got := p.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
		if !p.leaves[path] && path != "web.environment" {
			t.Errorf("%s not indexed as a field", path)
		}
	}
}

// A document that merges the same anchors over and over must not take
// exponential time to index: each map is merged once per mapping.
func TestMapEntriesMergeBomb(t *testing.T) {
	doc := laughs("{x: 1, y: 2}", func(refs string) string { return "{<<: [" + refs + "]}" }) + "z: {<<: *i}\n"
	done := make(chan *Positions)
	go func() {
		p, err := ParsePositions("merges.yaml", []byte(doc))
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	select {
	case p := <-done:
		if p != nil && p.Line("z.y") != 1 {
			t.Errorf("z.y: line %d, want 1", p.Line("z.y"))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("indexing 10 merge sources over 8 levels takes more than 10s")
	}
}

// TestDetectNamesTheJSONSyntaxError: a task definition with "#" comments
// gave "cannot tell the input format; name it with --from", hiding the
// syntax error and its line.
func TestDetectNamesTheJSONSyntaxError(t *testing.T) {
	for _, tc := range []struct {
		path, data string
		want       string
	}{
		{"taskdef.json", "{\n  \"family\": \"web\", # task definition\n  \"cpu\": \"256\"\n}\n", "taskdef.json:2: invalid JSON: invalid character '#' looking for beginning of object key string"},
		{"TASKDEF.JSON", "{\n  \"family\": \"web\",\n}\n", "TASKDEF.JSON:3: invalid JSON: invalid character '}' looking for beginning of object key string"},
		{"unknown.json", "{\"hello\": \"world\"}\n", "unknown.json: cannot tell the input format"},
		{"notes.yaml", "a: [1, 2\n# not JSON at all\n", "notes.yaml: cannot tell the input format"},
	} {
		_, err := Detect(File{Path: tc.path, Data: []byte(tc.data)})
		var ie *InputError
		if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Detect(%s) = %v, want an InputError starting %q", tc.path, err, tc.want)
		}
		if _, errAll := DetectAll(File{Path: tc.path, Data: []byte(tc.data)}); errAll == nil || errAll.Error() != err.Error() {
			t.Errorf("DetectAll(%s) = %v, want Detect's %v", tc.path, errAll, err)
		}
	}
}
