package compose

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// caseOptions are the options a golden case runs with, beyond its files.
var caseOptions = map[string]source.Options{
	"profiles":                 {Profiles: []string{"monitoring"}},
	"interpolation-unset-vars": {Env: map[string]string{"REGISTRY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "API_REPLICAS": "4"}},
}

// inputs returns the compose files of a case: every *.yaml / *.yml file
// of the directory, compose.yaml first, overrides after.
func inputs(t *testing.T, dir string) []source.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, oj := strings.Contains(names[i], "override"), strings.Contains(names[j], "override")
		if oi != oj {
			return oj
		}
		return names[i] < names[j]
	})
	var files []source.File
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := source.File{Path: p, Data: data}
		if !(Importer{}).Detect(f) {
			continue // a file the services mount (prometheus.yml)
		}
		files = append(files, f)
	}
	return files
}

func report(svcs []*service.Service) []byte {
	var b strings.Builder
	for _, s := range svcs {
		b.WriteString("# " + s.Name + "\n")
		for _, f := range s.Report.Sorted() {
			b.WriteString(f.String())
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() || filepath.Base(dir) == "errors" || filepath.Base(dir) == "fuzz" {
			continue
		}
		name := filepath.Base(dir)
		ran++
		t.Run(name, func(t *testing.T) {
			files := inputs(t, dir)
			svcs, err := Importer{}.Import(context.Background(), files, caseOptions[name])
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			for _, s := range svcs {
				if err := s.Validate(); err != nil {
					t.Errorf("invalid service: %v", err)
				}
				if len(s.Report.Findings) == 0 {
					t.Errorf("%s: empty report", s.Name)
				}
			}
			golden.AssertJSON(t, filepath.Join(dir, "service.json"), svcs)
			golden.Assert(t, filepath.Join(dir, "report.txt"), report(svcs))
		})
	}
	if ran < 6 {
		t.Fatalf("only %d golden cases found", ran)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		line       int
		field      string
		msg        string
	}{
		{"invalid yaml", "services:\n  web:\n    image: [nginx\n    ports: []\n", 2, "", "cannot parse"},
		{"not a mapping", "- web\n- db\n", 1, "", "mapping"},
		{"services not a map", "services: [web, db]\n", 1, "services", "mapping"},
		{"service not a map", "services:\n  web: nginx\n", 2, "services.web", "mapping"},
		{"no image no build", "services:\n  web:\n    image: nginx:1.27\n  api:\n    command: ./api\n", 4, "services.api", "neither an image nor a build"},
		{"unknown top-level key", "services:\n  web:\n    image: nginx:1.27\nservice_accounts:\n  web: {}\n", 4, "service_accounts", "unknown field"},
		{"unknown service key", "services:\n  web:\n    image: nginx:1.27\n    replicas: 3\n", 4, "services.web.replicas", "unknown field"},
		{"invalid duration", "services:\n  web:\n    image: nginx:1.27\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 10x\n", 6, "services.web.healthcheck.interval", "10x"},
		{"undefined dependency", "services:\n  web:\n    image: nginx:1.27\n    depends_on: [db]\n", 4, "services.web.depends_on", "undefined service"},
		{"undefined volume", "services:\n  web:\n    image: nginx:1.27\n    volumes: [\"data:/data\"]\n", 4, "services.web.volumes", "undefined volume"},
		{"invalid interpolation", "services:\n  web:\n    image: nginx:1.27\n    environment:\n      A: \"${A\"\n", 5, "services.web.environment.A", "interpolation"},
		{"invalid port", "services:\n  web:\n    image: nginx:1.27\n    ports: [\"http:80\"]\n", 4, "services.web.ports[0]", "http"},
		{"wrong type", "services:\n  web:\n    image: nginx:1.27\n    deploy:\n      replicas: many\n", 5, "services.web.deploy.replicas", ""},
		{"empty file", "# nothing\n", 1, "", "mapping"},
		{"alias bomb", bomb(), 0, "", "too many"},
		{"extends file not a string", "services:\n  a:\n    image: nginx:1.27\n  b:\n    extends:\n      file: 0\n      service: a\n", 6, "services.b.extends.file", "string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := source.File{Path: "testdata/errors/compose.yaml", Data: []byte(tc.yaml)}
			_, err := Importer{}.Import(context.Background(), []source.File{f}, source.Options{})
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *source.InputError, got %T %v", err, err)
			}
			if ie.File != f.Path || ie.Line != tc.line || ie.Field != tc.field {
				t.Errorf("error at %s:%d %q, want line %d field %q: %v", ie.File, ie.Line, ie.Field, tc.line, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

// bomb is a "billion laughs" document: nested aliases that expand to far
// more nodes than the file holds.
func bomb() string {
	var b strings.Builder
	b.WriteString("x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		b.WriteString("x-" + n + ": &" + n + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	b.WriteString("services:\n  web:\n    image: nginx:1.27\n    labels: *g\n")
	return b.String()
}

func TestDetect(t *testing.T) {
	cases := []struct {
		path, data string
		want       bool
	}{
		{"deploy/docker-compose.prod.yml", "", true},
		{"compose.yaml", "", true},
		{"stack.yaml", "services:\n  web:\n    image: nginx\n", true},
		{"stack.yaml", "version: '3'\nservices:\n  web:\n    build: .\n  db:\n    image: postgres\n", true},
		{"values.yaml", "services:\n  web:\n    enabled: true\n", false},
		{"openapi.yaml", "openapi: 3.0.0\npaths: {}\n", false},
		{"task.json", `{"family": "web", "containerDefinitions": []}`, false},
		{"web.service", "[Service]\nExecStart=/usr/bin/web\n", false},
	}
	for _, tc := range cases {
		if got := (Importer{}).Detect(source.File{Path: tc.path, Data: []byte(tc.data)}); got != tc.want {
			t.Errorf("Detect(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestRegistered(t *testing.T) {
	imp, err := source.Lookup("compose")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := imp.(Importer); !ok {
		t.Errorf("compose is registered as %T", imp)
	}
}

// FuzzCompose feeds arbitrary bytes to Import: it may fail, with an
// *InputError or a validation error, but never panic.
func FuzzCompose(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/*/*.y*ml")
	for _, p := range dirs {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(bomb()))
	f.Add([]byte("services:\n  a:\n    image: ${X:?boom}\n    ports: [\"${P}:80\"]\n"))
	f.Add([]byte("x-a: &a\n  init: true\nservices:\n  a:\n    image: x:1\n    extends: b\n  \"b\":\n    <<: *a\n    extends:\n      service: c\n  c:\n    image: y:1\n    read_only: true\n    volumes:\n      - type: bind\n        source: ${S:?}\n        target: /s\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a bug too: crash so the fuzzer keeps the input.
		watchdog := time.AfterFunc(10*time.Second, func() { panic("Import did not return in 10s") })
		defer watchdog.Stop()
		file := source.File{Path: filepath.Join(dir, "compose.yaml"), Data: data}
		svcs, err := Importer{}.Import(context.Background(), []source.File{file}, source.Options{})
		if err != nil {
			return
		}
		for _, s := range svcs {
			if err := s.Validate(); err != nil {
				t.Fatalf("Import returned an invalid service: %v", err)
			}
		}
	})
}

// TestSecretValuesNeverLeave pins the rule that cutover never writes a
// secret value: the secrets in the golden inputs, and the values of the
// secret-looking variables of their .env files (which the files
// interpolate into images, labels, commands…), must not appear in what
// Import returns.
func TestSecretValuesNeverLeave(t *testing.T) {
	for _, dir := range []string{"testdata/secrets-and-env-files", "testdata/web-db-worker", "testdata/secret-interpolated", "testdata/secret-interpolated-fields"} {
		secrets := []string{"sk_live_THIS_IS_NOT_READ", "changeme-in-prod", "postgres://payments:payments@", "BEGIN PRIVATE KEY"}
		if env, err := os.ReadFile(filepath.Join(dir, ".env")); err == nil {
			for _, line := range strings.Split(string(env), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok && v != "" && secretLooking(k, v) {
					secrets = append(secrets, v)
				}
			}
		}
		svcs, err := Importer{}.Import(context.Background(), inputs(t, dir), source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(svcs)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("%s: output contains the secret %q", dir, s)
			}
		}
	}
}

// TestExtendsFromAnotherFile: compose-go merges `extends` from a file
// beside the compose file; the merged fields are converted and the
// extends key is reported.
func TestExtendsFromAnotherFile(t *testing.T) {
	dir := t.TempDir()
	common := "services:\n  base:\n    image: ghcr.io/acme/base:1.0.0\n    environment:\n      LOG_FORMAT: json\n"
	if err := os.WriteFile(filepath.Join(dir, "common.yaml"), []byte(common), 0o644); err != nil {
		t.Fatal(err)
	}
	main := "services:\n  api:\n    extends:\n      file: common.yaml\n      service: base\n    command: [\"serve\"]\n"
	f := source.File{Path: filepath.Join(dir, "compose.yaml"), Data: []byte(main)}
	svcs, err := Importer{}.Import(context.Background(), []source.File{f}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 {
		t.Fatalf("got %d services, want 1", len(svcs))
	}
	c := svcs[0].Main()
	if c.Image != "ghcr.io/acme/base:1.0.0" || svcs[0].Config["LOG_FORMAT"] != "json" || strings.Join(c.Args, " ") != "serve" {
		t.Errorf("extends not merged: image %q config %v args %v", c.Image, svcs[0].Config, c.Args)
	}
	var reported bool
	for _, fd := range svcs[0].Report.Findings {
		if fd.Field == "services.api.extends" && fd.Status == service.Mapped && fd.Line == 3 {
			reported = true
		}
	}
	if !reported {
		t.Errorf("extends not reported: %v", svcs[0].Report.Findings)
	}
}

// TestDirectoriesAreSeparateProjects: files in one directory merge, as
// with docker compose -f a -f b; another directory is another project.
func TestDirectoriesAreSeparateProjects(t *testing.T) {
	a := source.File{Path: filepath.Join(t.TempDir(), "compose.yaml"), Data: []byte("services:\n  web:\n    image: nginx:1.27\n")}
	b := source.File{Path: filepath.Join(t.TempDir(), "compose.yaml"), Data: []byte("services:\n  web:\n    image: httpd:2.4\n")}
	svcs, err := Importer{}.Import(context.Background(), []source.File{a, b}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || svcs[0].Main().Image != "nginx:1.27" || svcs[1].Main().Image != "httpd:2.4" {
		t.Errorf("projects mixed up: %d services", len(svcs))
	}
}

// TestErrorInIncludedFile: compose-go fails on an included file; the
// error names that file and line, not the including one. (An unset
// ${A_TAG:?} there is no error: it becomes a value to fill, as in a
// named file; see testdata/include-unset-vars.)
func TestErrorInIncludedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub", "a.yaml")
	if err := os.WriteFile(sub, []byte("services:\n  a:\n    image: ghcr.io/x/a:${A_TAG:?set A_TAG}\n    mem_limit: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := source.File{Path: filepath.Join(dir, "compose.yaml"), Data: []byte("include:\n  - sub/a.yaml\nservices:\n  web:\n    image: nginx:1.27\n")}
	_, err := Importer{}.Import(context.Background(), []source.File{main}, source.Options{})
	var ie *source.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want *source.InputError, got %T %v", err, err)
	}
	if ie.File != sub || ie.Line != 4 || ie.Field != "services.a.mem_limit" {
		t.Errorf("error at %s:%d %q, want %s:4 services.a.mem_limit: %v", ie.File, ie.Line, ie.Field, sub, err)
	}
	if !strings.Contains(err.Error(), "lots") {
		t.Errorf("error %q does not quote the value", err)
	}
}

// TestUnsetVariableInIncludedFileWhereNoValueCanStand: an included file
// whose size field is an unset variable fails (compose-go reads it, and
// "" is no size), and the error says which variable to set.
func TestUnsetVariableInIncludedFileWhereNoValueCanStand(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "queue.yaml")
	if err := os.WriteFile(sub, []byte("services:\n  queue:\n    image: rabbitmq:3.13\n    mem_limit: ${QUEUE_MEM}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := source.File{Path: filepath.Join(dir, "compose.yaml"), Data: []byte("include:\n  - queue.yaml\nservices:\n  web:\n    image: nginx:1.27\n")}
	_, err := Importer{}.Import(context.Background(), []source.File{main}, source.Options{})
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.File != sub || ie.Line != 4 || !strings.Contains(err.Error(), "$QUEUE_MEM, which is not set") {
		t.Fatalf("got %v", err)
	}
	// The advice named a --env flag that convert does not have.
	if !strings.Contains(err.Error(), "set it "+setVarAdvice) || strings.Contains(err.Error(), "--env ") {
		t.Errorf("error does not say how to set the variable: %v", err)
	}
	// Set, it converts.
	svcs, err := Importer{}.Import(context.Background(), []source.File{main}, source.Options{Env: map[string]string{"QUEUE_MEM": "512m"}})
	if err != nil || len(svcs) != 2 {
		t.Fatalf("with QUEUE_MEM set: %d services, %v", len(svcs), err)
	}
}

// TestComposeGoLogsNothing: compose-go logged raw logrus lines to stderr
// (`level=warning msg="The \"DB_PORT\" variable is not set…"`) beside the
// report, which says the same at the field's line (padrao-infra).
func TestComposeGoLogsNothing(t *testing.T) {
	var buf strings.Builder
	prev := logrus.StandardLogger().Out
	logrus.SetOutput(&buf)
	defer logrus.SetOutput(prev)
	dir := t.TempDir()
	f := source.File{Path: filepath.Join(dir, "compose.yaml"), Data: []byte("services:\n  db:\n    image: postgres:18-alpine\n    container_name: ${ENV}-postgres\n    ports:\n      - \"${DB_BIND_IP:-127.0.0.1}:${DB_PORT}:5432\"\n    volumes:\n      - db_data:/var/lib/postgresql/data\nvolumes:\n  db_data:\n    name: ${ENV}_db_data\n")}
	svcs, err := Importer{}.Import(context.Background(), []source.File{f}, source.Options{})
	if err != nil || len(svcs) != 1 {
		t.Fatalf("Import: %d services, %v", len(svcs), err)
	}
	if buf.Len() > 0 {
		t.Errorf("compose-go logged:\n%s", buf.String())
	}
	// compose-go substituted the rest of "${DB_BIND_IP:-127.0.0.1}:${DB_PORT}:5432"
	// itself: DB_PORT became blank (and logged), the report never named it.
	for _, want := range []string{"uses $ENV, which is not set", "host port from $DB_PORT, which is not set"} {
		if !strings.Contains(string(report(svcs)), want) {
			t.Errorf("the report does not say %q:\n%s", want, report(svcs))
		}
	}
	if logrus.StandardLogger().Out != io.Writer(&buf) {
		t.Errorf("logrus output not restored")
	}
}
