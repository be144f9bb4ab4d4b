package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/route"
)

// Route convergence: a route is Put on a random node; the change has
// converged when every node's store holds it (seen through the store's
// OnChange and a Get, as the node's rebuild loop sees it) and, later, when
// every node has applied the cluster's resources over its base config
// (config.Overlay) and compiled the route table (route.Compile) with it:
// the snapshot a node would swap in. The node's own rebuild does the same
// two steps plus building its middleware chains, which the node tests
// measure.
//
// Each change writes a new route name, so no two changes compete for one
// last-writer-wins register: a writer that has not yet seen the previous
// change could otherwise lose to it by Lamport time, and the measurement
// would be of that race rather than of the spread.

// baseRoutes is how many routes every node's file config has besides the
// cluster's, so each compile does real work.
const baseRoutes = 20

// routeBaseYAML is every node's file config: one listener, one upstream and
// baseRoutes routes.
func routeBaseYAML() string {
	var b strings.Builder
	b.WriteString("listeners: [{name: public, address: \"127.0.0.1:0\"}]\n")
	b.WriteString("upstreams: [{name: u, endpoints: [{address: \"127.0.0.1:1\"}]}]\nroutes:\n")
	for i := range baseRoutes {
		fmt.Fprintf(&b, "  - {name: base-%d, match: {path: {prefix: /base/%d}}, upstream: u}\n", i, i)
	}
	return b.String()
}

// routeValue is the YAML of a cluster route, as an operator would apply it.
func routeValue(name string, i int) []byte {
	return fmt.Appendf(nil, "name: %s\nlisteners: [public]\nmatch: {path: {prefix: /bench/%d}}\nupstream: u\n", name, i)
}

// routeChange is one Put and when each node had it.
type routeChange struct {
	name     string
	at       time.Time
	seen     []time.Time // per node: the store held it (zero: not yet)
	compiled []time.Time // per node: a compiled table included it
}

// done reports whether every node has the change, in store and table.
func (c *routeChange) done() bool {
	for i := range c.seen {
		if c.seen[i].IsZero() || c.compiled[i].IsZero() {
			return false
		}
	}
	return true
}

// latest is how long the last node took, for stamps in ts.
func latest(at time.Time, ts []time.Time) (time.Duration, bool) {
	var d time.Duration
	for _, t := range ts {
		if t.IsZero() {
			return 0, false
		}
		d = max(d, t.Sub(at))
	}
	return d, true
}

// routeTracker follows the changes in flight on every node.
type routeTracker struct {
	nodes []*gnode
	base  *config.Config

	mu      sync.Mutex
	pending []*routeChange // not yet done everywhere
	all     []*routeChange

	compileErrs atomic.Int64
	compiles    atomic.Int64
	compileNs   atomic.Int64
}

// storeChanged is node j's store OnChange: stamp every pending change its
// store now holds. It runs on the goroutine that merged the news.
func (t *routeTracker) storeChanged(j int) {
	now := time.Now()
	st := t.nodes[j].store
	t.mu.Lock()
	for _, c := range t.pending {
		if c.seen[j].IsZero() {
			if _, ok := st.Get(config.KindRoute, c.name); ok {
				c.seen[j] = now
			}
		}
	}
	t.mu.Unlock()
}

// rebuild is node j's rebuild loop, coalescing store changes into one
// overlay and compile, as the node does.
func (t *routeTracker) rebuild(ctx context.Context, j int, kick <-chan struct{}) {
	st := t.nodes[j].store
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		start := time.Now()
		var res []config.Resource
		have := map[string]bool{}
		for _, kind := range []string{config.KindUpstream, config.KindRoute} {
			for _, it := range st.List(kind) {
				res = append(res, config.Resource{Kind: it.Kind, Name: it.Name, Value: it.Value, Deleted: it.Deleted})
				if kind == config.KindRoute && !it.Deleted {
					have[it.Name] = true
				}
			}
		}
		cfg, err := config.Overlay(t.base, res)
		if err == nil {
			_, err = route.Compile(cfg.Routes)
		}
		now := time.Now()
		t.compiles.Add(1)
		t.compileNs.Add(int64(now.Sub(start)))
		if err != nil {
			t.compileErrs.Add(1)
			continue // the node keeps serving its current table
		}
		t.mu.Lock()
		for _, c := range t.pending {
			if c.compiled[j].IsZero() && have[c.name] {
				c.compiled[j] = now
			}
		}
		t.mu.Unlock()
	}
}

// sweep drops the changes done everywhere from pending; it reports how many
// are still pending.
func (t *routeTracker) sweep() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := t.pending[:0]
	for _, c := range t.pending {
		if !c.done() {
			keep = append(keep, c)
		}
	}
	t.pending = keep
	return len(keep)
}

// routeRun is what one cluster size measured, in milliseconds per change:
// the time until the last node's store had it, and until the last node had
// compiled it. A change that never converged is counted in unconverged.
type routeRun struct {
	nodes       int
	changes     int
	storeMs     []float64
	compiledMs  []float64
	unconverged int
	compileMs   float64 // mean time of one overlay + compile
	warnings    int64
}

// measureRoutes starts n nodes, then Puts changes routes spaced by gap from
// random nodes, and waits for each to reach every node.
func measureRoutes(ctx context.Context, o gossipOpts, n, changes int) (*routeRun, error) {
	base, err := config.Parse("bench-base.yaml", []byte(routeBaseYAML()))
	if err != nil {
		return nil, fmt.Errorf("base config: %v", err)
	}
	g, err := newGCluster(o.verbose)
	if err != nil {
		return nil, err
	}
	defer g.close()
	t0 := time.Now()
	if err := g.start(ctx, fmt.Sprintf("r%d", n), n, o.joinTimeout(n)); err != nil {
		return nil, err
	}
	logf("  route n=%d: cluster of %d formed in %v", n, n, time.Since(t0).Round(time.Millisecond))

	t := &routeTracker{nodes: g.nodes, base: base}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		for _, nd := range g.nodes {
			nd.storeHook.Store(nil)
		}
	}()
	for j, nd := range g.nodes {
		kick := make(chan struct{}, 1)
		hook := func() {
			t.storeChanged(j)
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		nd.storeHook.Store(&hook)
		wg.Add(1)
		go func() { defer wg.Done(); t.rebuild(rctx, j, kick) }()
	}
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}

	warn0 := g.logs.n.Load()
	for i := range changes {
		if i > 0 {
			if err := sleepCtx(ctx, o.routeGap); err != nil {
				return nil, err
			}
		}
		c := &routeChange{name: fmt.Sprintf("bench-%d", i), seen: make([]time.Time, n), compiled: make([]time.Time, n)}
		w := g.nodes[rand.N(n)]
		t.mu.Lock()
		t.pending = append(t.pending, c)
		t.all = append(t.all, c)
		c.at = time.Now()
		t.mu.Unlock()
		// The writer's own OnChange runs inside Put and stamps it at once.
		if _, err := w.store.Put(config.KindRoute, c.name, routeValue(c.name, i)); err != nil {
			return nil, fmt.Errorf("put: %v", err)
		}
		t.sweep()
	}
	deadline := time.Now().Add(o.convergeWait)
	for t.sweep() > 0 && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}

	r := &routeRun{nodes: n, changes: changes, warnings: g.logs.n.Load() - warn0}
	t.mu.Lock()
	for _, c := range t.all {
		s, ok1 := latest(c.at, c.seen)
		k, ok2 := latest(c.at, c.compiled)
		if !ok1 || !ok2 {
			r.unconverged++
			continue
		}
		r.storeMs = append(r.storeMs, ms(s))
		r.compiledMs = append(r.compiledMs, ms(k))
	}
	t.mu.Unlock()
	if c := t.compiles.Load(); c > 0 {
		r.compileMs = ms(time.Duration(t.compileNs.Load() / c))
	}
	if e := t.compileErrs.Load(); e > 0 {
		return r, fmt.Errorf("%d overlay/compile errors", e)
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sleepCtx waits d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
