package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ratelimit"
)

// Rate-limit accuracy: one cluster-wide limit, one consumer key, demand of
// 3× the limit arriving at the nodes (80% on one node, 20% spread evenly
// over the others, each stream evenly spaced in time with a random phase).
// Every admitted request is counted in the policy's own fixed window
// (time / window, the windows the limiter's sliding estimate is built on);
// the result is admitted / limit per window. The demand starts on a window
// boundary, and the first window is left out: with no previous window the
// sliding estimate fills the limit at once, which says nothing about the
// cluster.
//
// Time is scaled: a window of rlWindow (6 s by default) with a limit of
// 1,000 × rlWindow / 1 min, so request rates are those of 1,000 per minute.
// Gossip delay is then a 10× larger share of the window than in the real
// 1-minute window, so the ratio is measured under harsher conditions than a
// deployment meets (BENCH_GOSSIP_RL_WINDOW=60s runs unscaled).

const (
	rlPolicy    = "api"
	rlKey       = "consumer-42"
	rlPerMin    = 1000
	rlOverdrive = 3.0 // × the limit
	rlHot       = 0.8 // share of the demand on the first node
)

// rlLimitFor is the limit per window that keeps the rate of 1,000 a minute.
func rlLimitFor(window time.Duration) int64 {
	return max(1, int64(float64(rlPerMin)*window.Seconds()/60+0.5))
}

// skewedRates splits the total request rate over n nodes: rlHot on the
// first, the rest evenly.
func skewedRates(total float64, n int) []float64 {
	r := make([]float64, n)
	if n == 1 {
		r[0] = total
		return r
	}
	r[0] = rlHot * total
	for i := 1; i < n; i++ {
		r[i] = (1 - rlHot) * total / float64(n-1)
	}
	return r
}

// rlStream is the requests of one client population, sent to one node (the
// node can change: a client fails over when its node dies).
type rlStream struct {
	rate  float64 // requests per second
	group int     // for per-group counts (the sides of a partition)
	node  atomic.Pointer[gnode]
}

// rlDemand drives streams and counts admissions per window and group.
type rlDemand struct {
	winNs   int64
	streams []*rlStream

	mu       sync.Mutex
	admitted map[int64][]int64 // window index → per group
	denied   map[int64]int64
	groups   int
}

func newRLDemand(window time.Duration, groups int) *rlDemand {
	return &rlDemand{winNs: int64(window), admitted: map[int64][]int64{}, denied: map[int64]int64{}, groups: groups}
}

func (d *rlDemand) add(rate float64, group int, n *gnode) *rlStream {
	s := &rlStream{rate: rate, group: group}
	s.node.Store(n)
	d.streams = append(d.streams, s)
	return s
}

// run sends every stream's requests from start until ctx ends.
func (d *rlDemand) run(ctx context.Context, start time.Time) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, s := range d.streams {
		if s.rate <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			gap := time.Duration(float64(time.Second) / s.rate)
			next := start.Add(time.Duration(rand.Int64N(int64(gap))))
			for {
				if sleepCtx(ctx, time.Until(next)) != nil {
					return
				}
				next = next.Add(gap)
				n := s.node.Load()
				if n == nil || n.down.Load() {
					continue // the client has no node: the request is lost, not counted
				}
				now := time.Now()
				w := now.UnixNano() / d.winNs
				ok := n.rl.Policy(rlPolicy).Allow(rlKey)
				d.mu.Lock()
				if ok {
					if d.admitted[w] == nil {
						d.admitted[w] = make([]int64, d.groups)
					}
					d.admitted[w][s.group]++
				} else {
					d.denied[w]++
				}
				d.mu.Unlock()
			}
		}()
	}
	return &wg
}

// count returns the admissions of window w, all groups or one.
func (d *rlDemand) count(w int64, group int) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for g, c := range d.admitted[w] {
		if group < 0 || g == group {
			n += c
		}
	}
	return n
}

// nextBoundary is the start of the next window, plus a little so no request
// of the demand's first burst lands in the window before.
func nextBoundary(window time.Duration) time.Time {
	w := int64(window)
	return time.Unix(0, (time.Now().UnixNano()/w+1)*w).Add(20 * time.Millisecond)
}

// rlRun is one accuracy run: admitted/limit for each measured window.
type rlRun struct {
	nodes    int
	limit    int64
	window   time.Duration
	ratios   []float64
	killedAt int // index in ratios of the window where a node was killed; -1: none
	killed   string
	warnings int64
}

func setPolicy(nodes []*gnode, limit int64, window time.Duration) error {
	for _, n := range nodes {
		if err := n.rl.SetPolicies([]ratelimit.PolicyConfig{{Name: rlPolicy, Limit: limit, Window: window}}); err != nil {
			return err
		}
	}
	return nil
}

// measureRateLimit runs the skewed demand on n nodes for one warm-up window
// and windows measured ones. With kill, the hot node is shut down (no
// leave) in the middle of the second measured window, and its clients fail
// over to the next node: the demand stays 3× the limit, and the dead node's
// admissions of that window must still count on the survivors.
func measureRateLimit(ctx context.Context, o gossipOpts, n, windows int, kill bool) (*rlRun, error) {
	g, err := newGCluster(o.verbose)
	if err != nil {
		return nil, err
	}
	defer g.close()
	if err := g.start(ctx, fmt.Sprintf("l%d", n), n, o.joinTimeout(n)); err != nil {
		return nil, err
	}
	limit := rlLimitFor(o.rlWindow)
	if err := setPolicy(g.nodes, limit, o.rlWindow); err != nil {
		return nil, err
	}
	d := newRLDemand(o.rlWindow, 1)
	rates := skewedRates(rlOverdrive*float64(limit)/o.rlWindow.Seconds(), n)
	var streams []*rlStream
	for i, nd := range g.nodes {
		streams = append(streams, d.add(rates[i], 0, nd))
	}
	r := &rlRun{nodes: n, limit: limit, window: o.rlWindow, killedAt: -1}

	start := nextBoundary(o.rlWindow)
	w0 := start.UnixNano() / int64(o.rlWindow)
	dctx, cancel := context.WithCancel(ctx)
	wg := d.run(dctx, start)
	defer func() { cancel(); wg.Wait() }()
	warn0 := g.logs.n.Load()

	end := start.Add(time.Duration(windows+1) * o.rlWindow)
	if kill {
		r.killedAt = min(1, windows-1)
		at := start.Add(time.Duration(r.killedAt+1)*o.rlWindow + o.rlWindow/2)
		if err := sleepCtx(ctx, time.Until(at)); err != nil {
			return nil, err
		}
		victim := g.nodes[0]
		streams[0].node.Store(g.nodes[1])
		victim.kill()
		r.killed = victim.name
	}
	if err := sleepCtx(ctx, time.Until(end)); err != nil {
		return nil, err
	}
	cancel()
	wg.Wait()
	r.warnings = g.logs.n.Load() - warn0
	for i := range windows {
		r.ratios = append(r.ratios, float64(d.count(w0+1+int64(i), -1))/float64(limit))
	}
	return r, nil
}
