// Package gossip is meshgate's cluster: edge and sidecars in one
// hashicorp/memberlist cluster, through which they discover each other
// (node metadata: role, service, subset, inbound address, SPIFFE ID, app
// health) and replicate the state of the owners registered with it (routes
// and upstreams, breakers, rate-limit counts, upstream stats) without
// knowing its types.
//
// Membership is the transport's: the node wires memberlist to the mTLS
// transport of package gossip/transport, so only holders of a valid SVID
// the join set (cluster.allow) admits can join or send a byte of state.
// Authorship is not: gossip relays state through every member, so an
// owner that must know who wrote something signs it (the replicated
// resources: package replica/itemsig).
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a Cluster. Zero timings take the defaults below, tuned
// for a LAN: fast enough that a route change reaches 50 nodes in about a
// second, with memberlist's failure detection as in its LAN profile.
type Config struct {
	Name      string // unique in the cluster
	Transport memberlist.NodeAwareTransport
	Meta      Meta
	// Join lists addresses of existing members (host:port); tried with
	// backoff until one answers, and again whenever the node has no peers.
	Join   []string
	Logger *slog.Logger

	GossipInterval time.Duration // default 100ms
	ProbeInterval  time.Duration // default 400ms
	ProbeTimeout   time.Duration // default 500ms, at most half of ProbeInterval
	SuspicionMult  int           // default 3
	// AwarenessMaxMult bounds how far Lifeguard's local health may
	// stretch this node's probe timeouts (memberlist's
	// AwarenessMaxMultiplier; default 2, see New).
	AwarenessMaxMult int
	PushPullInterval time.Duration // default 15s
	// ReconnectInterval is how often a node tries to rejoin a failed member
	// (memberlist itself stops talking to the dead after a while, so a
	// healed partition would otherwise stay split). Default 5s.
	ReconnectInterval time.Duration
	// ReconnectTimeout: a failed member is forgotten after this. Default 1h.
	ReconnectTimeout time.Duration
	// OnChange is called after membership or a member's metadata changed.
	OnChange func()
}

// State of a member as seen by this node.
type State int

const (
	Alive State = iota
	Suspect
	Dead
	Left
)

func (s State) String() string {
	return [...]string{"alive", "suspect", "dead", "left"}[s]
}

// Member is one node of the cluster.
type Member struct {
	Name  string
	Addr  string // gossip address
	Meta  Meta
	State State
	// MetaErr is set when the node's metadata could not be decoded; such a
	// member is never offered by discovery.
	MetaErr error
	Since   time.Time
}

// Stats are the cluster's counters.
type Stats struct {
	MessagesIn, Relayed, BadMessages, StatesIn, BadStates, UnknownKind uint64
	Queued                                                             int
}

// Cluster is this node's membership.
type Cluster struct {
	cfg Config
	ml  *memberlist.Memberlist
	// Two queues: news that must reach every node (routes, breaker
	// votes), retransmitted twice as often as memberlist's own, so a node
	// that misses every copy — and waits for push/pull — is a one in
	// millions event rather than one in thousands at 50 nodes; and counts
	// that are refreshed every round anyway (rate limits), which get the
	// space left in each packet.
	queue, frequent *memberlist.TransmitLimitedQueue
	isFrequent      [256]bool
	log             *slog.Logger
	meta            atomic.Pointer[[]byte]
	owners          [256]Owner
	kinds           []Owner

	mu      sync.Mutex
	members map[string]*Member
	watch   chan struct{} // closed and replaced on every change

	stats struct {
		messagesIn, relayed, badMessages, statesIn, badStates, unknownKind atomic.Uint64
	}
	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
	// started publishes the owners: memberlist delivers peers' bytes as
	// soon as it is created, and until Start they are dropped rather than
	// read from a table still being filled.
	started atomic.Bool
}

// New creates the cluster's memberlist (already listening through the
// transport) without joining anyone; register the owners, then Start.
func New(cfg Config) (*Cluster, error) {
	if cfg.Name == "" {
		return nil, errors.New("gossip: node name is required")
	}
	if cfg.Transport == nil {
		return nil, errors.New("gossip: transport is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	setDefault(&cfg.GossipInterval, 100*time.Millisecond)
	// The node's defaults (config.DefaultProbeInterval, …): the gossip
	// package does not import config.
	setDefault(&cfg.ProbeInterval, 400*time.Millisecond)
	// A probe's ack wait must end well inside its interval: with the
	// ack wait longer than the interval (500 ms against a 200 ms
	// probe_interval) memberlist's probes overlapped their rounds and a
	// host whose link went down was declared dead after 8–9 s instead of 3.
	setDefault(&cfg.ProbeTimeout, min(500*time.Millisecond, cfg.ProbeInterval/2))
	setDefault(&cfg.PushPullInterval, 15*time.Second)
	setDefault(&cfg.ReconnectInterval, 5*time.Second)
	setDefault(&cfg.ReconnectTimeout, time.Hour)
	if cfg.SuspicionMult <= 0 {
		cfg.SuspicionMult = 3
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger.With("component", "gossip"), members: map[string]*Member{},
		watch: make(chan struct{}), done: make(chan struct{})}
	if err := c.SetMeta(cfg.Meta); err != nil {
		return nil, err
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.Transport = cfg.Transport
	mc.Delegate = (*delegate)(c)
	mc.Events = (*events)(c)
	mc.GossipInterval = cfg.GossipInterval
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	// Lifeguard's local health may stretch this node's probe timeouts to
	// twice their setting, not memberlist's eight: when a host carrying two
	// members goes silent, the indirect probes a node asks for go through
	// the other silent member too, and its missing answers count against
	// the asker's own health, which then probed ever more slowly — two
	// members gone at once took 2.2–7.8 s to be declared dead in a cluster
	// of five, 2.0–2.8 s with the cap (the 8 s outliers that remained
	// were the dead verdict not reaching every node: RetransmitMult
	// below). With every link at 20 % loss the cap made no more false
	// deaths (0–1 in 3 minutes against 1–5), and none at 5 and 10 % (the
	// faults suite's detection harness:
	// BENCH_FAULTS_ONLY=detect, BENCH_FAULTS_LOSS, BENCH_DETECT_AWARENESS=8
	// for memberlist's own).
	mc.AwarenessMaxMultiplier = 2
	if cfg.AwarenessMaxMult > 0 {
		mc.AwarenessMaxMultiplier = cfg.AwarenessMaxMult
	}
	mc.PushPullInterval = cfg.PushPullInterval
	mc.Logger = log.New(&logWriter{log: c.log}, "", 0)
	// memberlist packs broadcasts into packets of UDPBufferSize (1,400 bytes
	// by default, for UDP) and never sends one that does not fit, leaving it
	// to push/pull (15 s). A signed replicated item carries its writer's
	// SVID chain (about 1–2 KiB), so it would not fit: our transport frames
	// packets on TLS streams of up to transport.MaxFrame (64 KiB), and a
	// node of an earlier release reads frames that size too.
	mc.UDPBufferSize = packetSize
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numNodes, RetransmitMult: 2 * lanRetransmitMult}
	c.frequent = &memberlist.TransmitLimitedQueue{NumNodes: c.numNodes, RetransmitMult: lanRetransmitMult}
	// Membership news (alive, suspect, dead) goes out twice as often as in
	// memberlist's LAN profile. Each transmission goes to a random member
	// among those alive, suspect or dead for under GossipToTheDeadTime
	// (30 s), so after a host carrying two members went silent, or after a
	// rolling restart, half or more of a small cluster's picks land on
	// members that cannot hear: a live node could miss the dead verdict
	// entirely and wait out its own suspicion with nobody left to confirm
	// it (Lifeguard's 6× timeout): two members silent at once then took
	// up to 8.2 s in the faults suite, 1.9–3.0 s with 8 (make faults,
	// detect_two_s_*, 16 trials). These messages are rare and small; the
	// nodes' own broadcasts keep their rates.
	mc.RetransmitMult = membershipRetransmitMult
	// The transport chose the address (port 0 works): advertise it.
	ip, port, err := cfg.Transport.FinalAdvertiseAddr("", 0)
	if err != nil {
		return nil, fmt.Errorf("gossip: advertise address: %w", err)
	}
	mc.AdvertiseAddr, mc.AdvertisePort = ip.String(), port
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	c.ml = ml
	return c, nil
}

// lanRetransmitMult is memberlist's LAN RetransmitMult, the base of the
// nodes' own broadcast queues; membershipRetransmitMult is memberlist's
// (see New).
const (
	lanRetransmitMult        = 4
	membershipRetransmitMult = 8
)

// packetSize is the gossip packet size: room for a few signed items a
// packet, well under transport.MaxFrame.
const packetSize = 16 << 10

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Sender returns the Send function of the owner of kind (an owner is
// built with it, then registered).
func (c *Cluster) Sender(kind byte) Send { return c.sender(kind, false) }

// FrequentSender is Sender for an owner that re-sends its state every
// round (rate-limit counts): its messages ride in the space the others
// leave, with memberlist's own retransmit count.
func (c *Cluster) FrequentSender(kind byte) Send { return c.sender(kind, true) }

func (c *Cluster) sender(kind byte, frequent bool) Send {
	c.isFrequent[kind] = frequent
	return func(key string, msg []byte) {
		b := make([]byte, 1+len(msg))
		b[0] = kind
		copy(b[1:], msg)
		c.queueFor(kind).QueueBroadcast(&broadcast{key: string(kind) + key, msg: b})
	}
}

// directTag opens a message sent straight to peers (DirectSender) instead
// of broadcast: the receiver merges it and never relays it, since every
// peer got its own copy. No owner has kind 0.
const directTag byte = 0

// DirectSender returns a function that sends an owner's message straight to
// every alive peer now, best effort, one packet each: for news whose delay
// matters more than its cost (rate-limit claims, which bound the peers'
// budgets only once they have them). A broadcast reaches a peer after up to
// a gossip interval's wait for the next round and, for most of the peers,
// one or more relays (each another round): measured 100–300 ms at 10
// nodes, against a few milliseconds for a direct packet. The owner still
// Sends the message too: the broadcast repairs a lost packet, and since it
// then brings no news it is not relayed. A release without this path
// counts a direct message as of an unknown kind and drops it.
func (c *Cluster) DirectSender(kind byte) func(msg []byte) {
	return func(msg []byte) {
		if c.closed.Load() {
			return
		}
		b := make([]byte, 2+len(msg))
		b[0], b[1] = directTag, kind
		copy(b[2:], msg)
		// Addresses from this package's member table, copied when
		// memberlist reported the member: the *Node values ml.Members()
		// returns are memberlist's own, which it rewrites without a lock
		// the caller can take (a data race with an alive message).
		c.mu.Lock()
		to := make([]memberlist.Address, 0, len(c.members))
		for _, m := range c.members {
			if m.Name != c.cfg.Name && m.State == Alive {
				to = append(to, memberlist.Address{Addr: m.Addr, Name: m.Name})
			}
		}
		c.mu.Unlock()
		for _, a := range to {
			_ = c.ml.SendToAddress(a, b) // the broadcast repairs a loss
		}
	}
}

func (c *Cluster) queueFor(kind byte) *memberlist.TransmitLimitedQueue {
	if c.isFrequent[kind] {
		return c.frequent
	}
	return c.queue
}

// Register adds a state owner; call it before Start.
func (c *Cluster) Register(o Owner) {
	if c.started.Load() {
		panic("gossip: Register after Start")
	}
	if o.Kind() == directTag {
		panic("gossip: owner kind 0 is reserved")
	}
	c.owners[o.Kind()] = o
	c.kinds = append(c.kinds, o)
}

// Start joins the configured members in the background (with backoff) and
// keeps reconnecting to failed members. It does not wait for a join.
func (c *Cluster) Start() {
	c.started.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.maintain(ctx)
}

// Name is this node's name; Addr its gossip address.
func (c *Cluster) Name() string { return c.cfg.Name }

// Addr is the gossip address other nodes join.
func (c *Cluster) Addr() string { return c.ml.LocalNode().Address() }

// SetMeta replaces this node's metadata and tells the cluster.
func (c *Cluster) SetMeta(m Meta) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	c.meta.Store(&b)
	if c.ml != nil {
		return c.ml.UpdateNode(time.Second)
	}
	return nil
}

// Meta is this node's current metadata.
func (c *Cluster) Meta() Meta {
	m, _ := UnmarshalMeta(*c.meta.Load())
	return m
}

// Members returns every member known, this node included, sorted by name.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, *m)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Watch returns a channel closed at the next membership change.
func (c *Cluster) Watch() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watch
}

// Alive reports whether the named node is a live member (not dead or gone).
func (c *Cluster) Alive(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[name]
	return m != nil && (m.State == Alive || m.State == Suspect)
}

// Peers is the number of live members other than this node.
func (c *Cluster) Peers() int { return c.ml.NumMembers() - 1 }

func (c *Cluster) numNodes() int { return c.ml.NumMembers() }

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	return Stats{MessagesIn: c.stats.messagesIn.Load(), Relayed: c.stats.relayed.Load(),
		BadMessages: c.stats.badMessages.Load(), StatesIn: c.stats.statesIn.Load(),
		BadStates: c.stats.badStates.Load(), UnknownKind: c.stats.unknownKind.Load(), Queued: c.queue.NumQueued() + c.frequent.NumQueued()}
}

// Leave tells the cluster this node is going (peers drop it at once rather
// than after failure detection, and never reconnect to it), then shuts
// down. Safe to call twice.
func (c *Cluster) Leave(timeout time.Duration) error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	m := c.Meta()
	m.Leaving, m.Healthy = true, false
	if b, err := m.Marshal(); err == nil {
		c.meta.Store(&b)
		_ = c.ml.UpdateNode(timeout / 2)
	}
	err := c.ml.Leave(timeout / 2)
	if serr := c.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops without leaving: to the others this node crashed.
func (c *Cluster) Shutdown() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	return c.ml.Shutdown()
}

// maintain joins the seeds until the node has a peer and then, whenever it
// has none left, again; and it tries one failed member every
// ReconnectInterval, which heals partitions memberlist gave up on.
func (c *Cluster) maintain(ctx context.Context) {
	defer close(c.done)
	backoff := 100 * time.Millisecond
	lastWarn := time.Time{}
	for {
		wait := c.cfg.ReconnectInterval
		if c.Peers() == 0 && len(c.cfg.Join) > 0 {
			n, err := c.ml.Join(c.cfg.Join)
			if c.Peers() == 0 {
				if time.Since(lastWarn) > 30*time.Second {
					c.log.Warn("no cluster member reachable yet; retrying", "join", c.cfg.Join, "joined", n, "err", err)
					lastWarn = time.Now()
				}
				wait = backoff
				backoff = min(backoff*2, c.cfg.ReconnectInterval)
			} else {
				backoff = 100 * time.Millisecond
			}
		} else if addr, ok := c.failedToRetry(); ok {
			_, _ = c.ml.Join([]string{addr})
		}
		// Jitter keeps a fleet restarted at once from joining in lockstep.
		wait = wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// failedToRetry picks a random member that failed (not one that left)
// recently enough to be worth another try.
func (c *Cluster) failedToRetry() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var addrs []string
	for name, m := range c.members {
		if m.State != Dead {
			continue
		}
		if time.Since(m.Since) > c.cfg.ReconnectTimeout {
			delete(c.members, name)
			continue
		}
		addrs = append(addrs, m.Addr)
	}
	if len(addrs) == 0 {
		return "", false
	}
	return addrs[rand.N(len(addrs))], true
}

// update records a member's state from a memberlist event.
func (c *Cluster) update(n *memberlist.Node, st State) {
	m := &Member{Name: n.Name, Addr: n.Address(), State: st, Since: time.Now()}
	m.Meta, m.MetaErr = UnmarshalMeta(n.Meta)
	if m.MetaErr != nil && st == Alive {
		c.log.Warn("member with unreadable metadata: not offered to discovery", "member", n.Name, "addr", m.Addr, "err", m.MetaErr)
	}
	c.mu.Lock()
	prev := c.members[n.Name]
	if st == Dead && (m.Meta.Leaving || prev != nil && prev.Meta.Leaving) {
		m.State = Left
	}
	// A member back from the dead (a healed partition, a restart) missed
	// the news of its absence, and memberlist does not repeat news: swap
	// whole states with it now rather than at the next push/pull.
	if st == Alive && prev != nil && prev.State == Dead && n.Name != c.cfg.Name && c.started.Load() && !c.closed.Load() {
		go func() { _, _ = c.ml.Join([]string{m.Addr}) }()
	}
	c.members[n.Name] = m
	close(c.watch)
	c.watch = make(chan struct{})
	c.mu.Unlock()
	if c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
}

type broadcast struct {
	key string
	msg []byte
}

func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.key == b.key
}
func (b *broadcast) Name() string    { return b.key }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
