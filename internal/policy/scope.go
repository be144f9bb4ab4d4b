package policy

import (
	"fmt"
	"io"
	"sync"
)

// Scope collects the resources of one snapshot's stages, to be released
// together when the snapshot retires. It is filled during Build (one
// goroutine) and closed once.
type Scope struct {
	shared  *Shared
	closers []func()
	closed  sync.Once
}

// NewScope returns a scope whose Acquire calls share resources through
// shared (nil: nothing is shared; each Acquire opens its own).
func NewScope(shared *Shared) *Scope { return &Scope{shared: shared} }

// OnClose registers f to run when the scope closes (in reverse order of
// registration, like defer).
func (s *Scope) OnClose(f func()) { s.closers = append(s.closers, f) }

// Close releases everything registered, once.
func (s *Scope) Close() {
	s.closed.Do(func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			s.closers[i]()
		}
	})
}

// Shared holds the resources that outlive one snapshot while their config is
// unchanged, counted by the snapshots that use them: a reload that keeps an
// issuer keeps its verifier, its fetched keys and its refresher, and the
// one that drops it closes it once the last snapshot using it retires.
// Safe for concurrent use.
type Shared struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

type sharedEntry struct {
	v    io.Closer
	refs int
}

// NewShared returns an empty registry.
func NewShared() *Shared { return &Shared{m: map[string]*sharedEntry{}} }

// Len is the number of resources held, for tests.
func (s *Shared) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Each calls f with every resource held (under the registry's lock: f must
// be quick and must not Acquire), for metrics read at scrape time.
func (s *Shared) Each(f func(io.Closer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.m {
		f(e.v)
	}
}

// Acquire returns the resource named key for the scope's snapshot: the one
// already held under key, or a new one from open. Either way the scope
// releases it when it closes, and the last release closes the resource. key
// must name everything the resource was opened from (its kind and its whole
// config), so that a changed config opens a new one.
func Acquire[T io.Closer](sc *Scope, key string, open func() (T, error)) (T, error) {
	var zero T
	if sc.shared == nil {
		v, err := open()
		if err != nil {
			return zero, err
		}
		sc.OnClose(func() { _ = v.Close() })
		return v, nil
	}
	s := sc.shared
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		// Opening under the lock keeps two snapshots from opening the same
		// key twice; open must not block (resources fetch in the background).
		v, err := open()
		if err != nil {
			s.mu.Unlock()
			return zero, err
		}
		e = &sharedEntry{v: v}
		s.m[key] = e
	}
	v, ok := e.v.(T)
	if !ok {
		s.mu.Unlock()
		return zero, fmt.Errorf("shared resource %q is a %T, not a %T", key, e.v, zero)
	}
	e.refs++
	s.mu.Unlock()
	sc.OnClose(func() { s.release(key, e) })
	return v, nil
}

func (s *Shared) release(key string, e *sharedEntry) {
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(s.m, key)
	}
	s.mu.Unlock()
	if last {
		_ = e.v.Close()
	}
}
