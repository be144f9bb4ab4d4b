package ratelimit

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"
)

type counters struct {
	msgsSent, bytesSent               atomic.Int64
	directSent                        atomic.Int64
	msgsRecv, badMsgs                 atomic.Int64
	statesSent, statesRecv, badStates atomic.Int64
	statesTruncated                   atomic.Int64
	foreign                           atomic.Int64
}

// Stats are a Limiter's counters since it started, for metrics.
type Stats struct {
	MessagesSent int64
	// DirectSent counts the messages also sent straight to every peer
	// (Options.SendNow), each once whatever the number of peers.
	DirectSent       int64
	BytesSent        int64
	MessagesReceived int64
	BadMessages      int64 // rejected by Merge
	StatesSent       int64
	StatesReceived   int64
	BadStates        int64 // rejected by MergeState
	StatesTruncated  int64 // LocalState hit Options.MaxStateBytes
	// ForeignKeys counts keys received for a policy this node lacks or has
	// with another window (a config rollout in progress, or a mismatch).
	ForeignKeys int64
	Policies    []PolicyStats // by name
}

// PolicyStats are one policy's counters.
type PolicyStats struct {
	Policy string
	// Admitted and Denied count decisions (an AllowN is one), including
	// those of keys that have since expired.
	Admitted int64
	Denied   int64
	// OverAdmitted is the excess of the cluster's count over the limit, in
	// requests, summed over keys and windows, as this node learned it from
	// gossip. Every node that learns of an excess counts it, so the cluster's
	// figure is the maximum over nodes, not the sum.
	OverAdmitted int64
	Keys         int
	// Overflowed counts requests decided under OverflowKey (a key too long,
	// or the cap reached and no key could give way).
	Overflowed int64
	// Evicted counts keys removed at the cap to make room for a new one.
	Evicted int64
	// DroppedPeerKeys counts peers' keys not tracked because the cap was
	// reached.
	DroppedPeerKeys int64
}

// Stats returns the counters. It walks every key; call it at scrape rate,
// not per request.
func (l *Limiter) Stats() Stats {
	s := Stats{
		MessagesSent:     l.stats.msgsSent.Load(),
		DirectSent:       l.stats.directSent.Load(),
		BytesSent:        l.stats.bytesSent.Load(),
		MessagesReceived: l.stats.msgsRecv.Load(),
		BadMessages:      l.stats.badMsgs.Load(),
		StatesSent:       l.stats.statesSent.Load(),
		StatesReceived:   l.stats.statesRecv.Load(),
		BadStates:        l.stats.badStates.Load(),
		StatesTruncated:  l.stats.statesTruncated.Load(),
		ForeignKeys:      l.stats.foreign.Load(),
	}
	for _, p := range sortedPolicies(*l.policies.Load()) {
		s.Policies = append(s.Policies, p.Stats())
	}
	return s
}

// Stats returns the policy's counters.
func (p *Policy) Stats() PolicyStats {
	s := PolicyStats{
		Policy:          p.name,
		Admitted:        p.retiredAdmit.Load(),
		Denied:          p.retiredDeny.Load(),
		OverAdmitted:    p.overAdmitted.Load(),
		Keys:            p.keys.len(),
		Overflowed:      p.overflowed.Load(),
		Evicted:         p.evicted.Load(),
		DroppedPeerKeys: p.droppedPeer.Load(),
	}
	for _, e := range p.keys.appendAll(nil) {
		s.Admitted += e.admitted.Load()
		s.Denied += e.denied.Load()
	}
	return s
}

// KeyInfo describes one key, for the admin API.
type KeyInfo struct {
	Policy string
	Key    string
	Limit  int64
	Window time.Duration
	// Estimate is the sliding-window estimate of the cluster's count now,
	// from this node's count and the peers' reports (without extrapolation
	// or isolation): what the next decision compares with Limit.
	Estimate float64
	// Local is this node's count in the current window; Cluster adds the
	// peers' reported counts for it.
	Local   int64
	Cluster int64
	// Reporters is how many peers reported a count for the current window.
	Reporters int
}

// List describes every key of every policy, by policy and key.
func (l *Limiter) List() []KeyInfo {
	var out []KeyInfo
	for _, p := range sortedPolicies(*l.policies.Load()) {
		out = append(out, p.List()...)
	}
	return out
}

// List describes the policy's keys, sorted. It reads without rolling
// windows, so looking does not keep an idle key alive.
func (p *Policy) List() []KeyInfo {
	now := p.l.clk.Now().UnixNano()
	w := now / p.winNs
	frac := float64(now-w*p.winNs) / float64(p.winNs)
	ents := p.keys.appendAll(nil)
	out := make([]KeyInfo, 0, len(ents))
	for _, e := range ents {
		e.mu.Lock()
		lc, pc, n := e.countsLocked(w)
		lp, pp, _ := e.countsLocked(w - 1)
		e.mu.Unlock()
		out = append(out, KeyInfo{
			Policy: p.name, Key: e.key, Limit: p.limit.Load(), Window: p.window,
			Estimate: float64(lp+pp)*(1-frac) + float64(lc+pc),
			Local:    lc, Cluster: lc + pc, Reporters: n,
		})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
