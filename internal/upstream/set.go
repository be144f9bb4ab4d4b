package upstream

import (
	"cmp"
	"slices"
	"sync"
)

// endpointSet is an immutable snapshot of the endpoints and everything the
// balancers precompute from them. Only rrCur (under rrMu) changes.
type endpointSet struct {
	eps    []*Endpoint
	byAddr map[string]*Endpoint
	total  int   // sum of weights
	equal  bool  // all weights equal: sample uniformly
	cum    []int // cum[i] = sum of weights of eps[0..i]
	limit  int64 // in-flight admission limit, see Acquire
	// gone are endpoints of earlier sets, no longer in this one, that had
	// attempts in flight when they left: requests stuck on them (a hung
	// host the cluster declared dead) do not count against the capacity
	// of the endpoints that are left (admissionLimit).
	gone []*Endpoint

	// consistent_hash ring: sorted points and the index of their endpoint.
	points []uint64
	owners []int32

	rrMu  sync.Mutex
	rrCur []int // smooth weighted round robin's current weights
}

// Ring size: 100 virtual nodes per unit of weight, scaled down when the
// total would exceed maxRingPoints.
const (
	vnodesPerWeight = 100
	maxRingPoints   = 1 << 17
)

// setAddresses is the Source's update callback: it builds the new set (the
// expensive part, outside anything a request waits on) and swaps it in.
// Endpoints whose address survives keep their *Endpoint and state.
func (u *Upstream) setAddresses(addrs []Address) {
	u.setMu.Lock()
	defer u.setMu.Unlock()
	old := u.set.Load()
	ns := u.buildSet(old, addrs)
	u.set.Store(ns)
	for _, e := range ns.eps {
		if old.byAddr[e.Addr] == nil {
			u.obs.EndpointHealth(u.name, e.Addr, e.Healthy())
		}
	}
	for _, e := range old.eps {
		if ns.byAddr[e.Addr] == nil {
			u.obs.EndpointRemoved(u.name, e.Addr)
		}
	}
	if len(old.eps) != len(ns.eps) || len(old.eps) == 0 {
		u.log.Info("endpoints changed", "count", len(ns.eps))
	}
	u.lim.wake(u) // a larger set raises the limit
}

// admissionLimit is the in-flight limit of the endpoints in the set plus
// the attempts still in flight on endpoints that left it.
func (s *endpointSet) admissionLimit() int64 {
	n := s.limit
	for _, e := range s.gone {
		n += e.inflight.Load()
	}
	return n
}

func (u *Upstream) buildSet(old *endpointSet, addrs []Address) *endpointSet {
	s := &endpointSet{byAddr: make(map[string]*Endpoint, len(addrs)), equal: true}
	for _, a := range addrs {
		if a.Addr == "" || s.byAddr[a.Addr] != nil {
			continue
		}
		w := a.Weight
		if w <= 0 {
			w = 1
		}
		var e *Endpoint
		if old != nil {
			e = old.byAddr[a.Addr]
		}
		if e == nil || e.Weight != w || e.Host != a.Host {
			ne := &Endpoint{Addr: a.Addr, Weight: w, Host: a.Host, up: u, brk: u.breakerFor(a.Addr)}
			ne.healthy.Store(true)
			if e != nil {
				ne.inherit(e)
			}
			e = ne
		}
		s.byAddr[e.Addr] = e
		s.eps = append(s.eps, e)
		s.total += w
		s.cum = append(s.cum, s.total)
		if w != s.eps[0].Weight {
			s.equal = false
		}
	}
	s.rrCur = make([]int, len(s.eps))
	n := len(s.eps)
	if n == 0 {
		n = 1
	}
	s.limit = int64(u.cfg.MaxConnections) * int64(n)
	if old != nil {
		for _, e := range slices.Concat(old.eps, old.gone) {
			if s.byAddr[e.Addr] != e && e.inflight.Load() > 0 {
				s.gone = append(s.gone, e)
			}
		}
	}
	if u.policy == consistentHash {
		s.buildRing()
	}
	return s
}

// inherit carries the state of an endpoint whose weight or host changed
// into its replacement (in-flight attempts finish on the old one).
func (e *Endpoint) inherit(old *Endpoint) {
	e.healthy.Store(old.healthy.Load())
	e.ewmaNs.Store(old.ewmaNs.Load())
	e.ewmaAt.Store(old.ewmaAt.Load())
	old.mu.Lock()
	e.hcOK, e.hcFail = old.hcOK, old.hcFail
	e.ejections, e.returnedAt = old.ejections, old.returnedAt
	until := old.ejectedUntil
	if old.ejectTimer != nil {
		old.ejectTimer.Stop()
		old.ejectTimer = nil
	}
	old.mu.Unlock()
	if !until.IsZero() {
		d := until.Sub(e.up.clk.Now())
		if d <= 0 {
			d = 1
		}
		e.ejected.Store(true)
		e.ejectedUntil = until
		e.ejectTimer = e.up.clk.AfterFunc(d, func() { e.up.unEject(e) })
	}
}

func (s *endpointSet) buildRing() {
	per := make([]int, len(s.eps))
	total := 0
	for i, e := range s.eps {
		per[i] = vnodesPerWeight * e.Weight
		total += per[i]
	}
	if total > maxRingPoints {
		for i, e := range s.eps {
			per[i] = max(1, maxRingPoints*e.Weight/s.total)
		}
	}
	type point struct {
		p uint64
		o int32
	}
	var pts []point
	for i, e := range s.eps {
		base := hashString(e.Addr)
		for v := range per[i] {
			pts = append(pts, point{mix64(base ^ mix64(uint64(v)+0x9e3779b97f4a7c15)), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.p, b.p); c != 0 {
			return c
		}
		return cmp.Compare(a.o, b.o)
	})
	s.points = make([]uint64, len(pts))
	s.owners = make([]int32, len(pts))
	for i, p := range pts {
		s.points[i], s.owners[i] = p.p, p.o
	}
}

// hashString is 64-bit FNV-1a followed by a finalizer, so that similar
// strings ("10.0.0.1:80", "10.0.0.2:80") land far apart.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
