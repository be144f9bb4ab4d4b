package breaker

import "time"

// transition moves b into a new phase of state to. Entering Open arms the
// end of the open period at until, and is this node's vote (reported to
// peers) when the cause is its own evidence (local, probe). Entering Closed
// withdraws an outstanding vote. r.mu held.
func (r *Registry) transition(b *Breaker, to State, cause string, until, now time.Time) {
	from := b.cur.Load().state
	s := b.settings.Load()
	var p *phase
	switch to {
	case Closed:
		p = newClosedPhase(b.endpoint, s)
	case HalfOpen:
		p = &phase{state: HalfOpen, maxProbes: int32(s.MaxProbes)}
	default:
		p = &phase{state: Open}
	}
	b.cur.Store(p)
	b.cause = cause
	b.probeOK = 0
	b.latched = false
	b.stopTimer()
	switch to {
	case Open:
		b.until = until
		b.arm(until.Sub(now), p)
		if cause == CauseLocal || cause == CauseProbe {
			b.voted = true
			r.report(b.endpoint, stateOpen, until.Sub(now), now)
		}
	case HalfOpen:
		// A probe whose ticket is never ended would hold the breaker
		// half-open for ever; the stall timer re-opens the probe slots.
		b.arm(s.OpenTimeout, p)
	case Closed:
		if b.voted {
			b.voted = false
			r.report(b.endpoint, stateClosed, s.OpenTimeout, now)
		}
	}
	if from == to {
		return
	}
	r.stats.transitions[to][causeIndex(cause)].Add(1)
	ep, log, on := b.endpoint, r.log, r.onChange
	r.emit(func() {
		log.Info("breaker state", "endpoint", ep, "from", from, "to", to, "cause", cause)
		if on != nil {
			on(ep, from, to, cause)
		}
	})
}

// arm schedules the end of phase p after d. r.mu held.
func (b *Breaker) arm(d time.Duration, p *phase) {
	b.timer = b.reg.clock.AfterFunc(d, func() { b.reg.timerFired(b, p) })
}

func (b *Breaker) stopTimer() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

// timerFired ends an open period, or unsticks a stalled half-open phase.
func (r *Registry) timerFired(b *Breaker, p *phase) {
	r.mu.Lock()
	if b.cur.Load() == p && !b.removed {
		now := r.clock.Now()
		switch p.state {
		case Open:
			r.openEnded(b, now)
		case HalfOpen:
			if p.probes.Load() > 0 {
				r.transition(b, HalfOpen, CauseTimeout, time.Time{}, now)
			} else {
				b.arm(b.settings.Load().OpenTimeout, p)
			}
		}
	}
	r.mu.Unlock()
	r.flush()
}

// openEnded: the node now probes the endpoint itself, unless a quorum of
// peers still reports it open (local evidence no longer counts: it was
// used to adopt the period that just ended). r.mu held.
func (r *Registry) openEnded(b *Breaker, now time.Time) {
	s := b.settings.Load()
	target := support(r.votes(b.endpoint, now), s.Quorum, false)
	if target = capUntil(target, now, s); target.After(now) {
		b.cause = CauseRemote
		b.latched = false
		b.until = target
		b.arm(target.Sub(now), b.cur.Load())
		return
	}
	r.transition(b, HalfOpen, CauseTimeout, time.Time{}, now)
}

// probeDone applies a half-open probe's outcome: any failure re-opens the
// breaker (this node's own evidence, so a vote); MaxProbes successes close
// it.
func (r *Registry) probeDone(b *Breaker, p *phase, success bool) {
	r.mu.Lock()
	if b.cur.Load() == p && !b.removed {
		now := r.clock.Now()
		if !success {
			r.transition(b, Open, CauseProbe, now.Add(b.settings.Load().OpenTimeout), now)
		} else if b.probeOK++; int32(b.probeOK) >= p.maxProbes {
			r.transition(b, Closed, CauseProbe, time.Time{}, now)
		}
	}
	r.mu.Unlock()
	r.flush()
}
