package helm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// readerNeedsQuote is the oracle needsQuote replaced: it asks Helm's own
// values reader whether s, written plain after "v: ", reads back as s.
func readerNeedsQuote(s string) bool {
	if s == "" || strings.ContainsAny(s, "\n\t") {
		return true
	}
	var v map[string]any
	if err := sigsyaml.Unmarshal([]byte("v: "+s), &v); err != nil {
		return true
	}
	got, ok := v["v"].(string)
	return !ok || got != s
}

// quotesMoreOnPurpose are the strings needsQuote quotes although the
// reader would take them plain: those with a byte order mark (see
// plainSafeChars). Quoting them is harmless; anything else
// must agree with the reader exactly, so that the values files stay as
// they were.
func quotesMoreOnPurpose(s string) bool {
	return strings.ContainsRune(s, '\ufeff')
}

// checkNeedsQuote compares needsQuote with the reader on s.
func checkNeedsQuote(t *testing.T, s string) {
	t.Helper()
	fast, slow := needsQuote(s), readerNeedsQuote(s)
	if fast == slow {
		return
	}
	if !fast {
		t.Errorf("needsQuote(%q) = false, but the reader does not read it back plain", s)
		return
	}
	if !quotesMoreOnPurpose(s) {
		t.Errorf("needsQuote(%q) = true, but the reader reads it back plain", s)
	}
}

// quoteCorpus is what values files hold (quantities, images, commands,
// durations, cron schedules, ARNs) and what YAML 1.1 types (bools, nulls,
// numbers in every base, floats, timestamps), plus every string of one and
// two characters from an alphabet of YAML's indicators, and the strings of
// the golden cases.
func quoteCorpus(t testing.TB) []string {
	t.Helper()
	out := []string{
		"100m", "256Mi", "2Gi", "0.5", "1", "1.0", "1e3", "1E3", "1e-3", ".5", "5.", "-1", "+1", "-.5", "+.5e2", "1_000", "0x1F", "0X1f",
		"0o17", "0O17", "0755", "0b101", "-0b101", "0b", "0b2", "-0b", "0x", "0_1", "1__0", "_1", "1_", "08", "09.5", "0.", "00",
		"9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616", "-9223372036854775809",
		"1e400", "-1e400", "1e", "1e+", "e3", "inf", "Inf", "+inf", "infinity", "NaN", "nan", ".nan", ".NaN", ".NAN", ".nAn",
		".inf", ".Inf", ".INF", "+.inf", "-.Inf", "+.INF", "-.iNf", ".", "..", "...", "-", "--", "---", "--port", "-v", "- x", "-1x",
		"+", "++", "+x", "0x1p-2", "0x1.8p1", "1.5e3_0", "12:30", "190:20:30", "1:2", "1_2:3",
		"y", "Y", "yes", "Yes", "YES", "yEs", "n", "N", "no", "No", "NO", "nO", "true", "True", "TRUE", "tRUE", "false", "False",
		"on", "On", "ON", "oN", "off", "Off", "OFF", "~", "null", "Null", "NULL", "nULL", "<<", "<", "=", "None", "nil",
		"2024-01-31", "2024-1-3", "2024-01-31T10:00:00Z", "2024-01-31t10:00:00Z", "2024-01-31 10:00:00", "2024-01-31 10:00:00.5",
		"2024-01-31T10:00:00+02:00", "2024-13-45", "2024-01", "20240131", "2024-01-31x", "1999-", "12345-01-01",
		"nginx:1.25", "public.ecr.aws/acme/payments-api:2024.11.3-7f3c9e1", "repo@sha256:abc", "<IMAGE1_NAME>", "${IMAGE}", "#{Image}",
		"arn:aws:iam::123456789012:role/x", "https://sqs.eu-west-1.amazonaws.com/1/q", "/app/healthcheck --ready", "a: b", "a:b", "a :b",
		"a:", "a::", "a #b", "a#b", "#a", "a #", "x ", " x", "x  y", "&a", "*a", "!a", "!!str", "|", ">", "|-", "'a'", "\"a\"", "%x", "@x",
		"`x", "[a]", "{a}", "a,b", "a[0]", "{{ .Values }}", "0 3 * * *", "*/5 * * * *", "@daily", "25%", "1h", "30s", "5m0s",
		"?", "?x", "? x", ":", ":x", ": x", "a\u00a0", "\u00a0a", "é", "日本", "a\u0085b", "a\u2028b", "\ufeffa", "a\ufeff", "\x7f",
		"a\rb", "a\x00b", "\xff", "a\xc3", "\ufffd", "a\tb", "a\nb", "a b", "true x", "null x", "1 2", "1,000", "1.2.3", "v1.2.3",
		"3.14.15", "1e3x", "0x1g", "--- x", "... x", "a ---", "=x", "a=b", "K=V", "%", "a%", "a!", "a&b", "a*", "a|b", "a>b",
	}
	alphabet := []string{"a", "0", "1", " ", "-", "+", ".", ":", "#", "?", "!", "&", "*", "'", "\"", "%", "@", "`", ",", "[", "]", "{", "}", "|", ">", "~", "_", "e", "x", "b", "o", "y", "n", "<"}
	for _, a := range alphabet {
		out = append(out, a)
		for _, b := range alphabet {
			out = append(out, a+b)
			for _, c := range []string{"0", " ", ":", "#", "a", "."} {
				out = append(out, a+b+c)
			}
		}
	}
	// Every scalar of the golden values files and services.
	files, _ := filepath.Glob("testdata/*/out/values/*/*.yaml")
	more, _ := filepath.Glob("testdata/*/out/values/*.yaml")
	files = append(files, more...)
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = appendScalars(out, &n)
	}
	return out
}

func appendScalars(out []string, n *yaml.Node) []string {
	if n.Kind == yaml.ScalarNode {
		out = append(out, n.Value)
	}
	for _, c := range n.Content {
		out = appendScalars(out, c)
	}
	return out
}

// TestNeedsQuoteAgreesWithReader holds the direct rules to what Helm's
// values reader does, on strings values hold and strings YAML 1.1 types.
func TestNeedsQuoteAgreesWithReader(t *testing.T) {
	corpus := quoteCorpus(t)
	if len(corpus) < 10000 {
		t.Fatalf("corpus of %d strings: the golden files were not found", len(corpus))
	}
	for _, s := range corpus {
		checkNeedsQuote(t, s)
	}
}

// TestStrRoundTrips writes every corpus string with str as a values file
// does and reads it back with Helm's reader.
func TestStrRoundTrips(t *testing.T) {
	for _, s := range quoteCorpus(t) {
		checkRoundTrip(t, s)
	}
}

func checkRoundTrip(t *testing.T, s string) {
	t.Helper()
	doc := document("", newMap().set("v", str(s)))
	var v map[string]any
	if err := sigsyaml.Unmarshal(doc, &v); err != nil {
		t.Errorf("str(%q) written as %q does not read back: %v", s, doc, err)
		return
	}
	if got, ok := v["v"].(string); !ok || got != strings.ToValidUTF8(s, "\uFFFD") {
		t.Errorf("str(%q) written as %q reads back as %#v", s, doc, v["v"])
	}
}

// FuzzNeedsQuote: whatever the string, needsQuote never leaves plain what
// the reader would not read back, quotes nothing more than it says it
// does, and the values file written with it reads back the same string
// (invalid UTF-8 replaced, see str).
func FuzzNeedsQuote(f *testing.F) {
	for _, s := range []string{"100m", "0x1F", "1_000", "2024-01-31", "-.inf", "--port", "a: b", "a #b", "?x", "é", "1e3", "-0b1", "0b1_1", "+.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkNeedsQuote(t, s)
		checkRoundTrip(t, s)
	})
}

// BenchmarkNeedsQuote compares the direct rules with asking the reader,
// on the strings of the golden values files.
func BenchmarkNeedsQuote(b *testing.B) {
	corpus := quoteCorpus(b)[:2000]
	for _, c := range []struct {
		name string
		f    func(string) bool
	}{{"rules", needsQuote}, {"reader", readerNeedsQuote}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for _, s := range corpus {
					c.f(s)
				}
			}
		})
	}
}
