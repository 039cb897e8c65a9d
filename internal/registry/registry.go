// Package registry maps names to implementations for cutover's pluggable
// parts (input formats, routers, metrics providers, audit stores). A name
// registered twice is a programming error and panics; looking up a name
// nobody registered is an error that lists the known ones. A registry
// never falls back to a default: for a tool that decides where payments
// traffic goes, a silent default is the bug to avoid.
package registry

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Registry holds the implementations of one kind, by name.
type Registry[T any] struct {
	// What names the kind in errors ("router", "metrics provider").
	What  string
	mu    sync.RWMutex
	items map[string]T
	order []string
}

// New returns an empty registry for implementations of the named kind.
func New[T any](what string) *Registry[T] {
	return &Registry[T]{What: what, items: map[string]T{}}
}

// Register adds v under name; a duplicate panics.
func (r *Registry[T]) Register(name string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.items[name]; dup {
		panic(fmt.Sprintf("%s %q registered twice", r.What, name))
	}
	r.items[name] = v
	r.order = append(r.order, name)
}

// Lookup returns the implementation registered under name, or an error
// naming the known ones.
func (r *Registry[T]) Lookup(name string) (T, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.items[name]
	if !ok {
		return v, &UnknownError{What: r.What, Name: name, Known: r.namesLocked()}
	}
	return v, nil
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

// InOrder returns the registered names in registration order.
func (r *Registry[T]) InOrder() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.order...)
}

func (r *Registry[T]) namesLocked() []string {
	out := append([]string(nil), r.order...)
	sort.Strings(out)
	return out
}

// UnknownError is returned for a name nobody registered.
type UnknownError struct {
	What, Name string
	Known      []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown %s %q (known: %s)", e.What, e.Name, strings.Join(e.Known, ", "))
}
