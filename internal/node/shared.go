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
// both live for a moment under the same name. Evictions are a counter: a
// cache that closes leaves its count to its definition's (tokenEvicted).
func (n *Node) tokenCacheView() []telemetry.TokenCacheView {
	type id struct{ kind, name string }
	sums := map[id]*telemetry.TokenCacheView{}
	var order []id
	live := map[any]tokenCacheSeen{}
	n.policyRes.Each(func(r io.Closer) {
		tc, ok := auth.TokenCacheOf(r)
		if !ok {
			return
		}
		live[tc.Source] = tokenCacheSeen{tc.Kind, tc.Name, tc.Evictions}
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
	n.tokenCacheMu.Lock()
	defer n.tokenCacheMu.Unlock()
	if n.tokenEvicted == nil {
		n.tokenEvicted = map[[2]string]uint64{}
	}
	for src, seen := range n.tokenCacheLive {
		if _, ok := live[src]; !ok { // closed since the last scrape
			n.tokenEvicted[[2]string{seen.kind, seen.name}] += seen.evictions
		}
	}
	n.tokenCacheLive = live
	for key, ev := range n.tokenEvicted {
		k := id{key[0], key[1]}
		v := sums[k]
		if v == nil {
			v = &telemetry.TokenCacheView{Kind: k.kind, Auth: k.name}
			sums[k] = v
			order = append(order, k)
		}
		v.Evictions += ev
	}
	out := make([]telemetry.TokenCacheView, 0, len(order))
	for _, k := range order {
		out = append(out, *sums[k])
	}
	return out
}

// tokenCacheSeen is a token cache as the last scrape saw it.
type tokenCacheSeen struct {
	kind, name string
	evictions  uint64
}
