package admin

import (
	"context"
	"time"

	"github.com/meshgate/meshgate/internal/clusterstats"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// UpstreamStats implements adminv1.AdminServer. A traffic shift asked of
// one node must judge the new subset on the whole cluster's traffic, not
// the share that passed through this node: the figures are merged over
// every live member that sent the upstream requests in the window (edges,
// and sidecars whose routes lead to it), from what each gossips.
func (s *Server) UpstreamStats(_ context.Context, r *adminv1.UpstreamStatsRequest) (*adminv1.UpstreamStatsResponse, error) {
	cs := s.b.ClusterStats()
	nodes := cs.Upstream(r.Upstream)
	if r.Local {
		nodes = nodes[:min(len(nodes), 1)] // the node's own comes first
	}
	m := clusterstats.Merge(nodes)
	if m.Requests == 0 && !s.knownUpstream(r.Upstream) {
		return nil, notFound("upstream", r.Upstream, s.upstreamNames())
	}
	roles := s.roles()
	out := &adminv1.UpstreamStatsResponse{Upstream: r.Upstream, Requests: m.Requests, Errors: m.Errors,
		P50Ms: ms(m.P50), P99Ms: ms(m.P99), WindowMs: cs.Window().Milliseconds()}
	for _, n := range nodes {
		role := roles[n.Node]
		if n.Self {
			role = s.b.Info().Role
		}
		out.Nodes = append(out.Nodes, nodeStats(n, role))
	}
	return out, nil
}

func nodeStats(n clusterstats.NodeSnapshot, role string) *adminv1.NodeUpstreamStats {
	return &adminv1.NodeUpstreamStats{Node: n.Node, Role: role, Requests: n.Requests, Errors: n.Errors,
		P50Ms: ms(n.P50), P99Ms: ms(n.P99), AgeMs: n.Age.Milliseconds()}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// roles are the cluster's members' roles by name.
func (s *Server) roles() map[string]string {
	out := map[string]string{}
	if c := s.b.Cluster(); c != nil {
		for _, m := range c.Members() {
			out[m.Name] = m.Meta.Role
		}
	}
	return out
}

// knownUpstream: an upstream of the effective config, idle or not (a
// known upstream without requests answers zeros, not NotFound).
func (s *Server) knownUpstream(name string) bool {
	if cfg := s.b.Effective(); cfg != nil {
		return upstreamByName(cfg, name) != nil
	}
	return false
}

func (s *Server) upstreamNames() []string {
	var names []string
	if cfg := s.b.Effective(); cfg != nil {
		for _, u := range cfg.Upstreams {
			names = append(names, u.Name)
		}
	}
	return names
}
