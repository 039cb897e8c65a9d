package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDocsVerifier runs the Python verifier printed in docs/audit.md, so
// the specification an auditor re-implements stays true to the format:
// it must accept the example log and a log of awkward numbers and
// strings, and reject a tampered copy at the right record.
func TestDocsVerifier(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if out, err := exec.Command(py, "-c", "import cryptography").CombinedOutput(); err != nil {
		t.Skipf("python3 lacks the cryptography package: %s", out)
	}
	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	const open, close = "<!-- verify.py -->\n```python\n", "```\n<!-- /verify.py -->"
	i, j := bytes.Index(doc, []byte(open)), bytes.Index(doc, []byte(close))
	if i < 0 || j < i {
		t.Fatal("docs/audit.md lost its verify.py block")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "verify.py")
	os.WriteFile(script, doc[i+len(open):j], 0o755)
	verify := func(log, pub string) (string, bool) {
		args := []string{script, log}
		if pub != "" {
			args = append(args, pub)
		}
		out, err := exec.Command(py, args...).CombinedOutput()
		return string(out), err == nil
	}

	out, ok := verify("testdata/example/audit.log", "testdata/example/audit.pub")
	if !ok || !strings.Contains(out, "whole: 4 records") || !strings.Contains(out, "signed through record 4") {
		t.Fatalf("example log: %s", out)
	}
	b, _ := os.ReadFile("testdata/example/audit.log")
	tampered := filepath.Join(dir, "tampered.log")
	os.WriteFile(tampered, bytes.Replace(b, []byte(`"actor":"bob"`), []byte(`"actor":"eve"`), 1), 0o644)
	if out, ok := verify(tampered, "testdata/example/audit.pub"); ok || !strings.Contains(out, "record 3 (line 3): edited") {
		t.Fatalf("tampered log: %s", out)
	}
	badSig := filepath.Join(dir, "badsig.log")
	os.WriteFile(badSig, bytes.Replace(b, []byte(`"sig":"fc`), []byte(`"sig":"fd`), 1), 0o644)
	if out, ok := verify(badSig, "testdata/example/audit.pub"); ok || !strings.Contains(out, "bad checkpoint signature") {
		t.Fatalf("bad signature: %s", out)
	}

	// Awkward data: every number form ECMAScript prints differently from
	// Python's repr, names that sort differently in UTF-16, escapes.
	seed := sha256.Sum256([]byte("docs test key"))
	key := ed25519.NewKeyFromSeed(seed[:])
	s := &signer{key: key, keyID: KeyIDOf(key.Public().(ed25519.PublicKey)), every: 2, now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }}
	var log bytes.Buffer
	head := Head{}
	for _, data := range []string{
		`{"a":1e-7,"b":1e21,"c":-0.000001,"d":123456789012345680000,"e":0.1,"f":5e-324,"g":1.7976931348623157e308,"h":100,"i":-0,"j":1e-6,"k":123e-20,"l":4.5,"m":1e20}`,
		`{"\u20ac":1,"\ud83d\ude00":2,"\ufb33":3,"\r":4,"1":5,"\u0080":6,"ö":7}`,
		`{"s":"line\nbreak \"quoted\" back\\slash \u0007 \u001f \u007f \u2028 é 😀 </script>","t":[true,false,null,[],{}]}`,
	} {
		d, err := Canonicalize([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		b := &Batch{In: []Record{{Kind: "analysis", Actor: "ünïcode actor", Service: "svc", Data: d}}, signer: s}
		recs, err := b.Link(head)
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			log.Write(Encode(&recs[i]))
			log.WriteByte('\n')
		}
		head = HeadOf(&recs[len(recs)-1])
	}
	awkward := filepath.Join(dir, "awkward.log")
	os.WriteFile(awkward, log.Bytes(), 0o644)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pub := filepath.Join(dir, "docs.pub")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	if out, ok := verify(awkward, pub); !ok || !strings.Contains(out, "whole: 5 records") || !strings.Contains(out, "signed through record 5") {
		t.Fatalf("awkward log:\n%s\n%s", out, log.String())
	}
}
