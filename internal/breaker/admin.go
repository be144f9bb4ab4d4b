package breaker

import (
	"slices"
	"strings"
	"time"
)

// Status is one breaker as the admin API shows it.
type Status struct {
	Endpoint string
	// State is what requests get now; Local is this node's own verdict:
	// Open while its own open report stands, Closed while State is an open
	// adopted from peers, else State.
	State, Local State
	// Cause is why the breaker entered State ("" if it never changed).
	Cause string
	// Reporters are the live peers whose open reports count now.
	Reporters []string
	// OpenUntil is when an open period ends (zero unless State is Open).
	OpenUntil time.Time
}

// List returns every breaker's status, by endpoint.
func (r *Registry) List() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	var out []Status
	r.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		st := Status{Endpoint: b.endpoint, State: b.cur.Load().state, Cause: b.cause}
		st.Local = st.State
		switch own := r.reports[b.endpoint][r.node]; {
		case own != nil && own.open && own.until.After(now):
			st.Local = Open
		case st.State == Open:
			st.Local = Closed
		}
		if st.State == Open {
			st.OpenUntil = b.until
		}
		for _, v := range r.votes(b.endpoint, now) {
			st.Reporters = append(st.Reporters, v.reporter)
		}
		slices.Sort(st.Reporters)
		out = append(out, st)
		return true
	})
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out
}

// Reset closes the endpoint's breaker on every node: an operator says the
// endpoint is fine. Here it forgets the peers' open reports and starts
// counting afresh; the reset report tells every peer to do the same, and
// each peer whose own open report stood withdraws it, which also reaches
// nodes the reset itself misses.
func (r *Registry) Reset(endpoint string) {
	r.mu.Lock()
	now := r.clock.Now()
	r.tombstone(endpoint, "")
	timeout := r.timeoutFor(endpoint)
	if b := r.lookup(endpoint); b != nil {
		b.voted = false // the reset report below withdraws it
		r.transition(b, Closed, CauseReset, time.Time{}, now)
		b.votes.Store(0)
	}
	r.report(endpoint, stateReset, timeout, now)
	r.mu.Unlock()
	r.flush()
}
