package admin

import (
	"context"
	"errors"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/replica"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// PurgeCache implements adminv1.AdminServer. The route must be one this
// node knows (a typo gets the closest names, not a purge that matches
// nothing anywhere); it need not have a cache here, since the nodes that
// cache it are the ones that act.
func (s *Server) PurgeCache(_ context.Context, r *adminv1.PurgeCacheRequest) (*adminv1.PurgeCacheResponse, error) {
	if cfg := s.b.Effective(); cfg != nil && routeOf(cfg, r.Route) == nil {
		var names []string
		for _, rt := range cfg.Routes {
			names = append(names, rt.Name)
		}
		return nil, notFound(config.KindRoute, r.Route, names)
	}
	p, err := cache.NewPurge(r.Route, r.Mode, r.Value, time.Now())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id, removed, err := s.b.PurgeCache(p)
	if err != nil {
		code := codes.FailedPrecondition
		if errors.Is(err, replica.ErrFull) || errors.Is(err, cache.ErrPurgeLimit) {
			code = codes.ResourceExhausted
		}
		return nil, backendError(code, err)
	}
	return &adminv1.PurgeCacheResponse{Id: id, Route: p.Route, Mode: p.Mode, Value: p.Value, AtUnixMs: p.At.UnixMilli(),
		Node: s.b.Info().Name, PurgedHere: uint64(removed)}, nil
}

// CacheStats implements adminv1.AdminServer: the routes with a cache in
// the node's configuration, and any other route its stores or counters
// still know (one just removed, say), sorted by name.
func (s *Server) CacheStats(_ context.Context, r *adminv1.CacheStatsRequest) (*adminv1.CacheStatsResponse, error) {
	held, counts := s.b.CacheStores().Stats(), s.b.CacheCounts()
	routes := map[string]bool{}
	var known []string
	if cfg := s.b.Effective(); cfg != nil {
		for _, rt := range cfg.Routes {
			known = append(known, rt.Name)
			if rt.Cache != nil {
				routes[rt.Name] = true
			}
		}
	}
	for name := range held {
		routes[name] = true
	}
	for name := range counts {
		routes[name] = true
	}
	if r.Route != "" {
		if !routes[r.Route] {
			if cfg := s.b.Effective(); cfg != nil && routeOf(cfg, r.Route) != nil {
				return nil, status.Errorf(codes.FailedPrecondition, "route %q has no cache on this node", r.Route)
			}
			return nil, notFound(config.KindRoute, r.Route, known)
		}
		routes = map[string]bool{r.Route: true}
	}
	out := &adminv1.CacheStatsResponse{Node: s.b.Info().Name}
	for name := range routes {
		st := &adminv1.CacheRouteStats{Route: name, EvictionsByReason: map[string]uint64{}}
		if h, ok := held[name]; ok {
			st.Entries, st.Bytes = h.Entries, h.Bytes
		}
		c := counts[name]
		st.Hits, st.Misses, st.Stale = c.Results[cache.ResultHit], c.Results[cache.ResultMiss], c.Results[cache.ResultStale]
		st.Revalidations, st.Collapsed, st.Bypass = c.Results[cache.ResultRevalidated], c.Results[cache.ResultCollapsed], c.Results[cache.ResultBypass]
		for reason, n := range c.Evictions {
			st.EvictionsByReason[reason] = n
			st.Evictions += n
		}
		out.Routes = append(out.Routes, st)
	}
	sort.Slice(out.Routes, func(i, j int) bool { return out.Routes[i].Route < out.Routes[j].Route })
	return out, nil
}

func routeOf(cfg *config.Config, name string) *config.Route {
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == name {
			return &cfg.Routes[i]
		}
	}
	return nil
}
