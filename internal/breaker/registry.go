package breaker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/clock"
)

// Options configure a Registry.
type Options struct {
	// Node is this node's unique name in the cluster (as Alive knows it).
	Node string
	// Send queues one report for broadcast (gossip.Send). It must not block
	// and must not call back into the Registry; it is called outside the
	// Registry's lock, in the order reports were made. nil: no broadcasts.
	Send func(key string, msg []byte)
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Alive reports whether a peer is a live member; a dead or departed
	// peer's reports stop counting. It is called under the Registry's lock,
	// so it must be fast and must not call into the Registry. nil: every
	// peer counts. Call MembersChanged when its answers change.
	Alive func(node string) bool
	// Logger defaults to a discarding one.
	Logger *slog.Logger
	// OnStateChange is called, outside the lock and in order, on every state
	// change of a breaker: the node logs it, the upstream ejects or readmits
	// the endpoint. It must not block.
	OnStateChange func(endpoint string, from, to State, cause string)
}

// Registry holds this node's breakers, one per endpoint, and the latest
// report of every peer about every endpoint. It is the breaker package's
// gossip owner (Kind, Merge, LocalState, MergeState). Safe for concurrent
// use.
type Registry struct {
	node     string
	send     func(string, []byte)
	clock    clock.Clock
	alive    func(string) bool
	log      *slog.Logger
	onChange func(string, State, State, string)

	// breakers maps endpoint → *Breaker; a sync.Map so that looking a
	// breaker up per request takes no lock. Written under mu.
	breakers sync.Map

	mu       sync.Mutex
	reports  map[string]map[string]*entry // endpoint → reporter → latest
	nreports int
	gen      uint64   // generation of this node's latest report
	seed     uint64   // gen at start: lower generations are a previous life's
	out      []func() // sends and callbacks waiting for mu's release

	sendMu sync.Mutex // held while the outbox is being run
	stats  counters
}

// New returns an empty Registry.
func New(o Options) (*Registry, error) {
	if err := checkName(o.Node); err != nil {
		return nil, fmt.Errorf("breaker: node name: %w", err)
	}
	r := &Registry{
		node: o.Node, send: o.Send, clock: o.Clock, alive: o.Alive, log: o.Logger,
		onChange: o.OnStateChange,
		reports:  make(map[string]map[string]*entry),
	}
	if r.clock == nil {
		r.clock = clock.Real()
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	// Generations start at the start time, so a restarted node's reports
	// supersede those of its previous life (which peers may still hold).
	if t := r.clock.Now().UnixNano(); t > 0 {
		r.gen = uint64(t)
		r.seed = r.gen
	}
	return r, nil
}

func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > maxName:
		return fmt.Errorf("%d bytes exceed %d", len(s), maxName)
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	}
	return nil
}

// Breaker returns the endpoint's breaker, creating it with s. A later call
// with different settings (a reload) updates the breaker in place: a closed
// breaker starts counting afresh under the new trip rules; an open or
// half-open one keeps its period, and the new timeout and probe count apply
// from its next transition. The fast path (same settings) takes no lock.
func (r *Registry) Breaker(endpoint string, s Settings) *Breaker {
	ns := s.normalized()
	if v, ok := r.breakers.Load(endpoint); ok {
		if b := v.(*Breaker); *b.settings.Load() == ns {
			return b
		}
	}
	return r.breakerSlow(endpoint, ns)
}

// breakerSlow creates or reconfigures; a function of its own so that only
// this path moves the settings to the heap.
func (r *Registry) breakerSlow(endpoint string, ns Settings) *Breaker {
	r.mu.Lock()
	now := r.clock.Now()
	b := r.lookup(endpoint)
	switch {
	case b == nil:
		b = &Breaker{reg: r, endpoint: endpoint}
		b.settings.Store(&ns)
		b.cur.Store(newClosedPhase(endpoint, &ns))
		r.breakers.Store(endpoint, b)
		r.evaluate(b, now) // peers may have reported it already
	case *b.settings.Load() != ns:
		b.settings.Store(&ns)
		if b.cur.Load().state == Closed {
			b.cur.Store(newClosedPhase(endpoint, &ns))
		}
		r.evaluate(b, now)
	}
	r.mu.Unlock()
	r.flush()
	return b
}

// lookup returns the endpoint's breaker or nil.
func (r *Registry) lookup(endpoint string) *Breaker {
	if v, ok := r.breakers.Load(endpoint); ok {
		return v.(*Breaker)
	}
	return nil
}

// Remove forgets the endpoint's breaker (the endpoint left the upstream).
// Outstanding tickets stay harmless. Peers' reports about it are kept until
// they expire, in case it comes back.
func (r *Registry) Remove(endpoint string) {
	r.mu.Lock()
	if b := r.lookup(endpoint); b != nil {
		b.removed = true
		b.stopTimer()
		r.breakers.Delete(endpoint)
	}
	r.mu.Unlock()
}

// MembersChanged re-counts every breaker's votes against Alive: a peer that
// left the cluster no longer holds its endpoints open. Call it from the
// cluster's membership watch.
func (r *Registry) MembersChanged() {
	r.mu.Lock()
	now := r.clock.Now()
	r.breakers.Range(func(_, v any) bool {
		r.evaluate(v.(*Breaker), now)
		return true
	})
	r.mu.Unlock()
	r.flush()
}

// isAlive applies Options.Alive. r.mu held.
func (r *Registry) isAlive(node string) bool {
	return r.alive == nil || r.alive(node)
}

// timeoutFor is the open timeout this node uses for an endpoint it may not
// have a breaker for yet. r.mu held.
func (r *Registry) timeoutFor(endpoint string) time.Duration {
	if b := r.lookup(endpoint); b != nil {
		return b.settings.Load().OpenTimeout
	}
	return defaultOpenTimeout
}
