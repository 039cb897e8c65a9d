package audit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Store is one backend of the log: audit/file, audit/postgres. The log
// does the chaining and signing (Batch.Link); a store keeps records in
// order, durably, and reads them back. Every store passes
// audit/audittest.Run.
type Store interface {
	// Append links b onto the store's head with b.Link, holding the
	// store's lock so no other writer, in this process or another, links
	// at the same time, and stores b.Records(). When it returns nil they
	// survive a crash of the process and of the machine. On error none,
	// some or all may be stored; none counts as acknowledged. Append is
	// called by one goroutine at a time.
	Append(ctx context.Context, b *Batch) error
	// Scan calls fn with every stored entry in order, from the first. An
	// entry the store cannot read comes with Err set and scanning goes on
	// where it can. Scan stops early when fn returns an error, and
	// returns that error.
	Scan(ctx context.Context, fn func(Entry) error) error
	// Close releases the store: its lock, its files or connections.
	Close() error
}

// Entry is one record as a store read it back.
type Entry struct {
	// Record is the decoded record; its zero value when Err says the
	// stored bytes are not a record.
	Record Record
	// Where names the position in the store's own terms: "line 12" for
	// the file store, "row 12" for PostgreSQL. Never empty.
	Where string
	// Line is the 1-based line in a file store; zero for other stores.
	Line int64
	// Err says why the stored entry is not a sound record: it does not
	// decode, or the store's other copies of its fields (PostgreSQL's
	// columns) disagree with it. Nil for a sound entry.
	Err error
	// Torn marks the last line of a file whose newline is missing: a
	// write a crash cut short. Err is set too.
	Torn bool
}

// Recoverer is implemented by stores that mend what a crash left when
// opened for writing (the file store cuts a torn last line off). Open
// writes a repair record for each, so the log itself says what was done.
type Recoverer interface {
	Recovered() []Repair
}

// Mode says what a store is opened for.
type Mode int

const (
	// ReadOnly: Scan only; no lock taken, nothing created or repaired,
	// so verify and show can run beside a writer.
	ReadOnly Mode = iota
	// ReadWrite: the one writer; creates what is missing, takes the
	// store's writer lock, repairs a torn tail.
	ReadWrite
)

// OpenFunc opens a store at a location whose scheme it registered for.
type OpenFunc func(ctx context.Context, location string, mode Mode) (Store, error)

var registry = struct {
	sync.Mutex
	m map[string]OpenFunc
}{m: map[string]OpenFunc{}}

// Register makes a store known under a URL scheme ("file", "postgres").
// Call it from an init func; registering a scheme twice panics.
func Register(scheme string, open OpenFunc) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[scheme]; dup {
		panic("audit: store scheme " + scheme + " registered twice")
	}
	registry.m[scheme] = open
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	registry.Lock()
	defer registry.Unlock()
	var s []string
	for k := range registry.m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// ErrUnknownStore: the location names a scheme no store registered.
var ErrUnknownStore = errors.New("unknown audit store")

// OpenStore opens the store a location names: "file:PATH" (a location
// without a scheme is a file path too) or "postgres://…". A scheme no
// store registered is an error that lists the known ones; there is no
// fallback.
func OpenStore(ctx context.Context, location string, mode Mode) (Store, error) {
	scheme := SchemeOf(location)
	registry.Lock()
	open := registry.m[scheme]
	registry.Unlock()
	if open == nil {
		return nil, fmt.Errorf("%w %q in %q (known: %s; is its package imported?)", ErrUnknownStore, scheme, location, strings.Join(Schemes(), ", "))
	}
	return open(ctx, location, mode)
}

// SchemeOf returns the URL scheme of a location, "file" when it has none.
func SchemeOf(location string) string {
	i := strings.IndexByte(location, ':')
	if i < 2 { // none, or a drive letter
		return "file"
	}
	for j := 0; j < i; j++ {
		c := location[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "file" // "./a:b" is a path
		}
	}
	s := strings.ToLower(location[:i])
	if s == "postgresql" {
		return "postgres"
	}
	return s
}

// RedactLocation returns location fit to print: a password in a URL is
// replaced by "xxxxx" (reports and messages name the log; they must not
// carry its credentials). Prefer PGPASSWORD or ~/.pgpass to a password in
// the URL.
func RedactLocation(location string) string {
	if SchemeOf(location) == "file" {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		// Unparseable: show only the scheme rather than risk a secret.
		if i := strings.Index(location, "://"); i > 0 {
			return location[:i+3] + "…"
		}
		return "…"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
