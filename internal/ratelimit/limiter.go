package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// Kind is the byte that tags this package's messages in the cluster.
const Kind byte = 'l'

// Defaults for Options.
const (
	DefaultInterval      = 150 * time.Millisecond
	DefaultMaxStateBytes = 512 << 10
)

// Options are a Limiter's dependencies.
type Options struct {
	// Node is this node's name, unique in the cluster (the memberlist
	// node name). Counts are kept and merged per node name.
	Node string
	// Send queues a message for broadcast (gossip.Send). Messages with
	// equal keys supersede each other in the queue. nil: nothing is sent.
	Send func(key string, msg []byte)
	// SendNow, when set, sends msg straight to every peer at once
	// (gossip.Cluster.DirectSender). Flush uses it, besides Send, for the
	// messages that carry claims (see Bursts in the package documentation):
	// a claim bounds the peers' budgets only once they have it, and a
	// broadcast takes several gossip rounds to reach them all.
	SendNow func(msg []byte)
	// Clock: nil means clock.Real().
	Clock clock.Clock
	// Peers returns the number of alive peers, this node excluded. It is
	// called once per Flush, never on the request path. nil: always 0.
	Peers func() int
	// Members returns the alive peers' names, this node excluded, sampled
	// with Peers. Tiny limits (see the package documentation) need them to
	// agree on a key's owner; nil: tiny limits are budgeted like others.
	Members func() []string
	// ExpectPeers marks a node that is meant to run in a cluster (it has
	// addresses to join): it counts as isolated until it first sees a peer,
	// rather than as a one-node cluster.
	ExpectPeers bool
	// Interval is Run's flush period. 0: DefaultInterval.
	Interval time.Duration
	// Extrapolate, when positive, adds to each peer's last reported count
	// its recent rate × the time since that report, for at most this long;
	// it trims the over-admission caused by gossip delay. 0: off.
	Extrapolate time.Duration
	// MaxStateBytes bounds LocalState. 0: DefaultMaxStateBytes.
	MaxStateBytes int
	// Logger: nil discards.
	Logger *slog.Logger
}

// A Limiter holds a node's rate-limit policies and replicates their counts
// through gossip. It satisfies the gossip package's Owner interface.
type Limiter struct {
	node        string
	send        func(string, []byte)
	sendNow     func([]byte) // nil: broadcasts only
	clk         clock.Clock
	peersFn     func() int
	membersFn   func() []string
	interval    time.Duration
	extrapolate int64 // ns
	maxState    int
	log         *slog.Logger
	seed        maphash.Seed // message sharding in Flush

	setMu    sync.Mutex // serializes SetPolicies
	policies atomic.Pointer[map[string]*Policy]

	peerCount   atomic.Int64
	members     atomic.Pointer[[]string] // this node and its alive peers, sorted; nil: unknown
	holdMu      sync.Mutex               // guards firstSeen and holdings (holds.go)
	firstSeen   map[string]int64         // alive peers: when this node first saw each
	holdings    map[string]holding       // the tiny policies each peer announced
	joined      atomic.Bool              // a member is new since the last announcement
	clustered   atomic.Bool
	expectPeers bool

	names   interner
	decoded sync.Pool // *message

	flushMu sync.Mutex
	flush   flushState // guarded by flushMu

	kicks chan struct{} // a raised claim asks Run for a flush now
	// noShares turns burst shares off: decisions use the estimate alone
	// (tests of the estimate's arithmetic set it).
	noShares bool

	stats counters
}

// New returns a Limiter with no policies.
func New(o Options) (*Limiter, error) {
	if o.Node == "" || len(o.Node) > maxNameLen {
		return nil, fmt.Errorf("ratelimit: node name %q: want 1 to %d bytes", o.Node, maxNameLen)
	}
	if o.Interval < 0 || o.Extrapolate < 0 || o.MaxStateBytes < 0 {
		return nil, errors.New("ratelimit: negative interval, extrapolation or state size")
	}
	l := &Limiter{
		node:        o.Node,
		send:        o.Send,
		sendNow:     o.SendNow,
		clk:         o.Clock,
		peersFn:     o.Peers,
		membersFn:   o.Members,
		interval:    o.Interval,
		extrapolate: int64(o.Extrapolate),
		maxState:    o.MaxStateBytes,
		log:         o.Logger,
		seed:        maphash.MakeSeed(),
		expectPeers: o.ExpectPeers,
	}
	if l.send == nil {
		l.send = func(string, []byte) {}
	}
	if l.clk == nil {
		l.clk = clock.Real()
	}
	if l.peersFn == nil {
		l.peersFn = func() int { return 0 }
	}
	if l.interval == 0 {
		l.interval = DefaultInterval
	}
	if l.maxState == 0 {
		l.maxState = DefaultMaxStateBytes
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.names.m = map[string]string{}
	l.firstSeen = map[string]int64{}
	l.holdings = map[string]holding{}
	l.kicks = make(chan struct{}, 1)
	l.decoded.New = func() any { return new(message) }
	empty := map[string]*Policy{}
	l.policies.Store(&empty)
	l.observePeers()
	return l, nil
}

// Kind returns the byte tagging this owner's messages.
func (l *Limiter) Kind() byte { return Kind }

// SetPolicies replaces the set of policies, all or nothing. A policy whose
// name and window are unchanged keeps its counts and takes the new limit,
// isolation and key cap; any other is new. A *Policy obtained before stays
// usable but, if it was replaced or removed, its counts no longer reach the
// cluster: callers fetch policies again from the new set (Policy) when they
// build their new snapshot.
func (l *Limiter) SetPolicies(cfgs []PolicyConfig) error {
	l.setMu.Lock()
	defer l.setMu.Unlock()
	old := *l.policies.Load()
	next := make(map[string]*Policy, len(cfgs))
	for _, c := range cfgs {
		if err := c.validate(); err != nil {
			return err
		}
		if next[c.Name] != nil {
			return fmt.Errorf("%w %q", errPolicyExists, c.Name)
		}
		if p := old[c.Name]; p != nil && p.window == c.Window {
			next[c.Name] = p
			continue
		}
		next[c.Name] = newPolicy(l, c)
	}
	// Validated: apply the in-place changes only now.
	for _, c := range cfgs {
		if p := old[c.Name]; p != nil && next[c.Name] == p {
			p.update(c)
		}
	}
	l.policies.Store(&next)
	return nil
}

// Policy returns the named policy, or nil.
func (l *Limiter) Policy(name string) *Policy { return (*l.policies.Load())[name] }

// isolated reports whether requests must be decided without the cluster:
// no alive peer now, though this node has had peers (or expects them).
func (l *Limiter) isolated() bool { return l.peerCount.Load() == 0 && l.clustered.Load() }

// observePeers samples Options.Peers for the request path.
func (l *Limiter) observePeers() {
	n := max(l.peersFn(), 0)
	l.peerCount.Store(int64(n))
	if l.membersFn != nil {
		ms := append([]string{l.node}, l.membersFn()...)
		slices.Sort(ms)
		ms = slices.Compact(ms)
		if old := l.members.Load(); old == nil || !slices.Equal(*old, ms) {
			l.members.Store(&ms)
			if l.noteMembers(ms) {
				l.joined.Store(true)
			}
		}
	}
	if n > 0 || l.expectPeers {
		l.clustered.Store(true)
	}
}

// interner shares one copy of each node name among all the records that
// name it; Flush drops names no record uses any more.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

func (in *interner) get(b []byte) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	in.m[s] = s
	return s
}

func (in *interner) retain(live map[string]struct{}) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for s := range in.m {
		if _, ok := live[s]; !ok {
			delete(in.m, s)
		}
	}
}
