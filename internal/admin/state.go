package admin

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// ListBreakers implements adminv1.AdminServer.
func (s *Server) ListBreakers(context.Context, *adminv1.ListBreakersRequest) (*adminv1.ListBreakersResponse, error) {
	var out []*adminv1.Breaker
	for _, b := range s.b.Breakers().List() {
		br := &adminv1.Breaker{Endpoint: b.Endpoint, State: b.State.String(), Local: b.Local.String(), Cause: b.Cause,
			Reporters: b.Reporters}
		if !b.OpenUntil.IsZero() {
			br.OpenUntilUnixMs = b.OpenUntil.UnixMilli()
		}
		out = append(out, br)
	}
	return &adminv1.ListBreakersResponse{Breakers: out}, nil
}

// ResetBreaker implements adminv1.AdminServer.
func (s *Server) ResetBreaker(_ context.Context, r *adminv1.ResetBreakerRequest) (*adminv1.ResetBreakerResponse, error) {
	var known []string
	for _, b := range s.b.Breakers().List() {
		if b.Endpoint == r.Endpoint {
			s.b.Breakers().Reset(r.Endpoint)
			return &adminv1.ResetBreakerResponse{}, nil
		}
		known = append(known, b.Endpoint)
	}
	return nil, notFound("breaker", r.Endpoint, known)
}

// ListLimits implements adminv1.AdminServer: every counted key with the
// cluster's count as this node estimates it.
func (s *Server) ListLimits(context.Context, *adminv1.ListLimitsRequest) (*adminv1.ListLimitsResponse, error) {
	var out []*adminv1.Limit
	for _, k := range s.b.Limits().List() {
		out = append(out, &adminv1.Limit{Route: k.Policy, Key: k.Key, Limit: k.Limit, WindowMs: k.Window.Milliseconds(),
			Estimate: k.Estimate, Local: k.Local, Reporters: int32(k.Reporters)})
	}
	// Limits nobody has hit yet are listed too, with no key.
	seen := map[string]bool{}
	for _, l := range out {
		seen[l.Route] = true
	}
	if cfg := s.b.Effective(); cfg != nil {
		for _, r := range cfg.Routes {
			if rl := r.RateLimit; rl != nil && !seen[r.Name] {
				out = append(out, &adminv1.Limit{Route: r.Name, Limit: rl.Requests, WindowMs: rl.Window.D().Milliseconds()})
			}
		}
	}
	return &adminv1.ListLimitsResponse{Limits: out}, nil
}

// DeleteLimit implements adminv1.AdminServer: the route is rewritten
// without its rate limit, as a cluster resource.
func (s *Server) DeleteLimit(_ context.Context, r *adminv1.DeleteLimitRequest) (*adminv1.Resource, error) {
	cfg, m, err := s.routeAsMap(r.Route)
	if err != nil {
		return nil, err
	}
	if _, ok := m["rate_limit"]; !ok {
		return nil, status.Errorf(codes.NotFound, "route %q has no rate limit", r.Route)
	}
	delete(m, "rate_limit")
	y, err := s.applyRoute(cfg, r.Route, m, codes.FailedPrecondition)
	if err != nil {
		return nil, err
	}
	return &adminv1.Resource{Kind: config.KindRoute, Name: r.Route, Yaml: string(y), Origin: "cluster"}, nil
}

// SetLimit implements adminv1.AdminServer: the route is rewritten as a
// cluster resource with the new limit, so every node applies it.
func (s *Server) SetLimit(_ context.Context, r *adminv1.SetLimitRequest) (*adminv1.Resource, error) {
	if r.Requests < 1 {
		return nil, status.Errorf(codes.InvalidArgument, "requests %d: want at least 1", r.Requests)
	}
	cfg, m, err := s.routeAsMap(r.Route)
	if err != nil {
		return nil, err
	}
	rl, _ := m["rate_limit"].(map[string]any)
	if rl == nil {
		rl = map[string]any{}
	}
	rl["requests"] = r.Requests
	if r.WindowMs > 0 {
		rl["window"] = (time.Duration(r.WindowMs) * time.Millisecond).String()
	}
	if r.Key != "" {
		rl["key"] = r.Key // validated with the route
	}
	m["rate_limit"] = rl
	y, err := s.applyRoute(cfg, r.Route, m, codes.InvalidArgument)
	if err != nil {
		return nil, err
	}
	return &adminv1.Resource{Kind: config.KindRoute, Name: r.Route, Yaml: string(y), Origin: "cluster"}, nil
}
