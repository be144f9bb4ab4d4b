package transport

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/pki/pkitest"
)

// node is one memberlist member over a Transport.
type node struct {
	ml *memberlist.Memberlist
	tr *Transport
	d  *delegate
}

// fastConfig is memberlist's local config with intervals short enough for
// failure detection in about a second.
func fastConfig(t testing.TB, name string) *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.Name = name
	c.BindPort = 0 // the transport binds; memberlist only uses it in Join without a port
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 250 * time.Millisecond
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = 2 * time.Second
	c.Logger = stdLogger(t, name+" ")
	return c
}

// startNode runs a member named name with identity src on its own Transport.
func startNode(t testing.TB, name string, src *pkitest.Source, conf ...func(*memberlist.Config)) *node {
	t.Helper()
	return startNodeOn(t, name, newTransport(t, src), conf...)
}

// startNodeOn runs a member named name on tr.
func startNodeOn(t testing.TB, name string, tr *Transport, conf ...func(*memberlist.Config)) *node {
	t.Helper()
	n := &node{tr: tr, d: newDelegate(name)}
	c := fastConfig(t, name)
	for _, f := range conf {
		f(c)
	}
	c.Transport = n.tr
	c.Delegate = n.d
	c.Events = n.d
	ml, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	n.ml = ml
	n.d.queue.NumNodes = ml.NumMembers
	// Registered after newTransport's cleanup, so it runs first: memberlist
	// shuts its transport down itself.
	t.Cleanup(func() { _ = ml.Shutdown() })
	return n
}

func (n *node) addr() string { return n.tr.AdvertiseAddr() }

// alive lists the members n sees alive, sorted.
func (n *node) alive() []string {
	var names []string
	for _, m := range n.ml.Members() {
		if m.State == memberlist.StateAlive {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names
}

func seesAlive(nodes []*node, names ...string) func() bool {
	slices.Sort(names)
	return func() bool {
		for _, n := range nodes {
			if !slices.Equal(n.alive(), names) {
				return false
			}
		}
		return true
	}
}

// delegate records what memberlist delivers: user messages, remote state
// from push/pull, and departures. (memberlist never fills Node.State in
// the events it sends, so a departure does not say whether the node died
// or left.)
type delegate struct {
	name  string
	queue *memberlist.TransmitLimitedQueue

	mu     sync.Mutex
	msgs   []string
	states []string
	left   map[string]bool
}

func newDelegate(name string) *delegate {
	return &delegate{
		name:  name,
		queue: &memberlist.TransmitLimitedQueue{RetransmitMult: 3},
		left:  make(map[string]bool),
	}
}

func (d *delegate) NodeMeta(int) []byte { return nil }

func (d *delegate) NotifyMsg(b []byte) {
	d.mu.Lock()
	d.msgs = append(d.msgs, string(b)) // string() copies: b is memberlist's
	d.mu.Unlock()
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(bool) []byte { return []byte("state of " + d.name) }

func (d *delegate) MergeRemoteState(b []byte, _ bool) {
	d.mu.Lock()
	d.states = append(d.states, string(b))
	d.mu.Unlock()
}

func (d *delegate) NotifyJoin(*memberlist.Node)   {}
func (d *delegate) NotifyUpdate(*memberlist.Node) {}
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	d.mu.Lock()
	d.left[n.Name] = true
	d.mu.Unlock()
}

func (d *delegate) got(msg string) func() bool {
	return func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return slices.Contains(d.msgs, msg)
	}
}

func (d *delegate) merged(state string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.states, state)
}

func (d *delegate) departed(name string) func() bool {
	return func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.left[name]
	}
}

type broadcast string

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return []byte(b) }
func (b broadcast) Finished()                             {}

// startCluster starts members named names, all joined through the first.
func startCluster(t testing.TB, ca *pkitest.CA, conf []func(*memberlist.Config), names ...string) []*node {
	t.Helper()
	nodes := make([]*node, len(names))
	for i, name := range names {
		nodes[i] = startNode(t, name, identity(t, ca, "/gossip/"+name), conf...)
		if i > 0 {
			if _, err := nodes[i].ml.Join([]string{nodes[0].addr()}); err != nil {
				t.Fatalf("%s joins: %v", name, err)
			}
		}
	}
	eventually(t, 5*time.Second, "every node to see all alive", seesAlive(nodes, names...))
	return nodes
}

// TestCluster: three real memberlist nodes join over mTLS, exchange state
// by push/pull, broadcasts, best-effort and reliable user messages, and
// detect a node that stops without leaving as dead.
func TestCluster(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	nodes := startCluster(t, ca, nil, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]

	// Join is a push/pull: each side merged the other's LocalState.
	if !a.d.merged("state of b") || !b.d.merged("state of a") {
		t.Error("join did not exchange delegate state both ways")
	}

	a.d.queue.QueueBroadcast(broadcast("route v2"))
	eventually(t, 5*time.Second, "b to receive the broadcast", b.d.got("route v2"))
	eventually(t, 5*time.Second, "c to receive the broadcast", c.d.got("route v2"))

	if err := b.ml.SendBestEffort(c.ml.LocalNode(), []byte("packet b->c")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the best-effort message", c.d.got("packet b->c"))
	if err := c.ml.SendReliable(a.ml.LocalNode(), []byte("stream c->a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the reliable message", a.d.got("stream c->a"))

	// b and c never joined each other: only periodic push/pull, over a
	// stream, brings one's delegate state to the other.
	eventually(t, 5*time.Second, "b and c to push/pull", func() bool {
		return b.d.merged("state of c") || c.d.merged("state of b")
	})

	// Nobody was refused while all three ran. (After c's crash one may be:
	// a connection c was dialling when it stopped ends mid-handshake,
	// which the acceptor counts as rejected — a flake in CI.)
	for _, n := range nodes {
		if s := n.tr.Stats(); s.Rejected != 0 || s.Malformed != 0 {
			t.Errorf("%s before the crash: stats %+v", n.ml.LocalNode().Name, s)
		}
	}
	if err := c.ml.Shutdown(); err != nil { // no Leave: a crash, as far as the others know
		t.Fatal(err)
	}
	// Without a Leave, only failure detection removes c.
	eventually(t, 10*time.Second, "a to declare c dead", a.d.departed("c"))
	eventually(t, 10*time.Second, "b to declare c dead", b.d.departed("c"))
	eventually(t, 5*time.Second, "a and b to see only each other", seesAlive(nodes[:2], "a", "b"))

	for _, n := range nodes {
		s := n.tr.Stats()
		if s.Malformed != 0 || s.PacketsIn == 0 || s.StreamsIn+s.StreamsOut == 0 {
			t.Errorf("%s: stats %+v", n.ml.LocalNode().Name, s)
		}
	}
}

// TestClusterLeave: a node's Leave reaches the others as gossip. Probes
// are slowed to one per 10s, so failure detection cannot be what removes
// the node within the 2s allowed.
func TestClusterLeave(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	slow := func(c *memberlist.Config) { c.ProbeInterval = 10 * time.Second }
	nodes := startCluster(t, ca, []func(*memberlist.Config){slow}, "a", "b", "c")
	if err := nodes[2].ml.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[:2] {
		eventually(t, 2*time.Second, "c to be seen leaving", n.d.departed("c"))
	}
	if err := nodes[2].ml.Shutdown(); err != nil {
		t.Fatal(err)
	}
	holds(t, 200*time.Millisecond, "a and b seeing only each other", seesAlive(nodes[:2], "a", "b"))
}
