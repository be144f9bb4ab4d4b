package ratelimit

import (
	"math"
	"math/rand/v2"
	"time"
)

// Burst shares: what keeps a burst within the limit although every node
// decides alone on counts that are up to one flush plus one gossip delay
// old (see "Bursts" in the package documentation).
//
// While it has peers, a node admits a request only within its claim for
// the key's window: the count it may reach. Once per flush interval, the
// node sets itself a budget, its share of the room the cluster has left,
//
//	room   = limit − prev × (1 − f) − own claim − Σ peers' claims
//	share  = (1 − β) × demand_i / Σ demand + β / nodes
//	budget = share × room
//
// and within the interval it raises its claim from that budget as its
// requests need it, a chunk of about half an interval of its own demand at
// a time, flushing at once after each raise so that peers subtract the
// claim from their room within one gossip delay. Peers' claims are upper
// bounds on what they admit, so nodes that budget on the same stale view
// split one room, not one room each; claiming in chunks (rather than the
// whole budget) leaves what a node will not use to the others.

// shareFloor (β) gives every node a small part of the room whatever its
// recent demand, so that demand moving to a quiet node is admitted in the
// next interval rather than starved.
const shareFloor = 0.1

// budgetDamping (γ) budgets only part of a share per interval. Shares are
// computed from peers' demand as last reported, which lags a node's own by
// a gossip delay: while demand grows, every node overrates its share, and
// in the harness's worst phase (all nodes budgeting right after a
// synchronized flush) the shares of an even burst summed to 1.8. With γ =
// 1/2 the budgets stay within the room; the room then shrinks by about γ
// per interval (95 % of a 10 s limit in 0.6 s of a 3× burst).
const budgetDamping = 0.5

// raise tries to grow this node's claim on e's window w so that n more fit.
// It reports false when the node must deny: this interval's budget is
// spent, or the cluster has no room left. e's slots may have rolled since
// the caller looked: then it reports true, and the caller decides again.
func (p *Policy) raise(e *entry, w, now, n int64) bool {
	if p.tiny() {
		return p.raiseOwned(e, w, now, n) // owner.go
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, prev := &e.slots[w&1], &e.slots[(w+1)&1]
	if cur.win.Load() != w || prev.win.Load() != w-1 || cur.local.Load()+n <= cur.claim.Load() {
		return true // rolled, or another request raised it meanwhile
	}
	if at := cur.raisedAt.Load(); at == 0 || now-at >= int64(p.l.interval) {
		// A budget that finds no room still counts: the next try waits an
		// interval, for peers' news, instead of recomputing per request.
		cur.raisedAt.Store(now)
		cur.budget = p.grantLocked(cur, prev, now, now-w*p.winNs, n)
	}
	take := min(cur.budget, max(n, chunk(cur, now, p.l.interval)))
	if take < n {
		return false
	}
	cur.budget -= take
	cur.claim.Store(max(cur.claim.Load(), cur.local.Load()) + take)
	p.l.kick()
	return true
}

// chunk is how much a raise claims: this node's demand over half an
// interval, at its rate since the window's first request here.
func chunk(s *slot, now int64, interval time.Duration) int64 {
	elapsed := max(now-s.firstAt.Load(), int64(10*time.Millisecond))
	if s.firstAt.Load() == 0 {
		elapsed = int64(10 * time.Millisecond)
	}
	rate := float64(s.offered.Load()) / float64(elapsed) // per ns
	return int64(math.Ceil(rate * float64(interval) / 2))
}

// grantLocked is this node's share of the room left, in whole requests.
// Fractions are rounded at random, up with their probability, so that small
// limits split into expected shares rather than into nothing (all rounded
// down) or N × too much (all rounded up).
func (p *Policy) grantLocked(cur, prev *slot, now, elapsed, n int64) int64 {
	frac := float64(elapsed) / float64(p.winNs)
	prevTotal := float64(prev.local.Load() + prev.peers.Load())
	own := max(cur.claim.Load(), cur.local.Load())
	// The room is taken as it will be at the next budget, an interval on:
	// the previous window's weight decays meanwhile, and what it frees
	// would otherwise wait an interval for the next budget (lost at the
	// window's end). Claims still sum to at most Limit − prev × (1 − f − F/W)
	// ≤ Limit, and the estimate still decides each request.
	ahead := min(1, frac+float64(p.l.interval)/float64(p.winNs))
	room := float64(p.limit.Load()) - prevTotal*(1-ahead) - float64(own+cur.peerClaims.Load())
	if room < 1-epsilon {
		return 0
	}
	// Under continuing demand (the previous window had some), the last
	// sliver of room, what steady demand reopens per interval as the
	// previous window's weight decays (Limit × F / W), is budgeted whole:
	// damped too, a (1 − γ)/γ part of it stayed unclaimed at every
	// window's end, and steady demand admitted only about
	// Limit × (1 − F/(γW)) (0.92–0.93 with 4 s windows, the node package's
	// tier test). A burst after a quiet window is damped throughout; one
	// after a busy window overrates shares on the sliver by at most
	// (S − 1) × Limit × F / W.
	var sliver float64
	if prev.offered.Load()+prev.peerOffered.Load() > 0 {
		sliver = float64(p.limit.Load()) * float64(p.l.interval) / float64(p.winNs)
	}
	share := p.shareLocked(cur, prev, now, frac, n)
	g := share*min(room, sliver) + budgetDamping*share*max(room-sliver, 0)
	whole := math.Floor(g)
	if rand.Float64() < g-whole {
		whole++
	}
	return int64(whole)
}

// shareLocked is this node's part of the cluster's recent demand for the
// key (the previous window's weighted as in the estimate), with the floor β.
//
// A peer that has not reported the key has unknown demand. While the key's
// traffic here is new (no demand in the previous window, first request less
// than warmUp ago) such a peer is assumed to have as much as this node: a
// burst that starts on every node at once is then split evenly until the
// reports arrive, instead of each node taking it all. Afterwards a silent
// peer has had time to report, so it has none.
func (p *Policy) shareLocked(cur, prev *slot, now int64, frac float64, n int64) float64 {
	nodes := float64(p.l.peerCount.Load() + 1)
	// This node's demand as it had published it when the peers' last
	// reports arrived, not as of now: comparing a fresh count with stale
	// ones would give every node of an even burst more than its share.
	mine := float64(max(cur.mineAtNews.Load(), n)) + float64(prev.offered.Load())*(1-frac)
	peers := float64(cur.peerOffered.Load()) + float64(prev.peerOffered.Load())*(1-frac)
	first := cur.firstAt.Load()
	if prev.offered.Load() == 0 && (first == 0 || now-first < p.l.warmUp()) {
		silent := nodes - 1 - float64(max(cur.reporters.Load(), prev.reporters.Load()))
		peers += max(silent, 0) * mine
	}
	return (1-shareFloor)*mine/(mine+peers) + shareFloor/nodes
}

// warmUp is how long a peer may take to report a key it has traffic for:
// its next flush, plus gossip delivery and one relay.
func (l *Limiter) warmUp() int64 { return int64(3 * l.interval) }

// kick asks Run to flush now (a claim was raised), without blocking.
func (l *Limiter) kick() {
	select {
	case l.kicks <- struct{}{}:
	default:
	}
}

// takeKick reports whether a flush was asked for since the last call (for
// callers that drive Flush themselves instead of Run).
func (l *Limiter) takeKick() bool {
	select {
	case <-l.kicks:
		return true
	default:
		return false
	}
}

// minFlushGap spaces flushes asked for by raises, so that many keys raising
// at once cost one flush, not one each.
func (l *Limiter) minFlushGap() time.Duration { return l.interval / 4 }
