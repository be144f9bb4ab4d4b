package ratelimit

import (
	"math"
	"time"
)

// A Decision is the answer for one request, with what the RateLimit response
// headers need.
type Decision struct {
	Allowed bool
	Limit   int64
	// Remaining is how many more requests this node may admit, after this
	// one: what the estimate leaves and, with peers, no more than the rest
	// of this node's claim plus the room no node has claimed (share.go).
	// Peers claiming that room meanwhile make it over-promise by what they
	// claim, as any limiter's Remaining does while others take requests.
	Remaining int64
	// Reset is the time until the current window ends.
	Reset time.Duration
	// RetryAfter, when denied, is the time until the estimate would admit
	// the request if nobody else were admitted meanwhile, rounded up to the
	// millisecond; 0 when the request
	// asks for more than the limit and can never be admitted.
	RetryAfter time.Duration
}

// Allow counts one request for key and reports whether it is admitted.
func (p *Policy) Allow(key string) bool { return p.Decide(key, 1).Allowed }

// AllowN counts n requests for key as one decision: all admitted or none.
func (p *Policy) AllowN(key string, n int64) bool { return p.Decide(key, n).Allowed }

// Decide counts n requests for key if the sliding-window estimate of the
// cluster's count leaves room for them. n ≤ 0 counts nothing and reports
// whether one more request would be admitted. It never blocks on the
// network and, for a key that exists, does not allocate.
func (p *Policy) Decide(key string, n int64) Decision {
	now := p.l.clk.Now().UnixNano()
	return p.decide(p.entry(key, now/p.winNs), key, now, n)
}

// decide is Decide on key's entry e, which may have expired since it was
// looked up: then the key is looked up again.
func (p *Policy) decide(e *entry, key string, now, n int64) Decision {
	w := now / p.winNs
	limit := p.limit.Load()
	isolated := p.l.isolated()
	// With peers, admit only within this node's claim (share.go).
	shared := !isolated && !p.l.noShares && p.l.peerCount.Load() > 0
	extrapolate := p.l.extrapolate
	elapsed := now - w*p.winNs
	for {
		cur, prev := &e.slots[w&1], &e.slots[(w+1)&1]
		cw, pw := cur.win.Load(), prev.win.Load()
		if cw != w || pw != w-1 {
			if cw > w || pw >= w {
				// Another goroutine, with a slightly later clock, rolled
				// into the next window: decide at its start.
				w, elapsed = max(cw, pw), 0
				continue
			}
			e.mu.Lock()
			dead := e.dead
			if !dead {
				e.rollLocked(w, p.winNs)
			}
			e.mu.Unlock()
			if dead {
				e = p.entry(key, w)
			}
			continue
		}
		if isolated && p.closed.Load() {
			e.denied.Add(1)
			return Decision{Limit: limit, Reset: time.Duration(p.winNs - elapsed), RetryAfter: p.l.interval}
		}
		local := cur.local.Load()
		curTotal, prevTotal := float64(local), float64(prev.local.Load())
		if !isolated {
			curTotal += float64(cur.peers.Load())
			prevTotal += float64(prev.peers.Load())
			if extrapolate > 0 {
				curTotal += extrapolation(cur, elapsed, extrapolate)
			}
		}
		frac := float64(elapsed) / float64(p.winNs)
		est := prevTotal*(1-frac) + curTotal
		d := Decision{Limit: limit, Reset: time.Duration(p.winNs - elapsed)}
		ask := max(n, 0)
		if est+float64(max(ask, 1)) > float64(limit)+epsilon {
			if n > 0 {
				e.denied.Add(1)
				offer(cur, n, now)
			}
			d.RetryAfter = retryAfter(prevTotal, curTotal, float64(max(ask, 1)), float64(limit), frac, p.winNs)
			return d
		}
		if shared && n > 0 && local+n > cur.claim.Load() {
			if p.raise(e, w, now, n) {
				continue // the claim grew (or the window rolled): decide again
			}
			e.denied.Add(1)
			offer(cur, n, now)
			// The next raise comes at most an interval after the last one.
			d.RetryAfter = max(time.Duration(cur.raisedAt.Load()+int64(p.l.interval)-now), time.Millisecond)
			d.RetryAfter = (d.RetryAfter + time.Millisecond - 1).Truncate(time.Millisecond)
			return d
		}
		if n > 0 && !cur.local.CompareAndSwap(local, local+n) {
			continue // a concurrent request counted first: decide again on the new count
		}
		if n > 0 {
			e.admitted.Add(1)
			offer(cur, n, now)
		}
		d.Allowed = true
		d.Remaining = int64(float64(limit) - est - float64(ask) + epsilon)
		if shared {
			// What this node may still admit: the rest of its claim and
			// the room no claim holds (which it can claim as its requests
			// need it), no more than the estimate leaves. The claim alone
			// under-promised wildly (a paid tier of 10,000 said 0 after its
			// first request: the claim grows a chunk at a time). A tiny
			// key's non-owner cannot claim: only its claim's rest counts.
			rest := cur.claim.Load() - local - ask
			if !p.tiny() || p.ownsKey(key) {
				rest += max(p.unclaimedRoom(cur, prev, now, w), 0)
			}
			d.Remaining = max(min(d.Remaining, rest), 0)
		}
		return d
	}
}

// offer counts n requests asked of this node (its demand, for the shares).
func offer(s *slot, n, now int64) {
	s.offered.Add(n)
	if s.firstAt.Load() == 0 {
		s.firstAt.CompareAndSwap(0, now)
	}
}

// extrapolation estimates what the peers admitted since their last reports:
// Σ rate_i × (now − t_i), from the sums kept in the slot, bounded by
// Σ rate_i × horizon so a peer that went silent is not extrapolated forever.
func extrapolation(s *slot, elapsed, horizon int64) float64 {
	rate := math.Float64frombits(s.rate.Load())
	if rate <= 0 {
		return 0
	}
	x := rate*float64(elapsed)/1e9 - math.Float64frombits(s.rateT.Load())
	return max(0, min(x, rate*float64(horizon)/1e9))
}

// retryAfter solves the sliding-window estimate for the first moment it
// admits n more, assuming nobody is admitted meanwhile: later in this window
// as the previous window's weight fades, or in the next one, where this
// window becomes the previous.
func retryAfter(prev, cur, n, limit, frac float64, winNs int64) time.Duration {
	room := limit - n
	switch {
	case room < 0:
		return 0
	case cur <= room:
		if prev <= 0 {
			return 0
		}
		f := 1 - (room-cur)/prev
		return ceilMs(f-frac, winNs)
	default:
		g := 1 - room/cur
		return ceilMs(1-frac+g, winNs)
	}
}

// epsilon absorbs floating-point noise, so that an estimate that is exactly
// at the limit in real numbers (75 + 25 = 100) is treated as such.
const epsilon = 1e-6

// ceilMs converts a fraction of a window to a duration rounded up to the
// millisecond, ignoring floating-point noise below a microsecond.
func ceilMs(frac float64, winNs int64) time.Duration {
	ms := math.Ceil(frac*float64(winNs)/1e6 - 1e-3)
	return time.Duration(max(ms, 0)) * time.Millisecond
}

func f64bits(f float64) uint64 { return math.Float64bits(f) }
