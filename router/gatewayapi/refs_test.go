package gatewayapi

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
	}{
		{"payments", Ref{Name: "payments"}},
		{"payments-legacy:8080", Ref{Name: "payments-legacy", Port: 8080}},
		{"payments.payments-prod:80", Ref{Name: "payments", Namespace: "payments-prod", Port: 80}},
		{"payments.payments-prod.svc:80", Ref{Name: "payments", Namespace: "payments-prod", Port: 80}},
		{"payments.payments-prod.svc.cluster.local:8080", Ref{Name: "payments", Namespace: "payments-prod", Port: 8080}},
		{"http://payments-api.payments-prod.svc.cluster.local:8080", Ref{Name: "payments-api", Namespace: "payments-prod", Port: 8080}},
		{"https://payments.prod.svc.example.internal/healthz?x=1", Ref{Name: "payments", Namespace: "prod"}},
		{"  payments:80 ", Ref{Name: "payments", Port: 80}},
	} {
		got, err := ParseRef(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRefRefusesWhatIsNotAService(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty Service name"},
		{"http://10.20.1.11:8080", "is an IP address, not a Service"},
		{"[::1]:80", "is an IP address"},
		{"payments:http", `port "http" is not a number`},
		{"payments:0", "port \"0\""},
		{"payments:70000", "port \"70000\""},
		{"payments.prod.example.com:80", "does not name a Service"},
		{"Payments:80", "DNS-1035"},
		{"payments.Prod:80", `namespace "Prod"`},
		{"tcp://payments:80", `scheme "tcp"`},
		{":80", "empty"},
	} {
		_, err := ParseRef(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRef(%q): err = %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParseRefsRefusesDuplicatesAndNone(t *testing.T) {
	if _, err := parseRefs("legacy", nil); err == nil || !strings.Contains(err.Error(), "set legacyRefs or list the Service in spec.legacy.addresses") {
		t.Errorf("no refs: %v", err)
	}
	if _, err := parseRefs("new", []string{"a:80", "a.:80"}); err == nil {
		t.Error(`"a.:80" accepted`)
	}
	if _, err := parseRefs("new", []string{"a:80", "a:80"}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate: %v", err)
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"payments", "payments-legacy:8080", "payments.prod.svc.cluster.local:80", "http://a.b.svc:1/x", "https://u@a:2", "10.0.0.1:80", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		// What parses names a Service and prints as something that
		// parses to the same reference.
		if r.Name == "" || r.Port < 0 {
			t.Fatalf("ParseRef(%q) = %+v", s, r)
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v, printed %q, parsed again %+v, %v", s, r, r.String(), again, err)
		}
	})
}
