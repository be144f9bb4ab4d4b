package breaker

import (
	"slices"
	"time"
)

// entry is the latest report of one reporter about one endpoint. A closed
// entry is a tombstone: it outlives the open it superseded, so that a
// delayed or re-gossiped copy of that open (an older generation) is
// recognised as stale rather than taken for news.
type entry struct {
	open  bool
	gen   uint64
	until time.Time // open: end of the open period; closed: forget after
}

// maxReports bounds the entries a Registry keeps (the cluster's nodes ×
// endpoints with recent reports), against a peer flooding it.
const maxReports = 8192

// vote is a live peer's open report.
type vote struct {
	reporter string
	until    time.Time
}

// votes are the peers' open reports that count now for endpoint: not this
// node's own, not expired, from a live member; latest end first. r.mu held.
func (r *Registry) votes(endpoint string, now time.Time) []vote {
	var vs []vote
	for rep, e := range r.reports[endpoint] {
		if rep != r.node && e.open && e.until.After(now) && r.isAlive(rep) {
			vs = append(vs, vote{rep, e.until})
		}
	}
	slices.SortFunc(vs, func(a, b vote) int { return b.until.Compare(a.until) })
	return vs
}

// support is how long the votes keep the endpoint open on this node (zero:
// they do not). With a quorum, until fewer than Quorum of them remain (the
// Quorum-th latest end), so no single reporter sets the length; with local
// evidence, one vote suffices, until the latest end.
func support(vs []vote, quorum int, evidence bool) time.Time {
	var t time.Time
	if len(vs) >= quorum {
		t = vs[quorum-1].until
	}
	if evidence && len(vs) > 0 && vs[0].until.After(t) {
		t = vs[0].until
	}
	return t
}

// capUntil limits an adopted open period to this node's own OpenTimeout.
func capUntil(t, now time.Time, s *Settings) time.Time {
	if limit := now.Add(s.OpenTimeout); t.After(limit) {
		return limit
	}
	return t
}

// evaluate applies the sharing policy to b after its peers' reports or its
// own evidence changed. Only a closed or half-open breaker adopts an open,
// and only an adopted open (cause remote) follows the votes afterwards: an
// open of this node's own making runs its course. An adopted open whose
// support ends early (its reporters closed or left) goes half-open: this
// node confirms the recovery with its own probes. r.mu held.
func (r *Registry) evaluate(b *Breaker, now time.Time) {
	s := b.settings.Load()
	p := b.cur.Load()
	if p.state == Closed && p.tripped.Load() {
		// Its own trip, still on its way here from the goroutine that
		// tripped it, comes first: it is a vote.
		r.transition(b, Open, CauseLocal, now.Add(s.OpenTimeout), now)
		return
	}
	vs := r.votes(b.endpoint, now)
	b.votes.Store(int32(len(vs)))
	evidence := false
	switch p.state {
	case Closed:
		evidence = len(vs) > 0 && b.evidence(p, s, now)
	case Open:
		evidence = b.latched
	}
	target := capUntil(support(vs, s.Quorum, evidence), now, s)
	switch {
	case p.state != Open:
		if target.After(now) {
			r.transition(b, Open, CauseRemote, target, now)
			b.latched = evidence
		}
	case b.cause == CauseRemote:
		if !target.After(now) {
			r.transition(b, HalfOpen, CauseRemote, time.Time{}, now)
		} else if !target.Equal(b.until) {
			b.until = target
			b.stopTimer()
			b.arm(target.Sub(now), p)
		}
	}
}

// report records and broadcasts this node's own report. r.mu held.
func (r *Registry) report(endpoint string, st wireState, ttl time.Duration, now time.Time) {
	if checkName(endpoint) != nil {
		// Not representable on the wire; the breaker still works locally.
		r.emit(func() { r.log.Warn("breaker: endpoint name not reportable", "endpoint", endpoint) })
		return
	}
	r.gen++
	rep := report{state: st, gen: r.gen, ttl: min(ttl, maxTTL), reporter: r.node, endpoint: endpoint}
	r.store(endpoint, r.node, &entry{open: st == stateOpen, gen: rep.gen, until: now.Add(rep.ttl)})
	msg := encodeMessage(rep)
	key := endpoint
	if st == stateReset {
		// Not to be replaced in the send queue by a later ordinary report:
		// the reset's effect on other reporters' votes would be lost.
		key = "reset/" + endpoint
	}
	r.stats.sent.Add(1)
	if send := r.send; send != nil {
		r.emit(func() { send(key, msg) })
	}
}

// store puts e as reporter's entry for endpoint. r.mu held.
func (r *Registry) store(endpoint, reporter string, e *entry) {
	m := r.reports[endpoint]
	if m == nil {
		m = make(map[string]*entry)
		r.reports[endpoint] = m
	}
	if _, ok := m[reporter]; !ok {
		r.nreports++
	}
	m[reporter] = e
}

// apply merges one peer report and reports whether it was news (newer than
// what this node held). r.mu held.
func (r *Registry) apply(rep report, now time.Time) bool {
	r.stats.received.Add(1)
	if rep.reporter == r.node {
		r.echo(rep, now)
		return false
	}
	old := r.reports[rep.endpoint][rep.reporter]
	if old != nil && rep.gen <= old.gen {
		r.stats.stale.Add(1)
		return false
	}
	if old == nil && !r.room(now) {
		r.stats.dropped.Add(1)
		return false
	}
	ttl := rep.ttl
	if rep.state == stateOpen {
		ttl = min(ttl, r.timeoutFor(rep.endpoint))
	}
	e := &entry{open: rep.state == stateOpen, gen: rep.gen, until: now.Add(ttl)}
	if !e.open && old != nil && old.until.After(e.until) {
		e.until = old.until
	}
	r.store(rep.endpoint, rep.reporter, e)
	if rep.state == stateReset {
		r.resetFrom(rep.endpoint, rep.reporter, now)
	}
	return true
}

// echo handles a report in this node's name coming back from a peer. One
// of this life's (a generation it issued) is stale. One of a previous life
// (a restart: a generation below this life's seed, or above any it issued)
// would keep counting at peers, so the node re-states its current view
// with a generation above it, unless it has reported on the endpoint
// since, which supersedes it already. r.mu held.
func (r *Registry) echo(rep report, now time.Time) {
	own := r.reports[rep.endpoint][r.node]
	if (rep.gen > r.seed && rep.gen <= r.gen) || own != nil {
		r.stats.stale.Add(1)
		return
	}
	r.gen = max(r.gen, rep.gen)
	if rep.state != stateOpen {
		return
	}
	if b := r.lookup(rep.endpoint); b != nil && b.voted && b.cur.Load().state == Open {
		r.report(rep.endpoint, stateOpen, b.until.Sub(now), now)
		return
	}
	r.report(rep.endpoint, stateClosed, max(rep.ttl, r.timeoutFor(rep.endpoint)), now)
}

// room makes room for a new entry if it can, by dropping expired ones.
// r.mu held.
func (r *Registry) room(now time.Time) bool {
	if r.nreports < maxReports {
		return true
	}
	r.sweep(now)
	return r.nreports < maxReports
}

// sweep drops expired entries. r.mu held.
func (r *Registry) sweep(now time.Time) {
	for ep, m := range r.reports {
		for rep, e := range m {
			if !e.until.After(now) {
				delete(m, rep)
				r.nreports--
			}
		}
		if len(m) == 0 {
			delete(r.reports, ep)
		}
	}
}

// tombstone turns every other reporter's open report about endpoint into a
// withdrawal (same generation, so their copies elsewhere are stale here).
// r.mu held.
func (r *Registry) tombstone(endpoint, except string) {
	for rep, e := range r.reports[endpoint] {
		if rep != except && rep != r.node && e.open {
			e.open = false
		}
	}
}

// resetFrom applies a peer's Reset: its votes gone, and this node's breaker
// closed (withdrawing its own vote, which is how the reset reaches nodes
// that miss the reset message itself). r.mu held.
func (r *Registry) resetFrom(endpoint, reporter string, now time.Time) {
	r.tombstone(endpoint, reporter)
	b := r.lookup(endpoint)
	if b == nil {
		return
	}
	if b.cur.Load().state != Closed || b.voted {
		r.transition(b, Closed, CauseReset, time.Time{}, now)
	}
	r.evaluate(b, now)
}
