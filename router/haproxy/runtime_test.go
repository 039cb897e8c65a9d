package haproxy

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseWeight(t *testing.T) {
	for _, c := range []struct {
		in        string
		cur, init int
		err       string
	}{
		{in: "10 (initial 10)\n", cur: 10, init: 10},
		{in: "0 (initial 100)", cur: 0, init: 100},
		{in: "7 (3)", cur: 7, init: 3}, // HAProxy before 1.5
		{in: "No such server.\n", err: "No such server"},
		{in: "No such backend.", err: "No such backend"},
		{in: "Require 'backend/server'.", err: "Require 'backend/server'"},
		{in: "", err: "empty answer"},
		{in: "300 (initial 1)", err: "300 (initial 1)"},
		{in: "-1 (initial 1)", err: "-1 (initial 1)"},
		{in: "x (initial 1)", err: "x (initial 1)"},
	} {
		cur, init, err := parseWeight(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("parseWeight(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || cur != c.cur || init != c.init {
			t.Errorf("parseWeight(%q) = %d, %d, %v; want %d, %d", c.in, cur, init, err, c.cur, c.init)
		}
	}
}

// TestParseStatReal reads statistics HAProxy 2.6.12 wrote for a backend
// with a server in drain, one in maintenance and a backup server.
func TestParseStatReal(t *testing.T) {
	b, err := os.ReadFile("testdata/show-stat-2.6.12.txt")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStat(string(b), "be_payments")
	if err != nil {
		t.Fatal(err)
	}
	if st.Algo != "roundrobin" {
		t.Errorf("algo %q", st.Algo)
	}
	want := []serverStat{
		{Name: "legacy1", Status: "no check", Weight: 100},
		{Name: "legacy2", Status: "DRAIN", Weight: 50},
		{Name: "new1", Status: "no check", Weight: 0},
		{Name: "new2", Status: "MAINT", Weight: 0},
		{Name: "spare", Status: "no check", Weight: 1, Backup: true},
	}
	if len(st.Servers) != len(want) {
		t.Fatalf("servers %+v", st.Servers)
	}
	for i := range want {
		if st.Servers[i] != want[i] {
			t.Errorf("server %d: %+v, want %+v", i, st.Servers[i], want[i])
		}
	}
	if _, err := parseStat(string(b), "be_other"); err != errNoBackend {
		t.Errorf("another backend: %v", err)
	}
}

func TestParseStatRefusesWhatIsNotStatistics(t *testing.T) {
	for in, want := range map[string]string{
		"No such proxy.\n":              "No such proxy",
		"# pxname,svname\nbe,BACKEND\n": `statistics have no "status" column`,
		"# pxname,svname,status,weight,bck\nbe,s1,UP,abc,0\nbe,BACKEND,UP,1,0\n": `weight "abc" is not a number`,
	} {
		if _, err := parseStat(in, "be"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseStat(%q): %v, want %q", in, err, want)
		}
	}
}

func TestParseSocket(t *testing.T) {
	for in, want := range map[string]socket{
		"/run/haproxy/admin.sock":  {network: "unix", addr: "/run/haproxy/admin.sock"},
		"unix@/run/haproxy/a.sock": {network: "unix", addr: "/run/haproxy/a.sock"},
		"unix:relative.sock":       {network: "unix", addr: "relative.sock"},
		"./admin.sock":             {network: "unix", addr: "./admin.sock"},
		"127.0.0.1:9999":           {network: "tcp", addr: "127.0.0.1:9999"},
		"ipv4@10.0.0.1:9999":       {network: "tcp", addr: "10.0.0.1:9999"},
		"tcp:[::1]:9999":           {network: "tcp", addr: "[::1]:9999"},
		"haproxy-1.internal:9999":  {network: "tcp", addr: "haproxy-1.internal:9999"},
	} {
		got, err := parseSocket(in, time.Second)
		want.timeout = time.Second
		if err != nil || got != want {
			t.Errorf("parseSocket(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"admin.sock", "unix@", "localhost"} {
		if _, err := parseSocket(bad, time.Second); err == nil {
			t.Errorf("parseSocket(%q) accepted", bad)
		}
	}
}

func TestClassify(t *testing.T) {
	for algo, want := range map[string]algoKind{
		"roundrobin": dynamicAlgo, "leastconn": dynamicAlgo, "unknown": dynamicAlgo,
		"static-rr": staticAlgo, "first": staticAlgo,
		"source": hashAlgo, "uri": hashAlgo, "url_param": hashAlgo, "hdr": hashAlgo, "rdp-cookie": hashAlgo, "hash": hashAlgo,
	} {
		if got := classify(algo); got != want {
			t.Errorf("classify(%q) = %d, want %d", algo, got, want)
		}
	}
}

// FuzzParseWeight: whatever a socket answers, parseWeight returns weights
// in HAProxy's range or an error, never a panic.
func FuzzParseWeight(f *testing.F) {
	for _, s := range []string{"10 (initial 10)\n\n", "7 (3)", "No such server.", "", " (", "1 (initial )", "256 (initial 256)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cur, init, err := parseWeight(s)
		if err == nil && (cur < 0 || cur > maxWeight || init < 0 || init > maxWeight) {
			t.Fatalf("parseWeight(%q) = %d, %d", s, cur, init)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n") {
			t.Fatalf("parseWeight(%q): error of several lines: %q", s, err)
		}
	})
}

// FuzzParseStat: statistics from any peer parse or fail, never panic.
func FuzzParseStat(f *testing.F) {
	b, err := os.ReadFile("testdata/show-stat-2.6.12.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b), "be_payments")
	f.Add("# pxname,svname,status,weight,bck,algo\nbe,s,\"UP, really\",1,0,\nbe,BACKEND,UP,1,0,first\n", "be")
	f.Add("No such proxy.\n", "be")
	f.Fuzz(func(t *testing.T, s, backend string) {
		st, err := parseStat(s, backend)
		if err != nil {
			return
		}
		for _, sv := range st.Servers {
			if sv.Name == "BACKEND" || sv.Name == "FRONTEND" {
				t.Fatalf("summary row taken for a server: %+v", sv)
			}
		}
	})
}
