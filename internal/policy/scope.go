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
	// held are the shared entries acquired, for Retire.
	held    []*sharedEntry
	retired sync.Once
}

// NewScope returns a scope whose Acquire calls share resources through
// shared (nil: nothing is shared; each Acquire opens its own).
func NewScope(shared *Shared) *Scope { return &Scope{shared: shared} }

// OnClose registers f to run when the scope closes (in reverse order of
// registration, like defer).
func (s *Scope) OnClose(f func()) { s.closers = append(s.closers, f) }

// Retire says the scope's snapshot is no longer the current one (it may
// still finish requests): a shared resource that no current snapshot holds
// is no longer handed to a later one, which opens its own — a cache store
// dropped by a reload and brought back by the next comes back empty. What
// the scope holds is still released by Close.
func (s *Scope) Retire() {
	s.retired.Do(func() {
		if s.shared != nil {
			s.shared.retire(s.held)
		}
	})
}

// Close releases everything registered, once. A closed scope is retired
// too (a snapshot whose build failed never was current).
func (s *Scope) Close() {
	s.Retire()
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
	key  string
	v    io.Closer
	refs int // scopes holding it
	live int // of them, those not retired
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
		e = &sharedEntry{key: key, v: v}
		s.m[key] = e
	}
	v, ok := e.v.(T)
	if !ok {
		s.mu.Unlock()
		return zero, fmt.Errorf("shared resource %q is a %T, not a %T", key, e.v, zero)
	}
	e.refs++
	e.live++
	s.mu.Unlock()
	sc.held = append(sc.held, e)
	sc.OnClose(func() { s.release(e) })
	return v, nil
}

// retire takes the entries of a retired scope out of the registry's
// reach where no other live scope holds them.
func (s *Shared) retire(held []*sharedEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range held {
		if e.live--; e.live == 0 && s.m[e.key] == e {
			delete(s.m, e.key)
		}
	}
}

func (s *Shared) release(e *sharedEntry) {
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && s.m[e.key] == e {
		delete(s.m, e.key)
	}
	s.mu.Unlock()
	if last {
		_ = e.v.Close()
	}
}
