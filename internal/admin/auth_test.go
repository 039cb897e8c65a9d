package admin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/source"
)

func writeTokens(t testing.TB, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTokens(t *testing.T) {
	p := writeTokens(t, `tokens:
  - {name: alice, token: alice-token-0123456789, groups: [payments-leads]}
  - {name: bob, sha256: `+strings.Repeat("ab", 32)+`}
`)
	tk, err := LoadTokens(p)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := tk.Lookup("alice-token-0123456789")
	if !ok || id.Name != "alice" || !id.InGroup("payments-leads") {
		t.Fatalf("alice: %+v %v", id, ok)
	}
	if _, ok := tk.Lookup("alice-token-012345678"); ok {
		t.Fatal("a prefix of a token is accepted")
	}
	for _, c := range []struct{ in, field string }{
		{"tokens:\n  - {name: a, token: short}\n", "tokens[0].token"},
		{"tokens:\n  - {name: a, token: aaaaaaaaaaaaaaaaaaaa}\n  - {name: a, token: bbbbbbbbbbbbbbbbbbbb}\n", "tokens[1].name"},
		{"tokens:\n  - {name: a, sha256: xyz}\n", "tokens[0].sha256"},
		{"tokens:\n  - {token: aaaaaaaaaaaaaaaaaaaa}\n", "tokens[0].name"},
	} {
		_, err := LoadTokens(writeTokens(t, c.in))
		var ie *source.InputError
		if !errors.As(err, &ie) || ie.Field != c.field || ie.Line == 0 {
			t.Errorf("%q: want an error at %s with its line, got %v", c.in, c.field, err)
		}
	}
}

// FuzzLoadTokens: any token file loads or fails with an error naming the
// file; one that loads has named identities only.
func FuzzLoadTokens(f *testing.F) {
	f.Add("tokens:\n  - {name: alice, token: alice-token-0123456789, groups: [leads]}\n")
	f.Add("tokens:\n  - name: bob\n    sha256: " + strings.Repeat("0f", 32) + "\n")
	f.Add("tokens: []\n")
	f.Add("tokens: {a: 1}\n")
	f.Add(": :\n")
	f.Fuzz(func(t *testing.T, data string) {
		p := writeTokens(t, data)
		tk, err := LoadTokens(p)
		if err != nil {
			var ie *source.InputError
			if !errors.As(err, &ie) || ie.File != p {
				t.Fatalf("error %v (%T) does not name the file", err, err)
			}
			return
		}
		if len(tk.entries) == 0 {
			t.Fatal("loaded without tokens")
		}
		for _, e := range tk.entries {
			if e.id.Name == "" {
				t.Fatal("an identity without a name")
			}
		}
	})
}
