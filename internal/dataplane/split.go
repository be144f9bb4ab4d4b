package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/route"
)

// A route with a split (routes[].split) has a forwarder per upstream of
// positive weight, each with the route's own settings (timeouts, retries,
// rewrite, headers), and a splitter in front of them that picks one per
// request. The pick happens once, before the forwarder: retries stay within
// the chosen upstream, and the route's middlewares (rate limit, …) wrap the
// splitter, so they see the request once whatever the target.

// routeHandler is the innermost handler of a route: the forwarder to its
// upstream, or a splitter over a forwarder per target of its split. A split
// with a single target of positive weight is just that target's forwarder.
func routeHandler(r *route.Route, d *Deps) (http.Handler, error) {
	if r.Config.Aggregate != nil {
		return composite{}, nil
	}
	targets := r.Config.Split
	if len(targets) == 0 {
		f, err := d.forwarder(r, r.Upstream)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	var handlers []http.Handler
	var weights []int
	for _, t := range targets {
		w := t.WeightOrZero()
		if w <= 0 {
			continue // gets nothing: no forwarder either
		}
		f, err := d.forwarder(r, t.Upstream)
		if err != nil {
			return nil, err
		}
		handlers = append(handlers, f)
		weights = append(weights, w)
	}
	switch len(handlers) {
	case 0:
		return nil, fmt.Errorf("route %q: every split weight is 0", r.Name)
	case 1:
		return handlers[0], nil
	}
	return newSplitter(handlers, weights, rand.Uint64()), nil
}

// composite is the innermost handler of a composite route (aggregate): the
// aggregate stage answers every request itself, and a snapshot without that
// stage refuses the route (unenforced), so nothing reaches it; if anything
// ever did, it fails closed.
type composite struct{}

func (composite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	exchange.WriteReason(w, exchange.From(r.Context()), exchange.AggregateCallFailed, "aggregate: not served by this node")
}

// splitter sends each request to one of its targets in proportion to their
// weights, by nginx's smooth weighted round robin: every pick, each target
// adds its weight to its current weight, the one with the largest current
// weight wins and gives back the total. Over any run of sum(weights)
// consecutive picks each target gets exactly its weight, interleaved as
// evenly as possible (5/1/1 gives a a b a c a a), so N requests give each
// target its share of N within one request.
//
// That sequence is periodic, so it is computed once when the snapshot is
// built (one period, reduced by the weights' greatest common divisor: at
// most 10 targets × weight 100 = 1,000 entries), and a pick is one atomic
// increment and an index: no lock, no allocation, and exact under any
// concurrency, since every request takes its own position in the sequence.
//
// A splitter lives as long as its snapshot: a reload builds a new one. It
// starts at a random position of the period, so that nodes reloading often
// (a route gossiped every few seconds) do not all restart the period at the
// heavy target's run, starving a small canary.
type splitter struct {
	targets []http.Handler
	seq     []uint8 // one period of the smooth WRR sequence: indexes into targets
	next    atomic.Uint64
}

// newSplitter returns a splitter over handlers with their (positive)
// weights, starting at position start of the sequence.
func newSplitter(handlers []http.Handler, weights []int, start uint64) *splitter {
	s := &splitter{targets: handlers, seq: smoothSequence(weights)}
	s.next.Store(start % uint64(len(s.seq)))
	return s
}

// pick returns the index of the target of the next request. The counter
// wraps after 2^64 picks, where the sequence skips at most one period's
// remainder.
func (s *splitter) pick() int {
	i := s.next.Add(1) - 1
	return int(s.seq[i%uint64(len(s.seq))])
}

func (s *splitter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.targets[s.pick()].ServeHTTP(w, r)
}

// smoothSequence is one period of nginx's smooth weighted round robin over
// weights (each > 0, at most 256 of them), reduced by their greatest common
// divisor.
func smoothSequence(weights []int) []uint8 {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	ws := make([]int, len(weights))
	for i, w := range weights {
		ws[i] = w / g
		total += ws[i]
	}
	cur := make([]int, len(ws))
	seq := make([]uint8, total)
	for n := range seq {
		best := 0
		for i, w := range ws {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq[n] = uint8(best)
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
