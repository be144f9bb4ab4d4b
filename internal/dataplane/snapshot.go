// Package dataplane turns a configuration into the immutable snapshot that
// serves requests, and holds the per-listener entry handler that routes each
// request through it.
//
// A Snapshot is built completely (route tables compiled, per-route handler
// chains assembled, clusters resolved) before it is published with one atomic
// store; a request loads the snapshot once and finishes on it, so a reload
// never changes the rules under a request in flight.
package dataplane

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// Snapshot is one compiled configuration. It holds the resources of its
// routes' policy stages (its scope), which it releases when it is retired
// and its last request has finished (Retire, Acquire, Release).
type Snapshot struct {
	Config    *config.Config
	listeners map[string]*listenerRoutes
	trusted   proxy.TrustedProxies
	none      *telemetry.RouteStats

	scope   *policy.Scope
	refs    atomic.Int64 // requests (and retiring listeners) using it
	retired atomic.Bool
}

// listenerRoutes is the route table of one listener and, indexed by
// route.Route.Index, each route's handler chain and instruments.
type listenerRoutes struct {
	snap     *Snapshot
	table    *route.Table
	handlers []http.Handler
	stats    []*telemetry.RouteStats
}

// Deps are the long-lived parts a snapshot uses but does not own.
type Deps struct {
	Clusters map[string]*proxy.Cluster
	Metrics  *telemetry.Metrics
	Tunnels  *proxy.Tunnels
	Logger   *slog.Logger
	// Policies build each route's stages, in policy.Order whatever their
	// order here.
	Policies []policy.Builder
	// Shared keeps policy resources across snapshots while their config is
	// unchanged (nil: each snapshot opens its own).
	Shared *policy.Shared
	// Tracer, when set, has the forwarders make a client span per attempt.
	Tracer *telemetry.Tracer
}

// Build compiles cfg into a snapshot. On error, whatever the stages built
// so far had opened is released.
func Build(cfg *config.Config, d Deps) (snap *Snapshot, err error) {
	builders, err := policy.Sorted(d.Policies)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Config:    cfg,
		listeners: make(map[string]*listenerRoutes, len(cfg.Listeners)),
		trusted:   proxy.ParseTrustedProxies(cfg.Server.TrustedProxies),
		none:      d.Metrics.Route("none"),
		scope:     policy.NewScope(d.Shared),
	}
	defer func() {
		if err != nil {
			s.scope.Close()
		}
	}()
	if err := unenforced(cfg, builders); err != nil {
		return nil, err
	}
	// Members of a BFF group match within their group's hosts, path
	// prefix and headers.
	effective, err := config.ApplyBFF(cfg.Routes, cfg.BFF)
	if err != nil {
		return nil, err
	}
	ups := &upstreams{d: &d}
	stats := map[string]*telemetry.RouteStats{}
	for _, l := range cfg.Listeners {
		var routes []config.Route
		for _, r := range effective {
			if len(r.Listeners) == 0 || contains(r.Listeners, l.Name) {
				routes = append(routes, r)
			}
		}
		table, err := route.Compile(routes)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		lr := &listenerRoutes{snap: s, table: table}
		for _, r := range table.Routes() {
			h, err := routeHandler(r, &d)
			if err != nil {
				return nil, err
			}
			env := policy.Env{Route: r.Name, Scope: s.scope, Upstreams: ups, Logger: d.Logger,
				Reroute: func(upstream string) (http.Handler, error) { return d.forwarder(r, upstream) }}
			if h, err = policy.Chain(builders, r.Config, env, h); err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Name, err)
			}
			if stats[r.Name] == nil {
				stats[r.Name] = d.Metrics.Route(r.Name)
			}
			lr.handlers = append(lr.handlers, h)
			lr.stats = append(lr.stats, stats[r.Name])
		}
		s.listeners[l.Name] = lr
	}
	return s, nil
}

// Acquire returns the current snapshot, held until Release: a retired
// snapshot's resources stay open while a request still runs on it.
func Acquire(current *atomic.Pointer[Snapshot]) *Snapshot {
	for {
		s := current.Load()
		s.refs.Add(1)
		// The snapshot may have been swapped out (and found unused) between
		// the load and the count: then take the new one.
		if current.Load() == s {
			return s
		}
		s.Release()
	}
}

// Release ends a use begun by Acquire (or hold).
func (s *Snapshot) Release() {
	if s.refs.Add(-1) == 0 && s.retired.Load() {
		s.scope.Close()
	}
}

// hold counts one more use of a snapshot the caller already uses.
func (s *Snapshot) hold() { s.refs.Add(1) }

// Retire marks a snapshot replaced (or the node stopped): its resources are
// released once no request runs on it. Call it once, after the swap.
func (s *Snapshot) Retire() {
	s.scope.Retire() // what only it holds is not handed to a later snapshot
	s.retired.Store(true)
	if s.refs.Load() == 0 {
		s.scope.Close()
	}
}

// forwarder is a forwarder of route r to the named upstream's cluster: the
// route's one forwarder, or one per target of its split.
func (d *Deps) forwarder(r *route.Route, upstream string) (*proxy.Forwarder, error) {
	cluster := d.Clusters[upstream]
	if cluster == nil {
		return nil, fmt.Errorf("route %q: upstream %q has no cluster", r.Name, upstream)
	}
	return proxy.NewForwarder(r, d.forwarderOptions(cluster)), nil
}

func (d *Deps) forwarderOptions(cluster *proxy.Cluster) proxy.ForwarderOptions {
	return proxy.ForwarderOptions{
		Cluster: cluster,
		Tunnels: d.Tunnels,
		Logger:  d.Logger,
		Tracing: d.Tracer != nil,
		Hooks:   proxy.Hooks{Retry: d.Metrics.Retry, BudgetExhausted: d.Metrics.BudgetExhausted},
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unenforced refuses sections that no stage of this node would act on: a
// route with auth that nothing checks must not serve as if it were open.
func unenforced(cfg *config.Config, builders []policy.Builder) error {
	has := func(name string) bool {
		for _, b := range builders {
			if b.Name() == name {
				return true
			}
		}
		return false
	}
	for _, r := range cfg.Routes {
		if r.Auth != nil && (!has("auth") || len(cfg.Tiers) > 0 && r.Auth.TierLimitsOn() && !has("tier_limit")) {
			return fmt.Errorf("route %q: auth is not enforced by this node; remove it", r.Name)
		}
		if r.Transform != nil && !has("transform") {
			return fmt.Errorf("route %q: transform is not applied by this node; remove it", r.Name)
		}
		if r.Aggregate != nil && !has("aggregate") {
			return fmt.Errorf("route %q: aggregate is not served by this node; remove it", r.Name)
		}
	}
	for _, l := range cfg.Listeners {
		// The entry enforces consumers after verifying the caller's SPIFFE
		// ID: only on an mTLS listener.
		if l.Consumers != nil && l.MTLS == nil {
			return fmt.Errorf("listener %q: consumers are enforced on mtls listeners only; add mtls or remove them", l.Name)
		}
	}
	return nil
}
