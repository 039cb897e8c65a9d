// Package admin authenticates callers of cutover's admin APIs: bearer
// tokens mapped to people and their groups, from a token file or a single
// token. The identity it finds is the actor in audit records and in
// four-eyes approval checks.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// Identity is an authenticated caller.
type Identity struct {
	Name   string   `yaml:"name" json:"name"`
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
}

// InGroup reports whether the identity belongs to group.
func (id Identity) InGroup(group string) bool {
	for _, g := range id.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// Tokens maps bearer tokens to identities. The zero value accepts nobody.
type Tokens struct {
	entries []entry
}

type entry struct {
	sum [32]byte // SHA-256 of the token
	id  Identity
}

// tokenFile is the on-disk format:
//
//	tokens:
//	  - name: alice
//	    groups: [payments-leads]
//	    sha256: 5e884898da28...   # or token: <the token itself>
type tokenFile struct {
	Tokens []struct {
		Name   string   `yaml:"name"`
		Groups []string `yaml:"groups"`
		Token  string   `yaml:"token"`
		SHA256 string   `yaml:"sha256"`
	} `yaml:"tokens"`
}

// LoadTokens reads a token file. Tokens may be given in clear or as their
// SHA-256 (hex), which keeps the file harmless if it leaks.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &source.InputError{File: path, Err: fmt.Errorf("cannot read token file: %w", err)}
	}
	pos, err := source.ParsePositions(path, data)
	if err != nil {
		return nil, err
	}
	var f tokenFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, source.SyntaxError(path, err)
	}
	t := &Tokens{}
	seen := map[string]bool{}
	for i, e := range f.Tokens {
		field := fmt.Sprintf("tokens[%d]", i)
		if e.Name == "" {
			return nil, source.Errorf(path, pos, field+".name", "name is required")
		}
		if seen[e.Name] {
			return nil, source.Errorf(path, pos, field+".name", "%q appears twice", e.Name)
		}
		seen[e.Name] = true
		var sum [32]byte
		switch {
		case e.Token != "" && e.SHA256 != "":
			return nil, source.Errorf(path, pos, field, "give token or sha256, not both")
		case e.Token != "":
			if len(e.Token) < 16 {
				return nil, source.Errorf(path, pos, field+".token", "token is shorter than 16 characters")
			}
			sum = sha256.Sum256([]byte(e.Token))
		case e.SHA256 != "":
			b, err := hex.DecodeString(e.SHA256)
			if err != nil || len(b) != 32 {
				return nil, source.Errorf(path, pos, field+".sha256", "not a hex SHA-256")
			}
			copy(sum[:], b)
		default:
			return nil, source.Errorf(path, pos, field, "token or sha256 is required")
		}
		t.entries = append(t.entries, entry{sum: sum, id: Identity{Name: e.Name, Groups: e.Groups}})
	}
	if len(t.entries) == 0 {
		return nil, &source.InputError{File: path, Err: errors.New("no tokens")}
	}
	return t, nil
}

// Single returns Tokens accepting one token as the given identity.
func Single(token string, id Identity) *Tokens {
	return &Tokens{entries: []entry{{sum: sha256.Sum256([]byte(token)), id: id}}}
}

// Lookup returns the identity of token. Every entry is compared in
// constant time, so the answer's timing says nothing about the tokens.
func (t *Tokens) Lookup(token string) (Identity, bool) {
	if t == nil || token == "" {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(token))
	var found Identity
	ok := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found = e.id
			ok = 1
		}
	}
	return found, ok == 1
}

type ctxKey struct{}

// FromContext returns the identity the middleware put in the request's
// context.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Require wraps h so that only requests with a known bearer token reach it;
// others get 401 with a WWW-Authenticate header.
func (t *Tokens) Require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			// The dashboard's server-sent events cannot set headers.
			if c, err := r.Cookie("cutover_token"); err == nil {
				token, ok = c.Value, true
			}
		}
		id, found := t.Lookup(strings.TrimSpace(token))
		if !ok || !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover"`)
			http.Error(w, "unauthorized: a valid bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}
