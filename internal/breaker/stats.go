package breaker

import "sync/atomic"

// Stats are a Registry's counters, for metrics.
type Stats struct {
	// Transitions counts state changes by the state entered and the cause.
	Transitions map[Transition]uint64
	// ReportsSent are this node's own reports; ReportsReceived the peers'
	// reports merged (broadcast or in a state), of which ReportsStale were
	// not newer than what the node held and ReportsDropped found the
	// store full.
	ReportsSent, ReportsReceived, ReportsStale, ReportsDropped uint64
	// BadMessages are malformed messages and states, rejected.
	BadMessages uint64
}

// Transition labels a state change in Stats.
type Transition struct {
	To    State
	Cause string
}

type counters struct {
	transitions                         [3][len(causes)]atomic.Uint64
	sent, received, stale, dropped, bad atomic.Uint64
}

// Stats returns the counters so far.
func (r *Registry) Stats() Stats {
	c := &r.stats
	s := Stats{
		Transitions:     make(map[Transition]uint64),
		ReportsSent:     c.sent.Load(),
		ReportsReceived: c.received.Load(),
		ReportsStale:    c.stale.Load(),
		ReportsDropped:  c.dropped.Load(),
		BadMessages:     c.bad.Load(),
	}
	for to := range c.transitions {
		for i := range c.transitions[to] {
			if n := c.transitions[to][i].Load(); n > 0 {
				s.Transitions[Transition{State(to), causes[i]}] = n
			}
		}
	}
	return s
}
