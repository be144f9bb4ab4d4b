package node

import (
	"io"

	"github.com/meshgate/meshgate/internal/auth"
	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/sharedstate"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// startSharedState creates the node's circuit breakers, rate limiter and
// shared upstream stats: wired to the cluster when the node is in one
// (registered as owners, so their state travels with gossip), node-local
// otherwise.
func (n *Node) startSharedState(cfg *config.Config) error {
	o := sharedstate.Options{Clock: n.opts.Clock, Logger: n.log, OnBreakerChange: n.breakerChanged, UpstreamStats: n.upstats}
	if n.mesh != nil {
		o.Cluster = n.mesh.cluster
		o.ExpectPeers = cfg.Cluster != nil && len(cfg.Cluster.Join) > 0
	}
	s, err := sharedstate.Start(o)
	if err != nil {
		return err
	}
	n.breakers, n.limits, n.clusterStats, n.stopShared = s.Breakers, s.Limits, s.Stats, s.Stop
	n.metrics.WatchSharedState(n.breakerView, n.limitView)
	return nil
}

// breakerChanged logs a breaker's state change: an operator wants to see
// when and why an endpoint stopped getting traffic.
func (n *Node) breakerChanged(endpoint string, from, to breaker.State, cause string) {
	if to == breaker.Open {
		n.log.Warn("circuit breaker opened", "endpoint", endpoint, "from", from.String(), "cause", cause)
		return
	}
	n.log.Info("circuit breaker state changed", "endpoint", endpoint, "from", from.String(), "to", to.String(), "cause", cause)
}

func (n *Node) breakerView() telemetry.BreakerView {
	v := telemetry.BreakerView{States: map[string]int{}, Transitions: map[[2]string]uint64{}}
	for _, s := range n.breakers.List() {
		v.States[s.Endpoint] = int(s.State)
	}
	st := n.breakers.Stats()
	for t, c := range st.Transitions {
		v.Transitions[[2]string{t.To.String(), t.Cause}] = c
	}
	v.Reports = map[string]uint64{"sent": st.ReportsSent, "received": st.ReportsReceived,
		"stale": st.ReportsStale, "dropped": st.ReportsDropped, "bad": st.BadMessages}
	return v
}

func (n *Node) limitView() []telemetry.LimitView {
	var out []telemetry.LimitView
	for _, p := range n.limits.Stats().Policies {
		out = append(out, telemetry.LimitView{Route: p.Policy, Admitted: p.Admitted, Denied: p.Denied,
			OverAdmitted: p.OverAdmitted, Keys: p.Keys, Evicted: p.Evicted})
	}
	return out
}

// tokenCacheView sums the token caches of the auth resources held, per
// definition: during a reload that changes one, its old and new verifier
// both live for a moment under the same name.
func (n *Node) tokenCacheView() []telemetry.TokenCacheView {
	type id struct{ kind, name string }
	sums := map[id]*telemetry.TokenCacheView{}
	var order []id
	n.policyRes.Each(func(r io.Closer) {
		tc, ok := auth.TokenCacheOf(r)
		if !ok {
			return
		}
		k := id{tc.Kind, tc.Name}
		v := sums[k]
		if v == nil {
			v = &telemetry.TokenCacheView{Kind: tc.Kind, Auth: tc.Name}
			sums[k] = v
			order = append(order, k)
		}
		v.Entries += tc.Entries
		v.Evictions += tc.Evictions
	})
	out := make([]telemetry.TokenCacheView, 0, len(order))
	for _, k := range order {
		out = append(out, *sums[k])
	}
	return out
}
