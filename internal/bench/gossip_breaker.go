package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/breaker"
)

// Breaker propagation: how long after breakers trip on local failures every
// node of the cluster rejects requests to the endpoint (Breaker.State is
// Open, stamped by each registry's OnStateChange).
//
// The breaker package shares verdicts, not counts, and a peer's verdict is a
// vote: a node opens on Quorum (default 2) peers' reports, or on one report
// that its own recent failures corroborate. So two scenarios, each with a
// fresh endpoint per repetition:
//
//   - quorum (the headline number): the endpoint fails for two nodes, whose
//     breakers trip (5 consecutive failures each, back to back); the clock
//     starts when the second trips, the moment a quorum exists, and stops
//     when the last of the other eight has opened on their reports.
//   - evidence: the endpoint is down for everyone: each of nine nodes had
//     one failed request to it, one node trips; the clock starts at that
//     trip and stops when the last of the nine has opened on its report
//     and its own failure.

// breakerSettings are the defaults (5 consecutive failures, open 30 s,
// quorum 2): the open outlasts a repetition, so nothing recovers mid-way.
var breakerSettings = breaker.Settings{}

const breakerQuorum = 2 // breaker's default Quorum, which breakerSettings keeps

// breakerRun is what the breaker measurement found, in milliseconds per
// repetition; a repetition where some node never opened counts in missed.
type breakerRun struct {
	nodes          int
	quorumMs       []float64
	evidenceMs     []float64
	quorumMissed   int
	evidenceMissed int
	reps           int
	warnings       int64
}

// openStamps records when each node's breaker for one endpoint opened.
type openStamps struct {
	mu sync.Mutex
	at map[string][]time.Time // endpoint → per node
}

func (s *openStamps) watch(endpoint string, n int) {
	s.mu.Lock()
	s.at[endpoint] = make([]time.Time, n)
	s.mu.Unlock()
}

func (s *openStamps) opened(j int, endpoint string, to breaker.State) {
	if to != breaker.Open {
		return
	}
	now := time.Now()
	s.mu.Lock()
	if ts := s.at[endpoint]; ts != nil && ts[j].IsZero() {
		ts[j] = now
	}
	s.mu.Unlock()
}

// all returns the stamps of endpoint once every node has one.
func (s *openStamps) all(endpoint string) ([]time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.at[endpoint]
	for _, t := range ts {
		if t.IsZero() {
			return nil, false
		}
	}
	return append([]time.Time(nil), ts...), true
}

// fail sends k failed requests through b; it reports whether b is open
// afterwards.
func fail(b *breaker.Breaker, k int) bool {
	for range k {
		tk, err := b.Allow()
		if err != nil {
			break
		}
		tk.Done(false)
	}
	return b.State() == breaker.Open
}

func measureBreaker(ctx context.Context, o gossipOpts, n, reps int) (*breakerRun, error) {
	g, err := newGCluster(o.verbose)
	if err != nil {
		return nil, err
	}
	defer g.close()
	if err := g.start(ctx, "b", n, o.joinTimeout(n)); err != nil {
		return nil, err
	}
	stamps := &openStamps{at: map[string][]time.Time{}}
	for j, nd := range g.nodes {
		hook := func(endpoint string, to breaker.State) { stamps.opened(j, endpoint, to) }
		nd.breakerHook.Store(&hook)
	}
	defer func() {
		for _, nd := range g.nodes {
			nd.breakerHook.Store(nil)
		}
	}()
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	r := &breakerRun{nodes: n, reps: reps}
	warn0 := g.logs.n.Load()

	// one runs a repetition: prepare gives the nodes their history, trip
	// trips the reporters and returns when the clock starts.
	one := func(endpoint string, prepare func(bs []*breaker.Breaker), trip func(bs []*breaker.Breaker) (time.Time, error)) (float64, bool, error) {
		stamps.watch(endpoint, n)
		bs := make([]*breaker.Breaker, n)
		for j, nd := range g.nodes {
			bs[j] = nd.brk.Breaker(endpoint, breakerSettings)
		}
		prepare(bs)
		t0, err := trip(bs)
		if err != nil {
			return 0, false, err
		}
		var ts []time.Time
		ok := waitUntil(ctx, o.convergeWait, "every breaker open", func() bool {
			var done bool
			ts, done = stamps.all(endpoint)
			return done
		}) == nil
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		if !ok {
			return 0, false, nil
		}
		d, _ := latest(t0, ts)
		return ms(d), true, nil
	}

	for rep := range reps {
		if rep > 0 {
			if err := sleepCtx(ctx, o.breakerGap); err != nil {
				return nil, err
			}
		}
		// Quorum: nodes rep%n and (rep+1)%n trip.
		a, b := rep%n, (rep+1)%n
		v, ok, err := one(fmt.Sprintf("10.77.0.%d:8080", rep+1), func([]*breaker.Breaker) {},
			func(bs []*breaker.Breaker) (time.Time, error) {
				if !fail(bs[a], 5) || !fail(bs[b], 5) {
					return time.Time{}, fmt.Errorf("breakers of %s and %s did not trip on 5 failures", g.nodes[a].name, g.nodes[b].name)
				}
				return time.Now(), nil
			})
		if err != nil {
			return r, err
		}
		if ok {
			r.quorumMs = append(r.quorumMs, v)
		} else {
			r.quorumMissed++
		}

		if err := sleepCtx(ctx, o.breakerGap); err != nil {
			return nil, err
		}
		// Evidence: every other node saw one failure; node a trips.
		v, ok, err = one(fmt.Sprintf("10.77.1.%d:8080", rep+1), func(bs []*breaker.Breaker) {
			for j := range bs {
				if j != a {
					fail(bs[j], 1)
				}
			}
		}, func(bs []*breaker.Breaker) (time.Time, error) {
			if !fail(bs[a], 5) {
				return time.Time{}, fmt.Errorf("breaker of %s did not trip on 5 failures", g.nodes[a].name)
			}
			return time.Now(), nil
		})
		if err != nil {
			return r, err
		}
		if ok {
			r.evidenceMs = append(r.evidenceMs, v)
		} else {
			r.evidenceMissed++
		}
	}
	r.warnings = g.logs.n.Load() - warn0
	return r, nil
}
