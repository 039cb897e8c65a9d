package systemd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// caseOptions are the options a golden case runs with.
var caseOptions = map[string]source.Options{
	"simple-web": {Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ledger-api:2.3.0"},
}

// inputs returns the unit files of a case directory (recursively, in
// path order); other files there (environment files) are what the units
// read.
func inputs(t *testing.T, dir string) []source.File {
	t.Helper()
	var files []source.File
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f := source.File{Path: p, Data: data}
		if (Importer{}).Detect(f) {
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
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
		if st, err := os.Stat(dir); err != nil || !st.IsDir() || filepath.Base(dir) == "fuzz" {
			continue
		}
		name := filepath.Base(dir)
		ran++
		t.Run(name, func(t *testing.T) {
			svcs, err := Importer{}.Import(context.Background(), inputs(t, dir), caseOptions[name])
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			for _, s := range svcs {
				if err := s.Validate(); err != nil {
					t.Errorf("invalid service: %v", err)
				}
			}
			golden.AssertJSON(t, filepath.Join(dir, "service.json"), svcs)
			golden.Assert(t, filepath.Join(dir, "report.txt"), report(svcs))
		})
	}
	if ran < 5 {
		t.Fatalf("only %d golden cases found", ran)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, path, unit string
		line             int
		field            string
		msg              string
	}{
		{"no service section", "web.service", "[Unit]\nDescription=web\n\n[Install]\nWantedBy=multi-user.target\n", 1, "[Service]", "no [Service]"},
		{"no ExecStart", "web.service", "[Unit]\nDescription=web\n\n[Service]\nUser=web\n", 4, "Service.ExecStart", "no ExecStart"},
		{"malformed line", "web.service", "[Service]\nExecStart=/usr/bin/web\nthis is not an assignment\n", 3, "Service", "not a Key=Value"},
		{"key outside section", "web.service", "ExecStart=/usr/bin/web\n[Service]\n", 1, "ExecStart", "outside"},
		{"bad section header", "web.service", "[Service\nExecStart=/usr/bin/web\n", 1, "", "section header"},
		{"unterminated quote", "web.service", "[Service]\nExecStart=/usr/bin/web --name \"web\n", 2, "Service.ExecStart", "unterminated"},
		{"bad escape", "web.service", "[Service]\nExecStart=/usr/bin/web \\q\n", 2, "Service.ExecStart", "escape"},
		{"two ExecStart", "web.service", "[Service]\nExecStart=/usr/bin/web\nExecStart=/usr/bin/web2\n", 3, "Service.ExecStart", "oneshot"},
		{"empty command", "web.service", "[Service]\nExecStartPre=-\nExecStart=/usr/bin/web\n", 2, "Service.ExecStartPre", "empty command"},
		{"continued malformed", "web.service", "[Service]\nExecStart=/usr/bin/web \\\n  --flag\nnope\n", 4, "Service", "not a Key=Value"},
		{"not utf-8", "web.service", "[Service]\nExecStart=/usr/bin/\xff\n", 0, "", "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := source.File{Path: "testdata/errors/" + tc.path, Data: []byte(tc.unit)}
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

// TestUnknownKeyIsAWarning: systemd only warns about an unknown key, so
// the conversion goes on and the report says it.
func TestUnknownKeyIsAWarning(t *testing.T) {
	f := source.File{Path: "web.service", Data: []byte("[Service]\nExecStart=/usr/bin/web\nExecStrat=/usr/bin/other\n")}
	svcs, err := Importer{}.Import(context.Background(), []source.File{f}, source.Options{Image: "web:1"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, fd := range svcs[0].Report.Findings {
		if fd.Field == "Service.ExecStrat" && fd.Status == service.Warning && fd.Line == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning for the unknown key: %v", svcs[0].Report.Findings)
	}
}

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`a b  c`, []string{"a", "b", "c"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`'it''s' x`, []string{"its", "x"}},
		{`pre"mid dle"post`, []string{"premid dlepost"}},
		{`"tab\there" \x41\101`, []string{"tab\there", "AA"}},
		{`'single \"x\"'`, []string{`single "x"`}},
		{`a\ b`, []string{"a b"}},
		{``, nil},
	}
	for _, tc := range cases {
		got, err := splitWords(tc.in)
		if err != nil {
			t.Errorf("splitWords(%q): %v", tc.in, err)
			continue
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCommandPrefixes(t *testing.T) {
	c, err := parseCommand(`-@+/usr/bin/app app-name --x "y z"`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IgnoreFailure || !c.Argv0 || c.Privileged != "+" || c.Binary != "/usr/bin/app" {
		t.Errorf("prefixes not read: %+v", c)
	}
	if strings.Join(c.Argv, "|") != "/usr/bin/app|--x|y z" {
		t.Errorf("argv = %q", c.Argv)
	}
	c, err = parseCommand(`!!/usr/bin/app`)
	if err != nil || c.Privileged != "!!" {
		t.Errorf("!! not read: %+v %v", c, err)
	}
}

func TestCalendarToCron(t *testing.T) {
	cases := map[string]string{
		"daily":                "0 0 * * *",
		"hourly":               "0 * * * *",
		"weekly":               "0 0 * * 1",
		"*-*-* 02:30:00":       "30 2 * * *",
		"Mon..Fri *-*-* 09:00": "0 9 * * 1-5",
		"Sat,Sun 10:15":        "15 10 * * 6,0",
		"*:0/15":               "*/15 * * * *",
		"*-*-01 04:00:00":      "0 4 1 * *",
		"*-01,07-01 00:00":     "0 0 1 1,7 *",
		"Fri..Mon 23:00":       "0 23 * * 5-6,0-1",
		"*-*-* 03:00:00 UTC":   "0 3 * * *",
		"*-*-* 08..18:00:00":   "0 8-18 * * *",
	}
	for in, want := range cases {
		got, _, ok := calendarToCron(in)
		if !ok || got != want {
			t.Errorf("calendarToCron(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"2025-01-01 00:00", "Funday 10:00", "*-*-* 25:00", "every now and then"} {
		if got, _, ok := calendarToCron(bad); ok {
			t.Errorf("calendarToCron(%q) = %q, want a failure", bad, got)
		}
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		path, data string
		want       bool
	}{
		{"/lib/systemd/system/nginx.service", "", true},
		{"units/backup.timer", "", true},
		{"units/web.socket", "", true},
		{"web.service.d/override.conf", "[Service]\nMemoryMax=1G\n", true},
		{"unit.ini", "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/x\n", true},
		{"app.conf", "[server]\nport=80\n", false},
		{"compose.yaml", "services:\n  web:\n    image: nginx\n", false},
	}
	for _, tc := range cases {
		if got := (Importer{}).Detect(source.File{Path: tc.path, Data: []byte(tc.data)}); got != tc.want {
			t.Errorf("Detect(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestRegistered(t *testing.T) {
	imp, err := source.Lookup("systemd")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := imp.(Importer); !ok {
		t.Errorf("systemd is registered as %T", imp)
	}
}

// FuzzUnit feeds arbitrary bytes to Import as a unit file: it may fail,
// but never panic or hang, and what it returns is valid.
func FuzzUnit(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.service")
	more, _ := filepath.Glob("testdata/*/*.service.d/*.conf")
	templates, _ := filepath.Glob("testdata/*/*.service.in")
	for _, p := range append(append(seeds, more...), templates...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[Service]\nExecStart=/bin/x \"unterminated\n"))
	f.Add([]byte("[Service]\nExecStart=@-+/bin/x %i %H ${A} $B $$C \\x41\nEnvironment=\"A=1 2\" B=3\n"))
	f.Add([]byte("[Service]\nExecStart=@bindir@/x --id=%i @A@@B@ @/x\nExecStartPre=:@X@/y %I\nUser=@U@\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() { panic("Import did not return in 10s") })
		defer watchdog.Stop()
		file := source.File{Path: "fuzz/unit@.service", Data: data}
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
// secret value: the secrets in the golden inputs must not appear in what
// Import returns.
func TestSecretValuesNeverLeave(t *testing.T) {
	for _, dir := range []string{"testdata/simple-web", "testdata/oneshot"} {
		svcs, err := Importer{}.Import(context.Background(), inputs(t, dir), source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(svcs)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"hunter2", "s3cr3t!"} {
			if strings.Contains(string(out), s) {
				t.Errorf("%s: output contains the secret %q", dir, s)
			}
		}
	}
}

// A webhook URL in Environment= went into the ConfigMap, token and all;
// PassEnvironment= of a webhook's name is a secret to store too.
func TestWebhookLooksSecret(t *testing.T) {
	if !secretLooking("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX") || !secretLooking("DISCORD_WEBHOOK", "") {
		t.Error("a webhook is not a secret")
	}
	if secretLooking("HEALTH_URL", "https://status.example.com/health") {
		t.Error("a plain URL is a secret")
	}
}
