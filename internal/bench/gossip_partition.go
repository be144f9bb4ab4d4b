package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/meshtest"
	"github.com/meshgate/meshgate/internal/replica"
)

// Partition and heal: six nodes, split 3/3 by meshtest's fault-injecting
// wrapper around each mTLS transport, for two rate-limit windows (long
// enough for memberlist to declare the other side dead, so the heal has to
// go through the cluster's reconnects to failed members). During the split
// each side writes its own routes and both write the same route (a
// conflict that last-writer-wins must settle the same way everywhere).
// After the heal: the time until every node holds every route and the
// same version of the contested one, and until every node sees all five
// peers alive again.
//
// The rate limit runs throughout, 3× the limit spread evenly over the six
// nodes, so each side alone has 1.5× the limit of demand. While split, each
// side can only count its own admissions, so each side admits up to the
// limit (the cluster, up to twice it): that is the policy's documented
// availability choice, and the check is per side. After the heal every
// window must again admit at most 1.05× the limit cluster-wide: the
// counts merged from the other side must not be added twice.

// partitionRun is what the partition measurement found.
type partitionRun struct {
	nodes            int
	healRoutesMs     float64 // heal → every node has every route, contested one settled
	healMembersMs    float64 // heal → every node sees every other alive
	splitSeen        bool    // the sides had declared each other failed before the heal
	beforeRatio      float64 // cluster, the window before the split
	splitSideRatios  []float64
	afterRatios      []float64 // cluster, windows after the heal
	healWindowRatio  float64   // cluster, the window of the heal (both sides' admissions)
	routesConverged  bool
	membersConverged bool
	warnings         int64
}

func measurePartition(ctx context.Context, o gossipOpts) (*partitionRun, error) {
	const n = 6
	nw := meshtest.NewNetwork()
	g, err := newGCluster(o.verbose)
	if err != nil {
		return nil, err
	}
	g.wrap = func(addr string, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return nw.Wrap(addr, t)
	}
	defer g.close()
	if err := g.start(ctx, "p", n, o.joinTimeout(n)); err != nil {
		return nil, err
	}
	sides := [2][]*gnode{g.nodes[:n/2], g.nodes[n/2:]}
	var addrs [2][]string
	for s, nodes := range sides {
		for _, nd := range nodes {
			addrs[s] = append(addrs[s], nd.c.Addr())
		}
	}

	limit := rlLimitFor(o.rlWindow)
	if err := setPolicy(g.nodes, limit, o.rlWindow); err != nil {
		return nil, err
	}
	d := newRLDemand(o.rlWindow, 2)
	per := rlOverdrive * float64(limit) / o.rlWindow.Seconds() / n
	for s, nodes := range sides {
		for _, nd := range nodes {
			d.add(per, s, nd)
		}
	}
	start := nextBoundary(o.rlWindow)
	w0 := start.UnixNano() / int64(o.rlWindow)
	dctx, cancel := context.WithCancel(ctx)
	wg := d.run(dctx, start)
	defer func() { cancel(); wg.Wait() }()
	warn0 := g.logs.n.Load()
	win := func(i int) time.Time { return start.Add(time.Duration(i) * o.rlWindow) }
	ratio := func(w int64, group int) float64 { return float64(d.count(w, group)) / float64(limit) }
	r := &partitionRun{nodes: n}

	// Window 0 warms up, window 1 is the unsplit reference; the split
	// lasts windows 2 … 1+splitWindows.
	if err := sleepCtx(ctx, time.Until(win(2))); err != nil {
		return nil, err
	}
	nw.Partition(addrs[0], addrs[1])
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	// Contested first, so each side's later writes are not what decides
	// it: the side whose write has the higher Lamport clock wins.
	for s, nodes := range sides {
		if _, err := nodes[0].store.Put(config.KindRoute, "contested", routeValue("contested", 100+s)); err != nil {
			return nil, err
		}
		for k := range 3 {
			name := fmt.Sprintf("side%d-%d", s, k)
			if _, err := nodes[k%len(nodes)].store.Put(config.KindRoute, name, routeValue(name, 10*s+k)); err != nil {
				return nil, err
			}
		}
	}
	healAt := win(2 + o.splitWindows)
	if err := sleepCtx(ctx, time.Until(healAt.Add(-200*time.Millisecond))); err != nil {
		return nil, err
	}
	// Did each side give the other up? (Then the heal relies on the
	// reconnects; otherwise memberlist's own probes and suspicion refutes
	// would do.)
	r.splitSeen = true
	for s, nodes := range sides {
		for _, nd := range nodes {
			for _, other := range sides[1-s] {
				if nd.c.Alive(other.name) {
					r.splitSeen = false
				}
			}
		}
	}
	if err := sleepCtx(ctx, time.Until(healAt)); err != nil {
		return nil, err
	}
	nw.Heal()
	healed := time.Now()

	routesOK := func() bool {
		var want replica.Version
		for i, nd := range g.nodes {
			for s := range 2 {
				for k := range 3 {
					if _, ok := nd.store.Get(config.KindRoute, fmt.Sprintf("side%d-%d", s, k)); !ok {
						return false
					}
				}
			}
			it, ok := nd.store.Get(config.KindRoute, "contested")
			if !ok || i > 0 && it.Version != want {
				return false
			}
			want = it.Version
		}
		return true
	}
	membersOK := func() bool {
		for _, nd := range g.nodes {
			if nd.c.Peers() != n-1 {
				return false
			}
			for _, other := range g.nodes {
				if other != nd && !nd.c.Alive(other.name) {
					return false
				}
			}
		}
		return true
	}
	wait := o.convergeWait + 10*time.Second // a reconnect to a failed member comes every 2.5–5 s
	deadline := healed.Add(wait)
	for (!r.routesConverged || !r.membersConverged) && time.Now().Before(deadline) {
		if !r.routesConverged && routesOK() {
			r.routesConverged, r.healRoutesMs = true, ms(time.Since(healed))
		}
		if !r.membersConverged && membersOK() {
			r.membersConverged, r.healMembersMs = true, ms(time.Since(healed))
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}

	// Rate-limit windows after the heal: the heal's own window, then the
	// measured ones.
	healW := 2 + o.splitWindows
	last := healW + o.afterWindows
	if err := sleepCtx(ctx, time.Until(win(last+1))); err != nil {
		return nil, err
	}
	cancel()
	wg.Wait()
	r.warnings = g.logs.n.Load() - warn0
	r.beforeRatio = ratio(w0+1, -1)
	for i := 2; i < healW; i++ {
		r.splitSideRatios = append(r.splitSideRatios, ratio(w0+int64(i), 0), ratio(w0+int64(i), 1))
	}
	r.healWindowRatio = ratio(w0+int64(healW), -1)
	for i := healW + 1; i <= last; i++ {
		r.afterRatios = append(r.afterRatios, ratio(w0+int64(i), -1))
	}
	return r, nil
}

// maxOf is the largest of xs (0 when empty).
func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}
