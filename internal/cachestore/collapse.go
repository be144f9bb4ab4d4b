package cachestore

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

var (
	// ErrWaitTimeout is returned to a Collapser waiter whose leader did not
	// finish within maxWait: the waiter should go upstream itself.
	ErrWaitTimeout = errors.New("cachestore: timed out waiting for a collapsed request")
	// ErrNotShared is returned to a Collapser waiter when the leader's
	// result cannot be shared (not storable, an error, a panic): the waiter
	// should go upstream itself. A leader's error is wrapped with it.
	ErrNotShared = errors.New("cachestore: collapsed request's response cannot be shared")

	errLeaderPanicked = errors.New("leader panicked")
	errLeaderExited   = errors.New("leader's goroutine exited")
)

// Collapser collapses concurrent cache misses for the same key into one
// upstream request. The zero value is ready to use; it must not be copied
// after first use.
//
// It keeps no results: once the leader finishes, the next caller for the key
// leads again (by then the response is in the Store, if it was storable).
// It is written with a mutex, a map and channels rather than
// golang.org/x/sync/singleflight because waiters need a deadline of their
// own and a way to refuse the leader's result.
type Collapser struct {
	mu    sync.Mutex
	calls map[string]*call
}

// call is one leader's run. e and err are written before done is closed and
// read only after it.
type call struct {
	// done is closed when the run ends. The first waiter makes it, under
	// Collapser.mu, so that a run nobody waits for (the usual miss) costs
	// no channel.
	done    chan struct{}
	e       *Entry
	err     error
	waiters int // under Collapser.mu, for tests
}

// Waiting returns how many callers wait on a leader, over every key: a
// test's readiness signal that a herd has gathered.
func (c *Collapser) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, cl := range c.calls {
		n += cl.waiters
	}
	return n
}

// Do runs fn for key unless a run for key is in flight, in which case it
// waits for that run's result, for at most maxWait.
//
// The leader (the caller that ran fn) gets fn's results, with shared false.
// fn returns the entry it stored, or nil if the response was not storable.
// A waiter gets:
//   - the leader's entry with shared true, when fn returned an entry and no
//     error (entries are immutable, so every waiter may serve the same one);
//   - ErrWaitTimeout after maxWait (immediately if maxWait <= 0);
//   - ErrNotShared when fn returned no entry, or an error (wrapped with it:
//     the leader's failure may be its own, such as its client going away,
//     so waiters retry rather than fail), or panicked, or exited its
//     goroutine.
//
// A panic in fn releases the key and its waiters first and is then
// re-raised in the leader with its original value (so that, say,
// http.ErrAbortHandler still reaches net/http as itself); the key is never
// left wedged.
func (c *Collapser) Do(key string, maxWait time.Duration, fn func() (*Entry, error)) (e *Entry, shared bool, err error) {
	c.mu.Lock()
	if cl, ok := c.calls[key]; ok {
		cl.waiters++
		if cl.done == nil {
			cl.done = make(chan struct{})
		}
		done := cl.done
		c.mu.Unlock()
		return wait(cl, done, maxWait)
	}
	cl := &call{}
	if c.calls == nil {
		c.calls = make(map[string]*call)
	}
	c.calls[key] = cl
	c.mu.Unlock()
	return c.lead(key, cl, fn)
}

// lead runs fn as the key's leader.
func (c *Collapser) lead(key string, cl *call, fn func() (*Entry, error)) (e *Entry, shared bool, err error) {
	returned := false
	defer func() {
		if returned {
			return
		}
		// fn panicked, or called runtime.Goexit (recover returns nil then,
		// and the exit goes on once this returns).
		r := recover()
		cl.err = errLeaderExited
		if r != nil {
			cl.err = errLeaderPanicked
		}
		c.finish(key, cl)
		if r != nil {
			panic(r)
		}
	}()
	e, err = fn()
	returned = true
	cl.e, cl.err = e, err
	c.finish(key, cl)
	return e, false, err
}

// finish forgets the call, so the next caller leads, and wakes its waiters.
// Once it is forgotten nobody new waits for it, so a call without done by
// then has no waiter to wake.
func (c *Collapser) finish(key string, cl *call) {
	c.mu.Lock()
	if c.calls[key] == cl {
		delete(c.calls, key)
	}
	done := cl.done
	c.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// wait waits for cl, whose done is done, up to maxWait.
func wait(cl *call, done chan struct{}, maxWait time.Duration) (*Entry, bool, error) {
	if maxWait <= 0 {
		return nil, false, ErrWaitTimeout
	}
	t := time.NewTimer(maxWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return nil, false, ErrWaitTimeout
	}
	switch {
	case cl.err != nil:
		return nil, false, fmt.Errorf("%w: %w", ErrNotShared, cl.err)
	case cl.e == nil:
		return nil, false, ErrNotShared
	default:
		return cl.e, true, nil
	}
}
