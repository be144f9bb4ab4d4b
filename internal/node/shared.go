package node

import (
	"context"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// startSharedState creates the node's circuit breakers and rate limiter:
// wired to the cluster when the node is in one (registered as owners, so
// their state travels with gossip), node-local otherwise.
func (n *Node) startSharedState() error {
	name := "local"
	var sendB, sendL func(string, []byte)
	var alive func(string) bool
	peers := func() int { return 0 }
	if n.mesh != nil {
		c := n.mesh.cluster
		name, sendB, sendL, alive, peers = c.Name(), c.Sender('b'), c.FrequentSender(ratelimit.Kind), c.Alive, c.Peers
	}
	var err error
	n.breakers, err = breaker.New(breaker.Options{Node: name, Send: sendB, Clock: n.opts.Clock, Alive: alive,
		Logger: n.log.With("component", "breaker"), OnStateChange: n.breakerChanged})
	if err != nil {
		return err
	}
	n.limits, err = ratelimit.New(ratelimit.Options{Node: name, Send: sendL, Clock: n.opts.Clock, Peers: peers,
		Logger: n.log.With("component", "ratelimit")})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopShared = func() { cancel(); n.sharedWG.Wait() }
	n.sharedWG.Add(1)
	go func() { defer n.sharedWG.Done(); n.limits.Run(ctx) }()
	if n.mesh != nil {
		c := n.mesh.cluster
		c.Register(n.breakers)
		c.Register(n.limits)
		n.sharedWG.Add(1)
		go func() {
			defer n.sharedWG.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-c.Watch():
					n.breakers.MembersChanged()
				}
			}
		}()
	}
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
			OverAdmitted: p.OverAdmitted, Keys: p.Keys})
	}
	return out
}
