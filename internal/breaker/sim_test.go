package breaker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// This file is the test harness: an in-process cluster of Registries whose
// Send queues packets on a simulated network, delivered when the test says
// so (deliver: one gossip round; settle: until quiet), with optional loss,
// delay, partial fan-out (epidemic relay) and membership.

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const ep = "10.0.0.7:8080"

// testSettings: trip on 3 in a row, 10s open periods, quorum 2.
var testSettings = Settings{ConsecutiveFailures: 3, Interval: 30 * time.Second, OpenTimeout: 10 * time.Second}

type sim struct {
	t        *testing.T
	clk      *clock.Fake
	settings Settings
	nodes    []*simNode

	mu        sync.Mutex
	queue     []packet
	dead      map[string]bool
	drop      func(from, to string, msg []byte) bool // nil: no loss
	delay     time.Duration                          // transit time of every packet
	fanout    int                                    // peers per send; 0: all
	rng       *rand.Rand
	delivered int
}

type simNode struct {
	name    string
	reg     *Registry
	changes []change // guarded by sim.mu
}

type change struct {
	endpoint string
	from, to State
	cause    string
}

type packet struct {
	from, to string
	msg      []byte
	at       time.Time
}

func newSim(t *testing.T, n int) *sim {
	t.Helper()
	s := &sim{t: t, clk: clock.NewFake(t0), settings: testSettings, dead: map[string]bool{},
		rng: rand.New(rand.NewPCG(1, 2))}
	for i := range n {
		s.nodes = append(s.nodes, s.newNode(fmt.Sprintf("n%d", i), s.clk))
	}
	return s
}

// newNode builds a Registry named name wired to the network (not added to
// s.nodes: restart replaces an entry).
func (s *sim) newNode(name string, clk clock.Clock) *simNode {
	s.t.Helper()
	nd := &simNode{name: name}
	reg, err := New(Options{
		Node:  name,
		Send:  func(_ string, msg []byte) { s.broadcast(name, msg) },
		Clock: clk,
		Alive: func(n string) bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.dead[n] },
		OnStateChange: func(e string, from, to State, cause string) {
			s.mu.Lock()
			nd.changes = append(nd.changes, change{e, from, to, cause})
			s.mu.Unlock()
		},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	nd.reg = reg
	return nd
}

func (s *sim) node(i int) *Registry { return s.nodes[i].reg }
func (s *sim) br(i int) *Breaker    { return s.nodes[i].reg.Breaker(ep, s.settings) }
func (s *sim) named(name string) *simNode {
	return s.nodes[slices.IndexFunc(s.nodes, func(n *simNode) bool { return n.name == name })]
}

// broadcast queues msg from node from to its peers: all live ones, or
// fanout random ones (memberlist hands a broadcast to a few peers).
func (s *sim) broadcast(from string, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead[from] {
		return
	}
	var peers []string
	for _, n := range s.nodes {
		if n.name != from && !s.dead[n.name] {
			peers = append(peers, n.name)
		}
	}
	if s.fanout > 0 && s.fanout < len(peers) {
		s.rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		peers = peers[:s.fanout]
	}
	for _, to := range peers {
		if s.drop != nil && s.drop(from, to, msg) {
			continue
		}
		s.queue = append(s.queue, packet{from, to, slices.Clone(msg), s.clk.Now().Add(s.delay)})
	}
}

// deliver hands every packet that is due to its receiver once: one gossip
// round. Relays it causes are queued for a later round. It returns the
// number of packets delivered.
func (s *sim) deliver() int {
	s.t.Helper()
	now := s.clk.Now()
	s.mu.Lock()
	var due []packet
	rest := s.queue[:0:0]
	for _, p := range s.queue {
		if !p.at.After(now) && !s.dead[p.to] {
			due = append(due, p)
		} else if !s.dead[p.to] {
			rest = append(rest, p)
		}
	}
	s.queue = rest
	s.delivered += len(due)
	s.mu.Unlock()
	for _, p := range due {
		relay, err := s.named(p.to).reg.Merge(p.msg)
		if err != nil {
			s.t.Fatalf("%s → %s: %v", p.from, p.to, err)
		}
		if relay {
			s.broadcast(p.to, p.msg)
		}
	}
	return len(due)
}

// settle delivers rounds until none is due.
func (s *sim) settle() {
	s.t.Helper()
	for i := 0; s.deliver() > 0; i++ {
		if i > 100 {
			s.t.Fatal("network does not settle")
		}
	}
}

// kill takes a node out of the cluster, as memberlist would declare it
// dead, and tells every live node.
func (s *sim) kill(name string) {
	s.mu.Lock()
	s.dead[name] = true
	s.mu.Unlock()
	for _, n := range s.nodes {
		if n.name != name {
			n.reg.MembersChanged()
		}
	}
}

func (s *sim) changesOf(i int) []change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.nodes[i].changes)
}

// fail and succeed send n requests through b with that outcome.
func fail(t *testing.T, b *Breaker, n int) {
	t.Helper()
	outcome(t, b, n, false)
}

func succeed(t *testing.T, b *Breaker, n int) {
	t.Helper()
	outcome(t, b, n, true)
}

func outcome(t *testing.T, b *Breaker, n int, ok bool) {
	t.Helper()
	for range n {
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("%s: Allow: %v", b.reg.node, err)
		}
		tk.Done(ok)
	}
}

// sends reports whether b lets a request through now (without counting
// an outcome).
func sends(b *Breaker) bool {
	tk, err := b.Allow()
	if err == nil {
		tk.Skip()
	}
	return err == nil
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("%s: state %v, want %v", b.reg.node, got, want)
	}
}

func status(t *testing.T, r *Registry, endpoint string) Status {
	t.Helper()
	for _, st := range r.List() {
		if st.Endpoint == endpoint {
			return st
		}
	}
	t.Fatalf("%s: no breaker for %s", r.node, endpoint)
	return Status{}
}
