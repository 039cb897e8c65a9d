package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutoverhq/cutover/source"
)

// FuzzProxyConfig: any `cutover proxy --config` file loads or fails with
// an error naming the file; one that loads has both sides and a weight in
// 0..100.
func FuzzProxyConfig(f *testing.F) {
	f.Add("listen: :8080\nadmin: 127.0.0.1:9090\nlegacy: [http://10.0.0.1:8080]\nnew: [http://10.0.1.1:8080]\nnewWeight: 10\n")
	f.Add("legacy: [a]\nnew: [b]\nnewWeight: 101\n")
	f.Add("legacy: a\n")
	f.Add("unknown: 1\n")
	f.Add("newWeight: ten\n")
	f.Fuzz(func(t *testing.T, data string) {
		p := filepath.Join(t.TempDir(), "proxy.yaml")
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadProxyConfig(p)
		if err != nil {
			var ie *source.InputError
			if !errors.As(err, &ie) || ie.File != p {
				t.Fatalf("error %v (%T) does not name the file", err, err)
			}
			return
		}
		if len(c.Legacy) == 0 || len(c.New) == 0 || c.NewWeight < 0 || c.NewWeight > 100 {
			t.Fatalf("loaded an unusable config: %+v", c)
		}
	})
}
