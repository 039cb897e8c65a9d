package audit

import (
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateAndLoadKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	pub, err := GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(filepath.Join(dir, PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := LoadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(pub2) || !pub.Equal(priv.Public()) {
		t.Fatal("the key files do not hold the generated pair")
	}
	if fi, _ := os.Stat(filepath.Join(dir, PrivateKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", fi.Mode())
	}
	if _, err := GenerateKey(dir); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second GenerateKey: %v", err)
	}
	if again, _ := LoadPrivateKey(filepath.Join(dir, PrivateKeyFile)); !again.Equal(priv) {
		t.Fatal("the refused GenerateKey changed the key")
	}
	if _, err := LoadPublicKey(filepath.Join(dir, PrivateKeyFile)); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("private key read as public: %v", err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, PublicKeyFile)); err == nil {
		t.Fatal("public key read as private")
	}
	if id := KeyIDOf(pub); len(id) != 16 {
		t.Fatalf("key ID %q", id)
	}
	// openssl reads them, as docs/audit.md says.
	if _, err := exec.LookPath("openssl"); err == nil {
		out, err := exec.Command("openssl", "pkey", "-in", filepath.Join(dir, PrivateKeyFile), "-noout", "-text").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ED25519") {
			t.Fatalf("openssl: %v: %s", err, out)
		}
	}
	var _ ed25519.PublicKey = pub
}
