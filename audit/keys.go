package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Key files, as `cutover audit keygen --out DIR` writes them: PEM, the
// private key as PKCS #8 and the public key as PKIX, so openssl and any
// crypto library read them.
const (
	PrivateKeyFile = "audit.key"
	PublicKeyFile  = "audit.pub"
)

// KeyIDOf names a public key in records: the first 16 hex digits of the
// SHA-256 of its 32 raw bytes.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey writes a new key pair into dir (created if missing): the
// private key readable by its owner only (0600), the public key 0644. It
// refuses to replace an existing key, whose loss would leave every
// checkpoint it signed unverifiable for anyone holding only the new one.
func GenerateKey(dir string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	privPath, pubPath := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s exists: remove it first if you mean to replace the key", p)
		}
	}
	if err := writeExclusive(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeExclusive(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return nil, err
	}
	return pub, nil
}

// writeExclusive creates path (never replacing a file), writes and fsyncs
// it; the mode is set at creation so the key is never readable by others,
// not even for a moment.
func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask may have cut bits of 0644
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// LoadPrivateKey reads an ed25519 private key: PEM PKCS #8, as keygen
// writes it (openssl genpkey -algorithm ed25519 writes the same).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM \"PRIVATE KEY\"", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ed25519 key", path, k)
	}
	return priv, nil
}

// LoadPublicKey reads an ed25519 public key: PEM PKIX ("PUBLIC KEY"), as
// keygen writes it. Given a private key file by mistake, it says so rather
// than derive the public key: a verifier should never need the secret.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	if block.Type == "PRIVATE KEY" {
		return nil, fmt.Errorf("%s is a private key: give the public key (%s) to verify", path, PublicKeyFile)
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: a PEM %q, not \"PUBLIC KEY\"", path, block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New(path + ": not an ed25519 key")
	}
	return pub, nil
}
