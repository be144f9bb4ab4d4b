package breaker

import (
	"cmp"
	"slices"
)

// The Registry is the gossip owner of the breakers' reports (it satisfies
// gossip.Owner structurally; this package does not import gossip).

// Kind tags the breaker reports on the wire.
func (r *Registry) Kind() byte { return 'b' }

// Merge applies one peer's broadcast report. relay is true when it was news
// here, so the cluster spreads it further; old news stops.
func (r *Registry) Merge(msg []byte) (relay bool, err error) {
	rep, err := decodeMessage(msg)
	if err != nil {
		r.stats.bad.Add(1)
		return false, err
	}
	r.mu.Lock()
	now := r.clock.Now()
	news := r.apply(rep, now)
	if b := r.lookup(rep.endpoint); news && b != nil {
		r.evaluate(b, now)
	}
	r.mu.Unlock()
	r.flush()
	return news, nil
}

// LocalState is every unexpired report this node holds, its own first, then
// open reports, for a push/pull exchange. Reports of peers that are no
// longer members are left out, and so is whatever exceeds maxStateEntries
// or about maxStateBytes.
func (r *Registry) LocalState() []byte {
	r.mu.Lock()
	now := r.clock.Now()
	r.sweep(now)
	rs := make([]report, 0, r.nreports)
	for ep, m := range r.reports {
		for rep, e := range m {
			if rep != r.node && !r.isAlive(rep) {
				continue
			}
			st := stateClosed
			if e.open {
				st = stateOpen
			}
			rs = append(rs, report{state: st, gen: e.gen, ttl: e.until.Sub(now), reporter: rep, endpoint: ep})
		}
	}
	r.mu.Unlock()
	rank := func(x report) int {
		switch {
		case x.reporter == r.node:
			return 0
		case x.state == stateOpen:
			return 1
		}
		return 2
	}
	slices.SortFunc(rs, func(a, b report) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.endpoint, b.endpoint),
			cmp.Compare(a.reporter, b.reporter))
	})
	size := 0
	for i, x := range rs {
		if size += len(x.reporter) + len(x.endpoint) + 24; i == maxStateEntries || size > maxStateBytes {
			rs = rs[:i]
			break
		}
	}
	return encodeState(rs)
}

// MergeState applies a peer's LocalState: it repairs whatever broadcasts
// this node missed. A malformed state is rejected whole.
func (r *Registry) MergeState(state []byte) error {
	rs, err := decodeState(state)
	if err != nil {
		r.stats.bad.Add(1)
		return err
	}
	r.mu.Lock()
	now := r.clock.Now()
	changed := make(map[string]bool)
	for _, rep := range rs {
		if r.apply(rep, now) {
			changed[rep.endpoint] = true
		}
	}
	for ep := range changed {
		if b := r.lookup(ep); b != nil {
			r.evaluate(b, now)
		}
	}
	r.mu.Unlock()
	r.flush()
	return nil
}
