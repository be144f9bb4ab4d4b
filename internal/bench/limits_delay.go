package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// claimDelay measures d, the time a claim takes to reach the other nodes,
// on the cluster a limits case runs on and under its load: every `every` on average,
// one node (in turn) admits one request for a fresh key, which raises a
// claim and asks for a flush (share.go), and every other node is polled
// each millisecond until its view of the key counts that request. The
// delay of one node is from the Allow to its first view; the delay of a
// probe is the slowest node's (a claim bounds the others' budgets only once
// all of them have it).
type claimDelay struct {
	mu    sync.Mutex
	nodes []time.Duration // per (probe, receiving node)
	all   []time.Duration // per probe: the last node's
	lost  int             // probes some node had not seen after timeout
}

func (c *claimDelay) run(ctx context.Context, g *gcluster, every time.Duration, until time.Time) {
	const timeout = 3 * time.Second
	for j := 0; time.Now().Before(until); j++ {
		src := g.nodes[j%len(g.nodes)]
		key := fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), j)
		sent := time.Now()
		src.rl.Policy(rlPolicy).Allow(key)
		seen := make([]time.Duration, 0, len(g.nodes)-1)
		waiting := map[int]bool{}
		for i, nd := range g.nodes {
			if nd != src {
				waiting[i] = true
			}
		}
		for len(waiting) > 0 && time.Since(sent) < timeout && ctx.Err() == nil {
			for i := range waiting {
				if sees(g.nodes[i], key) {
					seen = append(seen, time.Since(sent))
					delete(waiting, i)
				}
			}
			time.Sleep(time.Millisecond)
		}
		c.mu.Lock()
		c.nodes = append(c.nodes, seen...)
		if len(waiting) == 0 {
			c.all = append(c.all, slices.Max(seen))
		} else {
			c.lost++
		}
		c.mu.Unlock()
		// Jittered, so that probes do not lock in phase with the gossip
		// rounds (100 ms) and measure one phase only.
		if err := sleepCtx(ctx, every/2+rand.N(every)); err != nil {
			return
		}
	}
}

// sees reports whether nd's view of key counts a request in this window.
func sees(nd *gnode, key string) bool {
	for _, k := range nd.rl.Policy(rlPolicy).List() {
		if k.Key == key {
			return k.Cluster > 0
		}
	}
	return false
}

func (c *claimDelay) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := func(xs []time.Duration, p float64) time.Duration {
		if len(xs) == 0 {
			return 0
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Millisecond)
	}
	return fmt.Sprintf("claim delay per node p50 %v p90 %v max %v; to all nodes p50 %v p90 %v max %v (%d probes, %d not seen by all in 3s)",
		q(c.nodes, 0.5), q(c.nodes, 0.9), q(c.nodes, 1), q(c.all, 0.5), q(c.all, 0.9), q(c.all, 1), len(c.all)+c.lost, c.lost)
}
