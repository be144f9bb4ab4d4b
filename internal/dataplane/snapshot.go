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

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// Snapshot is one compiled configuration.
type Snapshot struct {
	Config    *config.Config
	listeners map[string]*listenerRoutes
	trusted   proxy.TrustedProxies
	none      *telemetry.RouteStats
}

// listenerRoutes is the route table of one listener and, indexed by
// route.Route.Index, each route's handler chain and instruments.
type listenerRoutes struct {
	table    *route.Table
	handlers []http.Handler
	stats    []*telemetry.RouteStats
}

// Middleware wraps a route's handler. Later policies (auth, rate limits,
// breakers, transforms, caching) are added to a route's chain as
// Middlewares; each receives only its own route.
type Middleware func(r *route.Route, next http.Handler) (http.Handler, error)

// Deps are the long-lived parts a snapshot uses but does not own.
type Deps struct {
	Clusters    map[string]*proxy.Cluster
	Metrics     *telemetry.Metrics
	Tunnels     *proxy.Tunnels
	Logger      *slog.Logger
	Middlewares []Middleware // applied outermost first
	// Tracer, when set, has the forwarders make a client span per attempt.
	Tracer *telemetry.Tracer
}

// Build compiles cfg into a snapshot.
func Build(cfg *config.Config, d Deps) (*Snapshot, error) {
	s := &Snapshot{
		Config:    cfg,
		listeners: make(map[string]*listenerRoutes, len(cfg.Listeners)),
		trusted:   proxy.ParseTrustedProxies(cfg.Server.TrustedProxies),
		none:      d.Metrics.Route("none"),
	}
	stats := map[string]*telemetry.RouteStats{}
	for _, l := range cfg.Listeners {
		var routes []config.Route
		for _, r := range cfg.Routes {
			if len(r.Listeners) == 0 || contains(r.Listeners, l.Name) {
				routes = append(routes, r)
			}
		}
		table, err := route.Compile(routes)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		lr := &listenerRoutes{table: table}
		for _, r := range table.Routes() {
			h, err := routeHandler(r, &d)
			if err != nil {
				return nil, err
			}
			for i := len(d.Middlewares) - 1; i >= 0; i-- {
				if h, err = d.Middlewares[i](r, h); err != nil {
					return nil, fmt.Errorf("route %q: %w", r.Name, err)
				}
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

// forwarder is a forwarder of route r to the named upstream's cluster: the
// route's one forwarder, or one per target of its split.
func (d *Deps) forwarder(r *route.Route, upstream string) (*proxy.Forwarder, error) {
	cluster := d.Clusters[upstream]
	if cluster == nil {
		return nil, fmt.Errorf("route %q: upstream %q has no cluster", r.Name, upstream)
	}
	return proxy.NewForwarder(r, proxy.ForwarderOptions{
		Cluster: cluster,
		Tunnels: d.Tunnels,
		Logger:  d.Logger,
		Tracing: d.Tracer != nil,
		Hooks:   proxy.Hooks{Retry: d.Metrics.Retry, BudgetExhausted: d.Metrics.BudgetExhausted},
	}), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
