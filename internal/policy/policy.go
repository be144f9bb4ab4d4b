// Package policy is how every per-route policy (auth, tier limits, rate
// limits, cache, transforms, aggregation) is written: a Builder that takes
// only the route's config section it owns and returns one stage of the
// route's handler chain.
//
// A stage is a plain http.Handler wrapping the next one. Before calling next
// it may answer by itself (exchange.Write, from the one error table), change
// the request, or set the consumer on the request's exchange.Record; around
// next it may change the response through OnHeader (status and headers) or
// Buffer (the whole body, bounded) instead of writing a response writer of
// its own; and it may call upstreams itself through Env.Upstreams, the
// forwarder's round-trip API (same balancing, breakers, retries, mTLS and
// spans as forwarded requests).
//
// Resources a stage holds (a JWKS refresher, a cache) are registered on its
// Env.Scope and closed when the snapshot that built the stage retires: after
// the reload that replaced it, once its last request has finished. What is
// worth keeping across reloads while its config is unchanged (a verifier
// with its fetched keys) is taken with Acquire, which shares one instance
// among the snapshots that ask for the same key and closes it with the last.
//
// Order on a route is fixed, whatever order builders are given in: Order.
package policy

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/meshgate/meshgate/internal/config"
)

// Order is the fixed order of the stages of a route, outermost first: who
// the caller is decides which limits apply, limits are spent before any
// work, a cache hit saves the transform and the upstream, and the request
// is reshaped last before it is forwarded or aggregated. (The response
// passes back through the same stages in reverse: response transforms,
// then the cache stores what the client gets.) A fallback stands in for
// the upstream, so it sits right around the forwarder: what it answers
// passes through the response transform like the upstream's answer.
var Order = []string{"auth", "tier_limit", "rate_limit", "cache", "transform", "fallback", "aggregate"}

// Env is what a stage's constructor gets besides its own config section.
// It is only valid during Build; the stage may keep its fields.
type Env struct {
	// Route is the name of the route the stage is built for.
	Route string
	// Scope collects what the stage must release when its snapshot retires.
	Scope *Scope
	// Upstreams makes a stage's own upstream calls (nil where a node offers
	// none, as in unit tests).
	Upstreams Upstreams
	// Reroute returns the route's own forwarding (its rewrites, timeouts,
	// retries and body limit) to another upstream: where a fallback sends
	// a request the route's upstream could not take. Nil where a node
	// offers none.
	Reroute func(upstream string) (http.Handler, error)
	Logger  *slog.Logger
}

// Upstreams is the forwarder's round-trip API for policies.
type Upstreams interface {
	// Caller returns a client of the named upstream's cluster. Its RoundTrip
	// picks an endpoint, honours breakers, admission limits and retries, speaks
	// mTLS where the upstream does, and makes a client span under the span in
	// the request's context. A response body must be closed. It must be
	// called during Build only (it may allocate); RoundTrip is safe for
	// concurrent use.
	Caller(upstream string, o CallOptions) (http.RoundTripper, error)
}

// CallOptions bound one kind of policy call.
type CallOptions struct {
	// Name labels the calls in metrics and logs (e.g. "orders/aggregate").
	Name string
	// Timeout bounds a call until its response headers (0: none).
	Timeout config.Duration
	// Retry is as a route's retry (nil: one attempt).
	Retry *config.Retry
}

// Builder builds one kind of stage for routes whose config has its section.
type Builder interface {
	// Name is the policy's place in Order.
	Name() string
	// Build returns the stage wrapping next for route rt, or next itself
	// when rt has no section for this policy.
	Build(rt *config.Route, env Env, next http.Handler) (http.Handler, error)
}

// Of makes a Builder of a policy from the function that finds its section in
// a route (nil: the route has none) and its constructor, which sees that
// section only.
func Of[C any](name string, section func(*config.Route) *C, build func(c *C, env Env, next http.Handler) (http.Handler, error)) Builder {
	return &builder[C]{name: name, section: section, build: build}
}

type builder[C any] struct {
	name    string
	section func(*config.Route) *C
	build   func(*C, Env, http.Handler) (http.Handler, error)
}

func (b *builder[C]) Name() string { return b.name }

func (b *builder[C]) Build(rt *config.Route, env Env, next http.Handler) (http.Handler, error) {
	c := b.section(rt)
	if c == nil {
		return next, nil
	}
	h, err := b.build(c, env, next)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.name, err)
	}
	return h, nil
}

// Sorted returns builders in Order, refusing unknown or repeated names.
func Sorted(builders []Builder) ([]Builder, error) {
	out := slices.Clone(builders)
	seen := map[string]bool{}
	for _, b := range out {
		if !slices.Contains(Order, b.Name()) {
			return nil, fmt.Errorf("policy %q has no place in the order %v", b.Name(), Order)
		}
		if seen[b.Name()] {
			return nil, fmt.Errorf("policy %q given twice", b.Name())
		}
		seen[b.Name()] = true
	}
	slices.SortStableFunc(out, func(a, b Builder) int {
		return slices.Index(Order, a.Name()) - slices.Index(Order, b.Name())
	})
	return out, nil
}

// Chain wraps last in the stages of every builder for route rt, outermost
// first in Order. builders must be Sorted.
func Chain(builders []Builder, rt *config.Route, env Env, last http.Handler) (http.Handler, error) {
	h := last
	for i := len(builders) - 1; i >= 0; i-- {
		var err error
		if h, err = builders[i].Build(rt, env, h); err != nil {
			return nil, err
		}
	}
	return h, nil
}
