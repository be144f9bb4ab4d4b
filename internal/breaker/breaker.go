package breaker

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/meshgate/meshgate/internal/clock"
)

// Breaker guards one upstream endpoint on this node. Allow and Ticket are
// the hot path: one atomic load, then gobreaker's own bookkeeping while
// closed; transitions happen under the Registry's lock.
type Breaker struct {
	reg      *Registry
	endpoint string
	settings atomic.Pointer[Settings] // normalized; replaced on reload
	cur      atomic.Pointer[phase]    // replaced whole on every transition
	// votes is how many peers' open reports were live at the last
	// evaluation: a hint that lets a local failure skip the lock when no
	// peer has reported anything.
	votes atomic.Int32

	// Guarded by reg.mu.
	cause   string    // why the breaker entered cur.state
	until   time.Time // end of the open period
	voted   bool      // this node's latest report says open
	latched bool      // the open was adopted on local evidence (see evaluate)
	probeOK uint32    // successful probes in this half-open phase
	timer   clock.Timer
	removed bool
}

// phase is one stay in a state. Tickets remember the phase they were issued
// in, so an outcome that arrives after a transition is ignored, as gobreaker
// ignores outcomes from an earlier generation.
type phase struct {
	state State
	// Closed: the gobreaker that counts outcomes and decides to trip. It is
	// used for this phase only: when it trips, this package takes over the
	// open and half-open states (gobreaker's clock is time.Now and cannot be
	// injected, and this node must also open and probe on its peers' word),
	// and a fresh one starts the next closed phase.
	gb *gobreaker.TwoStepCircuitBreaker[struct{}]
	// tripped is set by gb's OnStateChange, which runs under gb's lock; the
	// goroutine whose outcome tripped it then does the transition.
	tripped atomic.Bool
	// lastFailure is the injected clock's UnixNano of the latest failure.
	lastFailure atomic.Int64

	// HalfOpen.
	maxProbes int32
	probes    atomic.Int32 // issued so far
}

// errFailed and errSkipped are what a Ticket tells gobreaker.
var (
	errFailed  = errors.New("request failed")
	errSkipped = errors.New("request outcome unknown")
)

func newClosedPhase(endpoint string, s *Settings) *phase {
	p := &phase{state: Closed}
	p.gb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        endpoint,
		Interval:    s.Interval,
		Timeout:     s.OpenTimeout, // unused: the phase ends when gb trips
		ReadyToTrip: s.readyToTrip,
		IsExcluded:  func(err error) bool { return err == errSkipped },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				p.tripped.Store(true)
			}
		},
	})
	return p
}

// Endpoint is the endpoint's address, the breaker's name in the cluster.
func (b *Breaker) Endpoint() string { return b.endpoint }

// State is what Allow would do now (without taking a probe slot): a load
// balancer can skip open endpoints with it.
func (b *Breaker) State() State { return b.cur.Load().state }

// Allow asks to send one request to the endpoint. On success the caller
// must end the Ticket with exactly one Done or Skip call; on ErrOpen or
// ErrTooManyProbes it should pick another endpoint.
func (b *Breaker) Allow() (Ticket, error) {
	p := b.cur.Load()
	switch p.state {
	case Closed:
		done, err := p.gb.Allow()
		if err != nil {
			// gb tripped a moment ago; the transition is under way.
			return Ticket{}, ErrOpen
		}
		return Ticket{b: b, p: p, done: done}, nil
	case HalfOpen:
		if p.probes.Add(1) > p.maxProbes {
			p.probes.Add(-1)
			return Ticket{}, ErrTooManyProbes
		}
		return Ticket{b: b, p: p}, nil
	}
	return Ticket{}, ErrOpen
}

// Ticket is one allowed request. It is a value: issuing one allocates only
// gobreaker's completion callback.
type Ticket struct {
	b    *Breaker
	p    *phase
	done func(error) // gobreaker's; nil for a probe
}

// Done reports the request's outcome: success means the endpoint answered
// (what counts as an answer is the caller's policy, e.g. not a 5xx).
func (t Ticket) Done(success bool) {
	switch {
	case t.p == nil:
	case t.done != nil:
		if success {
			t.done(nil)
			return
		}
		t.done(errFailed)
		t.b.failed(t.p)
	default:
		t.b.reg.probeDone(t.b, t.p, success)
	}
}

// Skip ends a request that says nothing about the endpoint (the client
// went away, the request was cancelled): it counts neither way, and a
// half-open probe's slot is given back.
func (t Ticket) Skip() {
	switch {
	case t.p == nil:
	case t.done != nil:
		t.done(errSkipped)
	default:
		t.p.probes.Add(-1)
	}
}

// failed handles a failure in a closed phase: it may have tripped gb, and
// it is evidence for a peer's open report.
func (b *Breaker) failed(p *phase) {
	r := b.reg
	p.lastFailure.Store(r.clock.Now().UnixNano())
	if !p.tripped.Load() && b.votes.Load() == 0 {
		return
	}
	r.mu.Lock()
	if b.cur.Load() == p && !b.removed {
		now := r.clock.Now()
		if p.tripped.Load() {
			r.transition(b, Open, CauseLocal, now.Add(b.settings.Load().OpenTimeout), now)
		} else {
			r.evaluate(b, now)
		}
	}
	r.mu.Unlock()
	r.flush()
}

// evidence reports whether this node's own requests corroborate a peer's
// open report: within the last Interval at least one of them failed, and
// at least half of those counted in gobreaker's window did. A ratio, not
// "any failure", because a busy node sees the odd failure to any healthy
// endpoint; one failing request out of one is evidence, one out of a
// hundred is not. r.mu held.
func (b *Breaker) evidence(p *phase, s *Settings, now time.Time) bool {
	last := p.lastFailure.Load()
	if last == 0 || now.UnixNano()-last > int64(s.Interval) {
		return false
	}
	c := p.gb.Counts()
	return c.TotalFailures > 0 && c.TotalFailures >= c.TotalSuccesses
}
