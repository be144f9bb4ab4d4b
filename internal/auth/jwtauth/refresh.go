package jwtauth

import (
	"context"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// fetchTimeout backstops a caller's HTTPClient that has no timeout, so a
// hung IdP cannot stall the refresher for good.
const fetchTimeout = 30 * time.Second

// round is one fetch that Verify calls wait for; done is closed when the
// fetch has finished, successfully or not.
type round struct{ done chan struct{} }

func newRound() *round { return &round{done: make(chan struct{})} }

func (r *round) finish() {
	if r != nil {
		close(r.done)
	}
}

// run is the refresher: the only goroutine that fetches. It fetches at
// once, then again when the set's lifetime (or the backoff after a
// failure) has passed, or sooner when Verify asks for a fetch (kick).
func (v *Verifier) run() {
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		v.stop()
		close(v.done)
	}()
	for v.ctx.Err() == nil {
		v.startRound()
		wait := v.refresh()
		v.endRound()
		if timer == nil {
			timer = v.clk.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C():
		case <-v.kick:
		case <-v.ctx.Done():
		}
	}
}

// stop marks the refresher gone and releases the callers of a round that
// no fetch will serve now.
func (v *Verifier) stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopped = true
	v.pending.finish()
	v.pending = nil
}

// startRound makes the pending round, if any, the one the coming fetch
// serves. A round requested while that fetch runs stays pending, with its
// kick queued, and gets a fetch of its own: the running one may predate
// the key it needs.
func (v *Verifier) startRound() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.inflight, v.pending = v.pending, nil
}

// endRound releases the callers waiting for the fetch just done.
func (v *Verifier) endRound() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.inflight.finish()
	v.inflight = nil
}

// requestRefresh returns the round to wait for: the pending one if any
// (concurrent callers share one fetch); else a new one if the last demand
// of its kind (no set yet, or a kid the set lacks) was at least
// UnknownKidInterval ago; else the fetch in flight, if any,
// which may still bring the key; else nil (no fetch: do not wait).
func (v *Verifier) requestRefresh() *round {
	v.mu.Lock()
	defer v.mu.Unlock()
	last := &v.lastDemand
	if v.keys.Load() == nil {
		last = &v.lastKeyless
	}
	switch now := v.clk.Now(); {
	case v.stopped:
		return nil
	case v.pending != nil:
		return v.pending
	case last.IsZero() || now.Sub(*last) >= v.opts.Refresh.UnknownKidInterval:
		*last = now
		v.pending = newRound()
		select {
		case v.kick <- struct{}{}:
		default: // a kick is already queued; it serves this round too
		}
		return v.pending
	}
	return v.inflight
}

// awaitRefresh asks for a fetch and waits for it, at most MaxWait and
// while ctx lasts, so a slow IdP delays a request by a bounded time.
func (v *Verifier) awaitRefresh(ctx context.Context) {
	r := v.requestRefresh()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, v.opts.Refresh.MaxWait)
	defer cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

// refresh fetches the set once and returns how long until the next fetch.
// A failure keeps the current set: a bad response must not take away keys
// that work.
func (v *Verifier) refresh() time.Duration {
	ctx, cancel := context.WithTimeout(v.ctx, fetchTimeout)
	defer cancel()
	set, maxAge, err := v.fetchKeySet(ctx)
	if err != nil {
		if v.ctx.Err() != nil {
			return 0 // closing
		}
		v.backoff = min(max(2*v.backoff, v.opts.Refresh.InitialBackoff), v.opts.Refresh.MaxBackoff)
		v.log.Warn("jwtauth: fetching the key set failed; keeping the current one",
			"err", err, "retry_in", v.backoff, "have_keys", v.keys.Load() != nil)
		return v.backoff
	}
	v.backoff = 0
	if old := v.keys.Swap(set); old == nil || old.digest != set.digest {
		// Tokens signed by a key that was withdrawn must not outlive it in
		// the cache.
		v.cache.purge()
		v.log.Info("jwtauth: key set loaded", "keys", set.size)
	}
	r := v.opts.Refresh
	return min(max(maxAge, r.MinInterval), r.MaxInterval)
}
