package ratelimit

import (
	"sync"
	"sync/atomic"
)

// maxPeersPerKey bounds the peer records one key keeps, so that a state
// naming thousands of invented nodes cannot grow a key without limit.
const maxPeersPerKey = 1024

// An entry is one key's counts. The hot path reads and bumps the slots with
// atomics only; everything else (the peers' records, rolling the slots to a
// new window) happens under mu, off the hot path.
type entry struct {
	key string
	// slots[w&1] holds window w. Allow needs the current and the previous
	// window; both are rolled together under mu.
	slots [2]slot

	admitted atomic.Int64
	denied   atomic.Int64

	mu    sync.Mutex
	dead  bool      // removed from its policy's map; callers look the key up again
	peers []peerRec // one per peer that reported this key
	over  [2]cell   // over[w&1]: the excess over the limit already counted for w

	// Guarded by Limiter.flushMu:
	sent [2]sentCell // sent[w&1]: this node's record for w last gossiped
	hash uint64      // of policy and key, for message sharding; 0: not yet computed
}

// A slot is one window of one key, as the hot path needs it: this node's
// exact count and the peers' reported counts, summed when they arrive.
type slot struct {
	win   atomic.Int64
	local atomic.Int64
	peers atomic.Int64
	// For extrapolation (see Options.Extrapolate): the sum of the peers'
	// recent rates, in requests per second, and the sum of rate × report
	// time, in seconds since the window began; both float64 bits.
	rate  atomic.Uint64
	rateT atomic.Uint64

	// Burst shares (share.go). This node's demand (requests asked for,
	// admitted or not), the count it may reach in this window (its claim),
	// when it last raised the claim and when the key first had a request
	// here in this window (local ns; 0: not yet).
	offered atomic.Int64
	claim   atomic.Int64
	// published is offered as of this node's last flush.
	published atomic.Int64
	// mineAtNews is published as of the last change of the peers' records.
	mineAtNews atomic.Int64
	raisedAt   atomic.Int64
	firstAt    atomic.Int64
	// The peers' claims (each at least its count) and demand, summed, and
	// how many peers reported the window.
	peerClaims  atomic.Int64
	peerOffered atomic.Int64
	reporters   atomic.Int64
	// budget is what this node may still claim in the interval that began
	// at raisedAt; guarded by the entry's mu.
	budget int64
}

// A cell is a count for a window.
type cell struct{ win, n int64 }

// A sentCell is what Flush last sent of this node's record for a window.
type sentCell struct{ win, n, claim, offered int64 }

// A peerCell is one peer's record for a window: its count, claim and
// demand, each the maximum received (each only grows within a window).
type peerCell struct{ win, n, claim, offered int64 }

// A peerRec is what one peer last reported for one key: its counts for up to
// three windows (the previous, the current, and the next one for a peer
// whose clock runs a little ahead), each the maximum ever received. Keeping
// the maximum per (node, key, window) is what makes merging idempotent: a
// repeated, reordered or relayed report never adds anything twice.
type peerRec struct {
	node  string
	cells [3]peerCell // cells[w%3] holds window w

	// Rate estimate for the newest window, for extrapolation.
	newest   int64   // newest window reported
	rate     float64 // requests per second
	rateAt   int64   // local time (ns) of the report that set the rate
	rateBase int64   // the count at rateAt
}

// minRateSpan is the shortest span between two reports that updates a peer's
// rate; closer reports (a relay right behind the original) would make it spike.
const minRateSpan = 20_000_000 // ns

func newEntry(key string) *entry { return &entry{key: key} }

// rollLocked moves the slots to windows w−1 and w, never backwards. A slot
// that changes window starts from this node's zero and the peers' counts
// already recorded for its new window.
func (e *entry) rollLocked(w, winNs int64) {
	for _, t := range [2]int64{w - 1, w} {
		s := &e.slots[t&1]
		if s.win.Load() >= t {
			continue
		}
		s.local.Store(0)
		s.offered.Store(0)
		s.published.Store(0)
		s.mineAtNews.Store(0)
		s.claim.Store(0)
		s.raisedAt.Store(0)
		s.firstAt.Store(0)
		s.budget = 0
		// Set the counts before the window, so a reader that sees the new
		// window sees its counts too.
		e.sumPeersLocked(s, t, winNs)
		s.win.Store(t)
	}
}

// sumPeersLocked recomputes slot s's peer sums for window t.
func (e *entry) sumPeersLocked(s *slot, t, winNs int64) {
	var sum, claims, offered, reporters int64
	var rate, rateT float64
	start := t * winNs
	for i := range e.peers {
		r := &e.peers[i]
		c := r.cells[t%3]
		if c.win != t {
			continue
		}
		sum += c.n
		claims += max(c.n, c.claim)
		offered += max(c.n, c.offered)
		reporters++
		if r.newest == t && r.rate > 0 {
			rate += r.rate
			rateT += r.rate * float64(r.rateAt-start) / 1e9
		}
	}
	s.peers.Store(sum)
	s.peerClaims.Store(claims)
	s.peerOffered.Store(offered)
	s.reporters.Store(reporters)
	s.mineAtNews.Store(s.published.Load())
	s.rate.Store(f64bits(rate))
	s.rateT.Store(f64bits(rateT))
}

// refreshLocked recomputes the peer sums of both slots after records changed.
func (e *entry) refreshLocked(winNs int64) {
	for i := range e.slots {
		s := &e.slots[i]
		e.sumPeersLocked(s, s.win.Load(), winNs)
	}
}

// adoptLocked raises this node's own count for window t to n. A report about
// this node that is higher than what it counted means it restarted and lost
// its counts; taking them back from the cluster keeps the total whole. Its
// claim and demand are taken back the same way (the peers count them).
func (e *entry) adoptLocked(t, n, claim, offered int64) bool {
	s := &e.slots[t&1]
	if s.win.Load() != t {
		return false
	}
	raiseTo(&s.claim, claim)
	raiseTo(&s.offered, offered)
	for {
		cur := s.local.Load()
		if n <= cur {
			return false
		}
		if s.local.CompareAndSwap(cur, n) {
			return true
		}
	}
}

// raiseTo sets a to v if v is higher.
func raiseTo(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// upsertLocked records node's record for window t (count n, claim and
// demand offered), received at local time now. It reports whether that was
// news.
func (e *entry) upsertLocked(node string, t, n, claim, offered, now, winNs int64) bool {
	if n <= 0 && claim <= 0 && offered <= 0 {
		return false
	}
	var r *peerRec
	for i := range e.peers {
		if e.peers[i].node == node {
			r = &e.peers[i]
			break
		}
	}
	if r == nil {
		if len(e.peers) >= maxPeersPerKey {
			return false
		}
		e.peers = append(e.peers, peerRec{node: node})
		r = &e.peers[len(e.peers)-1]
	}
	c := &r.cells[t%3]
	switch {
	case c.win > t, c.win == t && n <= c.n && claim <= c.claim && offered <= c.offered:
		return false
	case c.win < t:
		*c = peerCell{win: t}
	}
	if n > c.n {
		c.n = n
		r.observeRate(t, n, now, winNs)
	}
	c.claim, c.offered = max(c.claim, claim), max(c.offered, offered)
	return true
}

// observeRate updates the peer's rate from a new count for window t: the
// increase since the last rate sample over the local time between them, or
// for a new window, the count over the time since the window began.
func (r *peerRec) observeRate(t, n, now, winNs int64) {
	switch {
	case t > r.newest:
		span := max(now-t*winNs, 100_000_000)
		r.newest, r.rate, r.rateAt, r.rateBase = t, float64(n)/(float64(span)/1e9), now, n
	case t == r.newest && now-r.rateAt >= minRateSpan:
		inst := float64(n-r.rateBase) / (float64(now-r.rateAt) / 1e9)
		r.rate = (r.rate + inst) / 2 // smooth the jitter of delivery times
		r.rateAt, r.rateBase = now, n
	}
}

// pruneLocked drops peer records whose windows are all older than w−1 (dead:
// no estimate reads them again) and reports whether the entry is idle: no
// count or traffic in windows w−1 and later. Its names are added to live.
func (e *entry) pruneLocked(w int64, live map[string]struct{}) (idle bool) {
	kept := e.peers[:0]
	for _, r := range e.peers {
		alive := false
		for _, c := range r.cells {
			if c.win >= w-1 && (c.n > 0 || c.claim > 0 || c.offered > 0) {
				alive = true
			}
		}
		if alive {
			kept = append(kept, r)
			if live != nil {
				live[r.node] = struct{}{}
			}
		}
	}
	clear(e.peers[len(kept):]) // release the node names
	e.peers = kept
	return len(kept) == 0 && e.slots[0].win.Load() < w-1 && e.slots[1].win.Load() < w-1
}

// countsLocked returns this node's and the peers' counts for window t, read
// without rolling (introspection must not keep an idle key alive).
func (e *entry) countsLocked(t int64) (local, peers int64, reporters int) {
	if s := &e.slots[t&1]; s.win.Load() == t {
		local = s.local.Load()
	}
	for i := range e.peers {
		if c := e.peers[i].cells[t%3]; c.win == t && c.n > 0 {
			peers += c.n
			reporters++
		}
	}
	return local, peers, reporters
}

// noteOverLocked counts, once, by how much the known total of each window
// in the slots exceeds limit. Admitting never takes a fixed window past the
// limit on its own view (the sliding estimate is at least the current
// window's total), so any excess is what gossip delay or isolation let
// through, revealed when the peers' counts arrived.
func (e *entry) noteOverLocked(limit int64, counter *atomic.Int64) {
	for i := range e.slots {
		s := &e.slots[i]
		t := s.win.Load()
		excess := s.local.Load() + s.peers.Load() - limit
		o := &e.over[t&1]
		if o.win != t {
			*o = cell{win: t}
		}
		if excess > o.n {
			counter.Add(excess - o.n)
			o.n = excess
		}
	}
}

// activity is what a key saw in windows w−1 and w, on this node (asked
// for, admitted or not) and as its peers reported it: how much evicting it
// would forget.
func (e *entry) activity(w int64) int64 {
	var a int64
	for i := range e.slots {
		if s := &e.slots[i]; s.win.Load() >= w-1 {
			a += max(s.local.Load(), s.offered.Load()) + max(s.peers.Load(), s.peerOffered.Load())
		}
	}
	return a
}
