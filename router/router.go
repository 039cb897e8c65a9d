// Package router declares what moves traffic between the legacy and the
// new backend, and the registry that maps a plan's router type to an
// implementation.
//
// Each router lives in its own package (router/proxy, router/haproxy,
// router/nginx, router/gatewayapi, router/alb) and registers itself at
// init. Every implementation passes the conformance test in
// router/routertest.
package router

import (
	"context"
	"fmt"

	"github.com/cutoverhq/cutover/internal/registry"
)

// Weights are the shares of traffic in percent; they sum to 100.
type Weights struct {
	Legacy int `json:"legacy"`
	New    int `json:"new"`
}

// ForNew returns the weights that send pct percent to the new side.
func ForNew(pct int) Weights { return Weights{Legacy: 100 - pct, New: pct} }

// Validate checks the weights.
func (w Weights) Validate() error {
	if w.Legacy < 0 || w.New < 0 || w.Legacy+w.New != 100 {
		return fmt.Errorf("weights %d/%d do not sum to 100", w.Legacy, w.New)
	}
	return nil
}

func (w Weights) String() string { return fmt.Sprintf("legacy %d%% / new %d%%", w.Legacy, w.New) }

// Router moves traffic between the two sides.
type Router interface {
	// SetWeights makes the data plane split traffic as w. It is
	// idempotent: setting the weights it already has changes nothing.
	SetWeights(ctx context.Context, w Weights) error
	// Weights reads back what the data plane really does now.
	Weights(ctx context.Context) (Weights, error)
}

// Mirrorer is implemented by routers that can copy a share of requests to
// the new side.
type Mirrorer interface {
	SetMirror(ctx context.Context, percent int) error
}

// Checker is implemented by routers that can tell at validation time
// whether they are reachable and configured right.
type Checker interface {
	Check(ctx context.Context) error
}

// Closer is implemented by routers that hold resources.
type Closer interface {
	Close() error
}

// Backends are the plan's two sides, as the plan names them.
type Backends struct {
	Service     string
	Legacy, New []string
}

// Factory builds a router. decode decodes the plan's router settings
// strictly into the value it is given.
type Factory func(ctx context.Context, b Backends, decode func(v any) error) (Router, error)

var factories = registry.New[Factory]("router")

// Register makes a router available under name; a duplicate panics.
func Register(name string, f Factory) { factories.Register(name, f) }

// Lookup returns the factory for name, or an error listing the known
// names. It never falls back to a default router.
func Lookup(name string) (Factory, error) { return factories.Lookup(name) }

// Known returns nil when name is registered.
func Known(name string) error {
	_, err := Lookup(name)
	return err
}
