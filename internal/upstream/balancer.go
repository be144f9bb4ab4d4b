package upstream

import (
	"math/rand/v2"
	"net"
	"net/http"
)

// Pick modes, tried in order until one yields an endpoint:
//
//	modeFresh:     available (healthy, not ejected, with room: fewer than
//	               max_connections attempts in flight) and not yet tried
//	modeAvailable: available, even if tried (a retry falls back to it)
//	modePanic:     any endpoint not yet tried, available or not
//	modeAny:       any endpoint
//
// The last two are the panic mode: when no endpoint is available, routing to
// all of them (as Envoy does below its panic threshold) beats failing every
// request — a health check or ejection may be wrong, and an endpoint that is
// really down fails fast with a connect error that the caller may retry.
const (
	modeFresh = iota
	modeAvailable
	modePanic
	modeAny
)

func eligible(e *Endpoint, mode int, exclude []*Endpoint) bool {
	if e.circuitOpen() {
		return false
	}
	if mode < modePanic && (!e.available() || e.full()) {
		return false
	}
	if mode == modeFresh || mode == modePanic {
		for _, x := range exclude {
			if x == e {
				return false
			}
		}
	}
	return true
}

// Pick chooses the endpoint for one attempt.
//
// hashKey is used by consistent_hash only: pass what HashKey returned; 0
// means "no key" (HashKey never returns 0 with ok), and the pick is then
// round robin. exclude lists the endpoints this request already tried: they
// are avoided while another available endpoint exists. When no endpoint is
// available (all unhealthy or ejected) Pick still returns one of them (panic
// mode, see above) — but never one whose circuit breaker is open. Errors:
// ErrNoEndpoint for an empty set, ErrCircuitOpen when every breaker is open.
//
// Pick does not allocate.
func (u *Upstream) Pick(hashKey uint64, exclude []*Endpoint) (*Endpoint, error) {
	s := u.set.Load()
	if len(s.eps) == 0 {
		return nil, ErrNoEndpoint
	}
	for mode := modeFresh; mode <= modeAny; mode++ {
		if len(exclude) == 0 && (mode == modeAvailable || mode == modeAny) {
			continue // same as the mode before
		}
		var e *Endpoint
		switch {
		case u.policy == leastRequest:
			e = s.pickP2C(u, mode, exclude)
		case u.policy == consistentHash && hashKey != 0:
			e = s.pickRing(hashKey, mode, exclude)
		default:
			e = s.pickRR(mode, exclude)
		}
		if e != nil {
			return e, nil
		}
	}
	for _, e := range s.eps {
		if !e.circuitOpen() {
			return nil, ErrNoEndpoint
		}
	}
	return nil, ErrCircuitOpen
}

// pickRR is nginx's smooth weighted round robin over the eligible endpoints:
// each adds its weight to its current weight, the largest wins and gives
// back the total. Equal weights give plain round robin.
func (s *endpointSet) pickRR(mode int, exclude []*Endpoint) *Endpoint {
	s.rrMu.Lock()
	best, total := -1, 0
	for i, e := range s.eps {
		if !eligible(e, mode, exclude) {
			continue
		}
		s.rrCur[i] += e.Weight
		total += e.Weight
		if best < 0 || s.rrCur[i] > s.rrCur[best] {
			best = i
		}
	}
	if best < 0 {
		s.rrMu.Unlock()
		return nil
	}
	s.rrCur[best] -= total
	s.rrMu.Unlock()
	return s.eps[best]
}

// pickP2C is the power of two choices: two distinct eligible endpoints are
// sampled (proportionally to weight), and the one with the lower score
// (in flight + 1) × latency EWMA wins. An endpoint without a latency sample
// yet takes the other's EWMA (the average of the pair), so that it is tried
// and compared on in-flight requests alone.
func (s *endpointSet) pickP2C(u *Upstream, mode int, exclude []*Endpoint) *Endpoint {
	a := s.sample(mode, exclude, -1)
	if a < 0 {
		return nil
	}
	b := s.sample(mode, exclude, a)
	if b < 0 {
		return s.eps[a]
	}
	ea, eb := s.eps[a], s.eps[b]
	now := u.clk.Now().UnixNano()
	la, lb := ea.ewmaAt0(now), eb.ewmaAt0(now)
	switch {
	case la == 0 && lb == 0:
		la, lb = 1, 1
	case la == 0:
		la = lb
	case lb == 0:
		lb = la
	}
	if float64(eb.inflight.Load()+1)*lb < float64(ea.inflight.Load()+1)*la {
		return eb
	}
	return ea
}

// sample returns the index of a random eligible endpoint other than not,
// drawn proportionally to weight, or -1. After a few misses it walks from a
// random start (uniformly) so that it always terminates.
func (s *endpointSet) sample(mode int, exclude []*Endpoint, not int) int {
	n := len(s.eps)
	for range 4 {
		i := s.randIndex()
		if i != not && eligible(s.eps[i], mode, exclude) {
			return i
		}
	}
	start := rand.IntN(n)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if i != not && eligible(s.eps[i], mode, exclude) {
			return i
		}
	}
	return -1
}

func (s *endpointSet) randIndex() int {
	if s.equal {
		return rand.IntN(len(s.eps))
	}
	r := rand.IntN(s.total)
	lo, hi := 0, len(s.cum)-1 // smallest i with cum[i] > r
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.cum[m] > r {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// pickRing walks the ring clockwise from the key's point to the first
// eligible endpoint: an unavailable or already tried endpoint's keys spread
// over the next ones instead of moving all to one neighbour.
func (s *endpointSet) pickRing(key uint64, mode int, exclude []*Endpoint) *Endpoint {
	pts := s.points
	n := len(pts)
	lo, hi := 0, n // first point >= key
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pts[m] < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for k := range n {
		i := lo + k
		if i >= n {
			i -= n
		}
		if e := s.eps[s.owners[i]]; eligible(e, mode, exclude) {
			return e
		}
	}
	return nil
}

// HashKey computes the consistent-hash key of a request per
// balancer.hash_on: the named header's value, the named cookie's value, or
// the client IP (clientIP as the caller determined it through trusted
// proxies; when empty, the host of r.RemoteAddr). ok is false when the
// policy is not consistent_hash or the value is absent; pass the returned key
// (0) to Pick anyway, which then balances round robin.
func (u *Upstream) HashKey(r *http.Request, clientIP string) (key uint64, ok bool) {
	h := u.cfg.Balancer.HashOn
	if u.policy != consistentHash || h == nil {
		return 0, false
	}
	var v string
	switch {
	case h.Header != "":
		v = r.Header.Get(h.Header)
	case h.Cookie != "":
		if c, err := r.Cookie(h.Cookie); err == nil {
			v = c.Value
		}
	case h.ClientIP:
		v = clientIP
		if v == "" {
			if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
				v = host
			} else {
				v = r.RemoteAddr
			}
		}
	}
	if v == "" {
		return 0, false
	}
	key = hashString(v)
	if key == 0 {
		key = 1
	}
	return key, true
}
