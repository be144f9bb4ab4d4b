package upstream

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

// limiter admits requests: up to the set's limit in flight, then up to
// maxPending waiting in FIFO order, then ErrOverloaded.
type limiter struct {
	active     atomic.Int64 // admitted requests not yet released
	waiting    atomic.Int64 // acquirers in the slow path (a hint for release)
	maxPending int64

	mu    sync.Mutex
	queue []*waiter
}

type waiter struct {
	ch      chan struct{}
	granted bool // under limiter.mu
}

// Acquire admits one request to the upstream. The in-flight limit is
// MaxConnections × the number of endpoints (in-flight requests stand for
// connections: with HTTP/1.1 each needs one), plus the attempts still in
// flight on endpoints that have left the upstream (those requests take no
// capacity of the endpoints left). Under the limit, Acquire is one
// atomic compare-and-swap. At the limit, up to MaxPending requests wait (in
// order) until a slot frees or ctx is done (then ctx's error); past that,
// ErrOverloaded at once. release must be called exactly once, when the
// request (all its attempts) is over.
func (u *Upstream) Acquire(ctx context.Context) (release func(), err error) {
	l := &u.lim
	if l.tryAcquire(u.set.Load().admissionLimit()) {
		return u.releaseFn, nil
	}
	return l.acquireSlow(ctx, u)
}

// Queued is how many requests wait for a slot (at most MaxPending).
func (u *Upstream) Queued() int {
	u.lim.mu.Lock()
	defer u.lim.mu.Unlock()
	return len(u.lim.queue)
}

// TryAcquire is Acquire without waiting: ok is false when every slot is
// taken (then call Acquire to queue). It never allocates.
func (u *Upstream) TryAcquire() (release func(), ok bool) {
	if u.lim.tryAcquire(u.set.Load().admissionLimit()) {
		return u.releaseFn, true
	}
	return nil, false
}

func (l *limiter) tryAcquire(limit int64) bool {
	for {
		n := l.active.Load()
		if n >= limit {
			return false
		}
		if l.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *limiter) acquireSlow(ctx context.Context, u *Upstream) (func(), error) {
	l.mu.Lock()
	// Announce before re-checking: a release that decremented before this
	// point is seen by the re-check; one after sees waiting > 0 and wakes.
	l.waiting.Add(1)
	if l.tryAcquire(u.set.Load().admissionLimit()) {
		l.waiting.Add(-1)
		l.mu.Unlock()
		return u.releaseFn, nil
	}
	if int64(len(l.queue)) >= l.maxPending {
		l.waiting.Add(-1)
		l.mu.Unlock()
		return nil, ErrOverloaded
	}
	w := &waiter{ch: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.mu.Unlock()
	select {
	case <-w.ch:
		return u.releaseFn, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	if w.granted { // granted while giving up: hand the slot on
		l.mu.Unlock()
		u.release()
		return nil, ctx.Err()
	}
	if i := slices.Index(l.queue, w); i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
	}
	l.waiting.Add(-1)
	l.mu.Unlock()
	return nil, ctx.Err()
}

func (u *Upstream) release() {
	l := &u.lim
	l.active.Add(-1)
	if l.waiting.Load() > 0 {
		l.wake(u)
	}
}

// wake grants free slots to waiters, oldest first.
func (l *limiter) wake(u *Upstream) {
	if l.waiting.Load() == 0 {
		return
	}
	l.mu.Lock()
	for len(l.queue) > 0 && l.tryAcquire(u.set.Load().admissionLimit()) {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		w.granted = true
		l.waiting.Add(-1)
		close(w.ch)
	}
	l.mu.Unlock()
}

// Active returns the requests admitted by Acquire and not yet released.
func (u *Upstream) Active() int64 { return u.lim.active.Load() }

// retryBudget: see RetryAllowed.
type retryBudget struct {
	percent   int64
	minPerSec int64
	clk       clock.Clock
	inflight  atomic.Int64
	// connectInflight counts retries of connect failures (ConnectRetryAllowed).
	connectInflight atomic.Int64

	// Written under mu; atomics so that RetryLikely reads them without
	// it (it runs before every attempt).
	mu     sync.Mutex
	second atomic.Int64 // the clock's current Unix second
	count  atomic.Int64 // retries allowed during it
}

func (b *retryBudget) init(c config.RetryBudget, clk clock.Clock) {
	b.percent, b.minPerSec, b.clk = int64(c.Percent), int64(c.MinPerSecond), clk
}

// RetryAllowed reports whether a retry may be sent now and, when it may,
// counts it as in flight until RetryDone. The rule:
//
//	allowed ⇔ retries in flight < Percent × Active() / 100
//	       or retries allowed in the current clock second < MinPerSecond
//
// where Active() counts requests admitted by Acquire. So retries in flight
// never exceed Percent% of the requests, except for at most MinPerSecond
// retries per second for low traffic: retries cannot amplify an outage
// beyond that.
func (u *Upstream) RetryAllowed() bool {
	b := &u.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	if !u.retryRoomLocked() {
		return false
	}
	b.count.Add(1)
	b.inflight.Add(1)
	return true
}

// retryRoomLocked reports whether the budget has room for a retry now
// (b.mu held), starting the count of a new second.
func (u *Upstream) retryRoomLocked() bool {
	b := &u.budget
	if sec := b.clk.Now().Unix(); sec != b.second.Load() {
		b.second.Store(sec)
		b.count.Store(0)
	}
	return u.retryRoom(b.second.Load())
}

// retryRoom is the budget's rule: retries in flight under its percentage
// of the requests in flight, or fewer in second sec than its floor (none
// counted yet when sec is not the budget's current second).
func (u *Upstream) retryRoom(sec int64) bool {
	b := &u.budget
	if b.inflight.Load() < b.percent*u.lim.active.Load()/100 {
		return true
	}
	return sec != b.second.Load() || b.count.Load() < b.minPerSec
}

// RetryLikely reports, without counting anything or taking the budget's
// lock, whether RetryAllowed would allow a retry now: for choices made
// before an attempt (whether to give it a default per-try timeout that only
// a retry makes worth having), on the request path.
func (u *Upstream) RetryLikely() bool {
	return u.retryRoom(u.budget.clk.Now().Unix())
}

// RetryDone ends a retry that RetryAllowed allowed.
func (u *Upstream) RetryDone() { u.budget.inflight.Add(-1) }

// ConnectRetryAllowed reports whether a request whose connect failed may be
// retried now and, when it may, counts the retry as in flight until
// ConnectRetryDone. Such a retry adds no load to any upstream (none got
// the request), so the retry budget — meant to stop retry storms against
// a struggling upstream, and at low concurrency no more than its floor of
// MinPerSecond — does not apply: a killed instance would otherwise fail
// every request past the floor. The bound that remains stops a storm of
// connection attempts: at most one connect retry in flight per admitted
// request (each of which makes at most the route's attempts anyway).
func (u *Upstream) ConnectRetryAllowed() bool {
	b := &u.budget
	for {
		n := b.connectInflight.Load()
		if n >= max(u.lim.active.Load(), 1) {
			return false
		}
		if b.connectInflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// ConnectRetryDone ends a retry that ConnectRetryAllowed allowed.
func (u *Upstream) ConnectRetryDone() { u.budget.connectInflight.Add(-1) }
