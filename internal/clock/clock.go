// Package clock is an injectable clock. Production code takes a Clock and
// uses Real(); tests use NewFake, whose timers fire only when the test calls
// Advance, so timing-dependent behaviour (ejection backoff, refresh loops,
// budgets) is tested exactly and without sleeping.
package clock

import "time"

// Clock is the subset of package time that meshgate's state owners need.
type Clock interface {
	Now() time.Time
	Since(t time.Time) time.Duration
	// NewTimer returns a timer that sends the time on C() after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine (Real) or in the goroutine
	// calling Advance (Fake) after d. The returned Timer's C() is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable, resettable timer. Stop and Reset follow the Go 1.23
// semantics of time.Timer: after they return, no stale value is received
// from C().
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }
func (realClock) NewTimer(d time.Duration) Timer  { return realTimer{time.NewTimer(d)} }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
