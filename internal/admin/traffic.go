package admin

import (
	"context"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// A traffic shift is written as cluster resources: one upstream per subset
// of the route's service ("<service>-<subset>", service discovery limited
// to that subset, the other settings copied from the route's upstream) and
// the route itself with a weighted split over them. The routes' split is
// the data path (routes[].split); this file only computes the weights.

type target struct {
	Upstream string `yaml:"upstream"`
	Weight   int    `yaml:"weight"`
}

// routeMap is a route as a YAML map, so that the shift changes only the
// fields it owns and keeps every other one as the operator wrote it.
func routeMap(r *config.Route) (map[string]any, error) {
	b, err := encode(r)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, yaml.Unmarshal(b, &m)
}

// targetsOf reads the route's current targets: its split, or its single
// upstream at 100.
func targetsOf(m map[string]any) []target {
	if sp, ok := m["split"].([]any); ok && len(sp) > 0 {
		var out []target
		for _, x := range sp {
			if e, ok := x.(map[string]any); ok {
				name, _ := e["upstream"].(string)
				w, _ := e["weight"].(int)
				out = append(out, target{name, w})
			}
		}
		return out
	}
	if u, ok := m["upstream"].(string); ok && u != "" {
		return []target{{u, 100}}
	}
	return nil
}

func upstreamByName(cfg *config.Config, name string) *config.Upstream {
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].Name == name {
			return &cfg.Upstreams[i]
		}
	}
	return nil
}

func (s *Server) findRoute(cfg *config.Config, name string) (*config.Route, error) {
	var names []string
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == name {
			return &cfg.Routes[i], nil
		}
		names = append(names, cfg.Routes[i].Name)
	}
	return nil, notFound(config.KindRoute, name, names)
}

// routeAsMap finds a route of the node's effective config and returns it
// as a generic map, the form a change is made in before it is encoded as
// a cluster resource, with the config it came from.
func (s *Server) routeAsMap(name string) (*config.Config, map[string]any, error) {
	cfg := s.b.Effective()
	rt, err := s.findRoute(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	m, err := routeMap(rt)
	if err != nil {
		return nil, nil, status.Error(codes.Internal, err.Error())
	}
	return cfg, m, nil
}

// split describes the route's current targets, with each one's subset.
func (s *Server) split(cfg *config.Config, r *config.Route) (*adminv1.TrafficSplit, error) {
	m, err := routeMap(r)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	ts := &adminv1.TrafficSplit{Route: r.Name}
	for _, t := range targetsOf(m) {
		tt := &adminv1.TrafficTarget{Upstream: t.Upstream, Weight: int32(t.Weight)}
		if u := upstreamByName(cfg, t.Upstream); u != nil && u.Service != nil {
			ts.Service, tt.Subset = u.Service.Name, u.Service.Subset
		}
		ts.Targets = append(ts.Targets, tt)
	}
	return ts, nil
}

// GetTraffic implements adminv1.AdminServer.
func (s *Server) GetTraffic(_ context.Context, r *adminv1.GetTrafficRequest) (*adminv1.TrafficSplit, error) {
	cfg := s.b.Effective()
	rt, err := s.findRoute(cfg, r.Route)
	if err != nil {
		return nil, err
	}
	return s.split(cfg, rt)
}

// ShiftTraffic implements adminv1.AdminServer: weight percent of the
// route's requests to the subset, the rest to the service's other subsets
// in proportion to what they had (equally when they had nothing).
func (s *Server) ShiftTraffic(_ context.Context, r *adminv1.ShiftTrafficRequest) (*adminv1.TrafficSplit, error) {
	if r.Weight < 0 || r.Weight > 100 {
		return nil, status.Errorf(codes.InvalidArgument, "weight %d: want a percent, 0..100", r.Weight)
	}
	if r.Subset == "" {
		return nil, status.Error(codes.InvalidArgument, "subset is required")
	}
	cfg, m, err := s.routeAsMap(r.Route)
	if err != nil {
		return nil, err
	}
	current := targetsOf(m)
	var base *config.Upstream
	for _, t := range current {
		if u := upstreamByName(cfg, t.Upstream); u != nil && u.Service != nil {
			base = u
			break
		}
	}
	if base == nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"route %q does not lead to a mesh service (an upstream with service:): there are no subsets to shift between", r.Route)
	}
	service := base.Service.Name

	// The subsets and what each gets now.
	live := s.subsets(service)
	if r.Weight > 0 && !r.AllowEmpty && !slices.Contains(live, r.Subset) {
		// Its requests would all be answered 503.
		return nil, status.Errorf(codes.FailedPrecondition,
			"service %s has no live endpoint in subset %q (subsets: %s); start its sidecar first, or pass --allow-empty to shift anyway",
			service, r.Subset, orNone(strings.Join(live, ", ")))
	}
	weights := map[string]float64{}
	for _, sub := range live {
		weights[sub] = 0
	}
	weights[r.Subset] += 0
	for _, t := range current {
		u := upstreamByName(cfg, t.Upstream)
		if u == nil || u.Service == nil || u.Service.Name != service {
			continue
		}
		if u.Service.Subset != "" {
			weights[u.Service.Subset] += float64(t.Weight)
			continue
		}
		for sub := range weights { // "all subsets": spread evenly
			weights[sub] += float64(t.Weight) / float64(len(weights))
		}
	}
	next := shareOut(weights, r.Subset, int(r.Weight))

	// Upstreams first: a node that gets the route before them leaves the
	// route out until they arrive, then takes both.
	var split []target
	for _, sub := range sortedKeys(next) {
		if next[sub] == 0 {
			continue
		}
		name := service + "-" + sub
		if err := s.ensureSubsetUpstream(cfg, base, name, sub); err != nil {
			return nil, err
		}
		split = append(split, target{name, next[sub]})
	}
	delete(m, "upstream")
	m["split"] = split
	if _, err := s.applyRoute(cfg, r.Route, m, codes.FailedPrecondition); err != nil {
		return nil, err
	}
	ts := &adminv1.TrafficSplit{Route: r.Route, Service: service}
	for _, t := range split {
		ts.Targets = append(ts.Targets, &adminv1.TrafficTarget{Upstream: t.Upstream, Subset: t.Upstream[len(service)+1:], Weight: int32(t.Weight)})
	}
	return ts, nil
}

// applyRoute writes a route, edited as a YAML map, to the cluster. A
// cluster route names its listeners: when the file's route did not, those
// it serves on at this node.
func (s *Server) applyRoute(cfg *config.Config, name string, m map[string]any, code codes.Code) ([]byte, error) {
	if ls, _ := m["listeners"].([]any); len(ls) == 0 {
		var names []string
		for _, l := range cfg.Listeners {
			names = append(names, l.Name)
		}
		m["listeners"] = names
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := s.b.ApplyResource(config.KindRoute, y); err != nil {
		if st, ok := status.FromError(err); ok {
			return nil, st.Err()
		}
		return nil, status.Errorf(code, "route %q: %v", name, err)
	}
	return y, nil
}

// subsets are the service's subsets among the cluster's members.
func (s *Server) subsets(service string) []string {
	c := s.b.Cluster()
	if c == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, m := range c.Members() {
		if m.Meta.Role == "sidecar" && m.Meta.Service == service && m.Meta.Subset != "" {
			seen[m.Meta.Subset] = true
		}
	}
	return sortedKeys(seen)
}

// ensureSubsetUpstream writes the subset's upstream unless the node has
// it already as it should be.
func (s *Server) ensureSubsetUpstream(cfg *config.Config, base *config.Upstream, name, subset string) error {
	if u := upstreamByName(cfg, name); u != nil {
		if u.Service == nil || u.Service.Name != base.Service.Name || u.Service.Subset != subset {
			return status.Errorf(codes.FailedPrecondition, "upstream %q exists and is not subset %s of service %s", name, subset, base.Service.Name)
		}
		return nil
	}
	up := *base
	up.Name = name
	up.Service = &config.ServiceRef{Name: base.Service.Name, Subset: subset}
	y, err := encode(&up)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if err := s.b.ApplyResource(config.KindUpstream, y); err != nil {
		if st, ok := status.FromError(err); ok {
			return st.Err()
		}
		return status.Errorf(codes.FailedPrecondition, "upstream %q: %v", name, err)
	}
	return nil
}

// shareOut gives subset its weight and the others the rest, in proportion
// to their current weights (equally when all are zero), in whole percents
// that add up to 100.
func shareOut(cur map[string]float64, subset string, weight int) map[string]int {
	out := map[string]int{subset: weight}
	var others []string
	total := 0.0
	for sub, w := range cur {
		if sub != subset {
			others = append(others, sub)
			total += w
		}
	}
	sort.Strings(others)
	rest := 100 - weight
	if len(others) == 0 {
		out[subset] = 100 // nothing else to send to
		return out
	}
	type frac struct {
		sub string
		f   float64
	}
	var fr []frac
	given := 0
	for _, sub := range others {
		share := float64(rest) / float64(len(others))
		if total > 0 {
			share = float64(rest) * cur[sub] / total
		}
		out[sub] = int(share)
		given += int(share)
		fr = append(fr, frac{sub, share - float64(int(share))})
	}
	// Largest remainders get the leftover percents.
	sort.SliceStable(fr, func(i, j int) bool { return fr[i].f > fr[j].f })
	for i := 0; given < rest; i = (i + 1) % len(fr) {
		out[fr[i].sub]++
		given++
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
