package cachestore

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waiting returns how many callers have joined key's run in flight.
func (c *Collapser) waiting(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.calls[key]; cl != nil {
		return cl.waiters
	}
	return 0
}

// waitFor polls until cond holds, or fails the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type result struct {
	e      *Entry
	shared bool
	err    error
}

func TestCollapserRunsOnce(t *testing.T) {
	const callers = 100
	var c Collapser
	var runs atomic.Int32
	release := make(chan struct{})
	want := &Entry{Key: "k"}
	fn := func() (*Entry, error) {
		runs.Add(1)
		<-release
		return want, nil
	}
	results := make(chan result, callers)
	for range callers {
		go func() {
			e, shared, err := c.Do("k", time.Minute, fn)
			results <- result{e, shared, err}
		}()
	}
	waitFor(t, "99 waiters", func() bool { return c.waiting("k") == callers-1 })
	close(release)
	var shared int
	for range callers {
		r := <-results
		if r.err != nil || r.e != want {
			t.Fatalf("caller got %v, %v", r.e, r.err)
		}
		if r.shared {
			shared++
		}
	}
	if runs.Load() != 1 || shared != callers-1 {
		t.Fatalf("fn ran %d times, %d callers shared", runs.Load(), shared)
	}
	// Nothing is kept: the next caller leads again.
	if _, sh, _ := c.Do("k", time.Minute, fn); sh || runs.Load() != 2 {
		t.Fatalf("after the run: shared %v, runs %d", sh, runs.Load())
	}
}

func TestCollapserOutcomes(t *testing.T) {
	leaderErr := errors.New("upstream 502")
	stored := &Entry{Key: "k"}
	tests := []struct {
		name       string
		fn         func() (*Entry, error)
		leader     result
		waiterErr  error // errors.Is targets
		waiterErr2 error
	}{
		{"shared", func() (*Entry, error) { return stored, nil }, result{stored, false, nil}, nil, nil},
		{"not storable", func() (*Entry, error) { return nil, nil }, result{nil, false, nil}, ErrNotShared, nil},
		{"error", func() (*Entry, error) { return nil, leaderErr }, result{nil, false, leaderErr}, ErrNotShared, leaderErr},
		{"entry and error", func() (*Entry, error) { return stored, leaderErr }, result{stored, false, leaderErr}, ErrNotShared, leaderErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Collapser
			release := make(chan struct{})
			leader := make(chan result, 1)
			go func() {
				e, sh, err := c.Do("k", time.Minute, func() (*Entry, error) { <-release; return tt.fn() })
				leader <- result{e, sh, err}
			}()
			waitFor(t, "the leader", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.calls["k"] != nil })
			waiter := make(chan result, 1)
			go func() {
				e, sh, err := c.Do("k", time.Minute, func() (*Entry, error) { t.Error("waiter ran fn"); return nil, nil })
				waiter <- result{e, sh, err}
			}()
			waitFor(t, "the waiter", func() bool { return c.waiting("k") == 1 })
			close(release)
			if l := <-leader; l != tt.leader {
				t.Fatalf("leader got %+v, want %+v", l, tt.leader)
			}
			w := <-waiter
			if tt.waiterErr == nil {
				if w.err != nil || w.e != stored || !w.shared {
					t.Fatalf("waiter got %+v", w)
				}
				return
			}
			if w.e != nil || w.shared || !errors.Is(w.err, tt.waiterErr) {
				t.Fatalf("waiter got %+v, want %v", w, tt.waiterErr)
			}
			if tt.waiterErr2 != nil && !errors.Is(w.err, tt.waiterErr2) {
				t.Fatalf("waiter error %v does not wrap %v", w.err, tt.waiterErr2)
			}
		})
	}
}

func TestCollapserWaitTimeout(t *testing.T) {
	var c Collapser
	release := make(chan struct{})
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		c.Do("k", time.Minute, func() (*Entry, error) { <-release; return &Entry{}, nil })
	}()
	waitFor(t, "the leader", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.calls["k"] != nil })

	for _, maxWait := range []time.Duration{20 * time.Millisecond, 0, -time.Second} {
		start := time.Now()
		e, shared, err := c.Do("k", maxWait, func() (*Entry, error) { t.Error("waiter ran fn"); return nil, nil })
		if !errors.Is(err, ErrWaitTimeout) || e != nil || shared {
			t.Fatalf("maxWait %v: got %v, %v, %v", maxWait, e, shared, err)
		}
		if elapsed := time.Since(start); elapsed < maxWait || elapsed > maxWait+5*time.Second {
			t.Fatalf("maxWait %v: returned after %v", maxWait, elapsed)
		}
	}
	// Another key is not held up by this one.
	if _, shared, err := c.Do("other", time.Millisecond, func() (*Entry, error) { return &Entry{}, nil }); shared || err != nil {
		t.Fatalf("other key: %v, %v", shared, err)
	}
	close(release)
	<-leaderDone
}

func TestCollapserPanicDoesNotWedge(t *testing.T) {
	var c Collapser
	release := make(chan struct{})
	type boom struct{}
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		c.Do("k", time.Minute, func() (*Entry, error) { <-release; panic(boom{}) })
	}()
	waitFor(t, "the leader", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.calls["k"] != nil })
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := c.Do("k", time.Minute, func() (*Entry, error) { return nil, nil })
			errs <- err
		}()
	}
	waitFor(t, "5 waiters", func() bool { return c.waiting("k") == 5 })
	close(release)
	if r := <-recovered; r != (boom{}) {
		t.Fatalf("leader re-panicked with %v, want the original value", r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrNotShared) {
			t.Fatalf("waiter got %v", err)
		}
	}
	if e, shared, err := c.Do("k", time.Minute, func() (*Entry, error) { return &Entry{}, nil }); e == nil || shared || err != nil {
		t.Fatalf("key wedged after the panic: %v %v %v", e, shared, err)
	}
}

func TestCollapserGoexitDoesNotWedge(t *testing.T) {
	var c Collapser
	release := make(chan struct{})
	go c.Do("k", time.Minute, func() (*Entry, error) { <-release; runtime.Goexit(); return nil, nil })
	waitFor(t, "the leader", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.calls["k"] != nil })
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Do("k", time.Minute, nil)
		errc <- err
	}()
	waitFor(t, "the waiter", func() bool { return c.waiting("k") == 1 })
	close(release)
	if err := <-errc; !errors.Is(err, ErrNotShared) {
		t.Fatalf("waiter got %v", err)
	}
	if _, _, err := c.Do("k", time.Minute, func() (*Entry, error) { return nil, nil }); err != nil {
		t.Fatalf("key wedged: %v", err)
	}
}
