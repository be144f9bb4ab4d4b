package clock

import (
	"sync"
	"time"
)

// Fake is a Clock for tests. Time stands still until Advance moves it;
// timers due within the advanced span fire in order of their deadlines (ties
// in creation order), each with Now() equal to its deadline, synchronously in
// the goroutine calling Advance. AfterFunc callbacks therefore have run when
// Advance returns; a NewTimer's value is in its channel (buffered, 1).
type Fake struct {
	advance sync.Mutex // serializes Advance calls

	mu     sync.Mutex
	cond   *sync.Cond // signalled when the set of pending timers changes
	now    time.Time
	seq    uint64
	timers map[*fakeTimer]struct{}
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	f := &Fake{now: start, timers: map[*fakeTimer]struct{}{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since returns Now().Sub(t).
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTimer returns a timer firing when the clock has been advanced by d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc calls fn from Advance once the clock has moved by d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	t.Reset(d)
	return t
}

// Advance moves the clock forward by d, firing every timer that falls due.
// A timer created or reset by a callback during Advance also fires if its
// deadline is within the span.
func (f *Fake) Advance(d time.Duration) {
	f.advance.Lock()
	defer f.advance.Unlock()
	f.mu.Lock()
	target := f.now.Add(d)
	for {
		var next *fakeTimer
		for t := range f.timers {
			if t.when.After(target) {
				continue
			}
			if next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			break
		}
		delete(f.timers, next)
		f.cond.Broadcast()
		if next.when.After(f.now) {
			f.now = next.when
		}
		now := f.now
		f.mu.Unlock()
		if next.fn != nil {
			next.fn()
		} else {
			select {
			case next.ch <- now:
			default:
			}
		}
		f.mu.Lock()
	}
	f.now = target
	f.mu.Unlock()
}

// Pending returns the number of timers waiting to fire.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// BlockUntil blocks until at least n timers are waiting to fire; tests use
// it to know that a goroutine has armed its timer before calling Advance.
func (f *Fake) BlockUntil(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.timers) < n {
		f.cond.Wait()
	}
}

type fakeTimer struct {
	f    *Fake
	ch   chan time.Time
	fn   func()
	when time.Time
	seq  uint64
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	_, active := f.timers[t]
	delete(f.timers, t)
	t.drain()
	if active {
		f.cond.Broadcast()
	}
	return active
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	_, active := f.timers[t]
	t.drain()
	f.seq++
	t.seq = f.seq
	t.when = f.now.Add(d)
	f.timers[t] = struct{}{}
	f.cond.Broadcast()
	return active
}

func (t *fakeTimer) drain() {
	if t.ch == nil {
		return
	}
	select {
	case <-t.ch:
	default:
	}
}
