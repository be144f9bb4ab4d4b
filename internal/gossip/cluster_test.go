package gossip

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/internal/replica"
)

// fastConfig is a cluster tuned for tests: failures detected in about a
// second.
func fastConfig(t testing.TB, name string, tr memberlist.NodeAwareTransport, meta Meta, join ...string) Config {
	return Config{Name: name, Transport: tr, Meta: meta, Join: join,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		GossipInterval: 50 * time.Millisecond, ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond,
		SuspicionMult: 2, PushPullInterval: time.Second, ReconnectInterval: 200 * time.Millisecond}
}

// plainTransport is memberlist's own UDP/TCP transport on loopback: enough
// for the logic tested here (the mTLS transport has its own tests).
func plainTransport(t testing.TB) memberlist.NodeAwareTransport {
	t.Helper()
	tr, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"},
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

type testNode struct {
	*Cluster
	store *replica.Store
}

func startCluster(t testing.TB, n int, meta func(i int) Meta) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := 0; i < n; i++ {
		var join []string
		if i > 0 {
			join = []string{nodes[0].Addr()}
		}
		c, err := New(fastConfig(t, fmt.Sprintf("node-%d", i), plainTransport(t), meta(i), join...))
		if err != nil {
			t.Fatal(err)
		}
		tn := &testNode{Cluster: c}
		tn.store = replica.New(replica.Options{Node: c.Name(), Send: c.Sender('r')})
		c.Register(tn.store)
		c.Start()
		t.Cleanup(func() { c.Shutdown() })
		nodes = append(nodes, tn)
	}
	waitFor(t, 5*time.Second, "all nodes see each other", func() bool {
		for _, nd := range nodes {
			if nd.Peers() != n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sidecarMeta(i int) Meta {
	subset := "v1"
	if i%2 == 0 {
		subset = "v2"
	}
	return Meta{Role: "sidecar", Service: "orders", Subset: subset, Inbound: fmt.Sprintf("127.0.0.1:%d", 9000+i),
		ID: fmt.Sprintf("spiffe://example.org/orders-%d", i), Healthy: true}
}

func TestDiscoveryFollowsMembershipAndHealth(t *testing.T) {
	nodes := startCluster(t, 4, sidecarMeta)
	src := nodes[0].Service("orders", "")
	if got := src.Endpoints(); len(got) != 4 {
		t.Fatalf("endpoints %v", got)
	}
	if got := nodes[0].Service("orders", "v1").Endpoints(); len(got) != 2 || got[0].Addr != "127.0.0.1:9001" {
		t.Fatalf("subset v1: %v", got)
	}
	if ids := src.IDs(); len(ids) != 4 || ids[0] != "spiffe://example.org/orders-0" {
		t.Fatalf("ids %v", ids)
	}

	// An unhealthy app leaves the set on every node.
	m := nodes[3].Meta()
	m.Healthy = false
	if err := nodes[3].SetMeta(m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "unhealthy node dropped", func() bool { return len(nodes[1].Service("orders", "").Endpoints()) == 3 })

	// A crash (no leave) is noticed by failure detection.
	nodes[2].Shutdown()
	waitFor(t, 5*time.Second, "dead node dropped", func() bool { return len(nodes[0].Service("orders", "").Endpoints()) == 2 })
	if nodes[0].Alive("node-2") {
		t.Fatal("node-2 still alive")
	}

	// A graceful leave is seen as Left, and is not reconnected to.
	if err := nodes[1].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	// Generous: under make test's parallel packages on two cores the leave
	// can take several gossip rounds to arrive; waitFor returns at once.
	waitFor(t, 10*time.Second, "left node marked", func() bool {
		for _, m := range nodes[0].Members() {
			if m.Name == "node-1" {
				return m.State == Left
			}
		}
		return false
	})
}

func TestReplicatedStateReachesEveryNode(t *testing.T) {
	nodes := startCluster(t, 6, func(int) Meta { return Meta{Role: "edge"} })
	if _, err := nodes[4].store.Put("route", "orders", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "every node has the route", func() bool {
		for _, nd := range nodes {
			if it, ok := nd.store.Get("route", "orders"); !ok || string(it.Value) != "v1" {
				return false
			}
		}
		return true
	})
}

func TestBadPeerBytesAreCountedNotFatal(t *testing.T) {
	nodes := startCluster(t, 1, func(int) Meta { return Meta{Role: "edge"} })
	d := (*delegate)(nodes[0].Cluster)
	d.NotifyMsg(nil)
	d.NotifyMsg([]byte{'r', 0xff})
	d.NotifyMsg([]byte{'?', 1})
	d.MergeRemoteState([]byte{1, 'r', 5, 1}, false)
	st := nodes[0].Stats()
	if st.BadMessages != 2 || st.UnknownKind != 1 || st.BadStates != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMetaRoundTripAndLimits(t *testing.T) {
	m := sidecarMeta(1)
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalMeta(b)
	if err != nil || got != m {
		t.Fatalf("round trip %+v %v", got, err)
	}
	long := m
	long.ID = "spiffe://example.org/" + string(make([]byte, 600))
	if _, err := long.Marshal(); err == nil {
		t.Fatal("oversized metadata accepted")
	}
	for _, bad := range [][]byte{nil, {9}, append(b, 0), b[:len(b)-2]} {
		if _, err := UnmarshalMeta(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzUnmarshalMeta(f *testing.F) {
	b, _ := sidecarMeta(1).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMeta(b)
		if err != nil {
			return
		}
		again, err := m.Marshal()
		if err != nil {
			return // a peer may send up to the limit; our fields add no room
		}
		if m2, err := UnmarshalMeta(again); err != nil || m2 != m {
			t.Fatalf("round trip: %+v → %+v (%v)", m, m2, err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState([]Owner{replica.New(replica.Options{Node: "a"})}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeState(b)
	})
}

// A member may offer a service only under an identity that names it: its
// SPIFFE ID's last path segment is the service, or the service and a
// suffix ("orders", "orders-v2"). A member claiming orders under another
// identity is not offered, and its ID is not accepted for the service.
func TestDiscoveryRefusesAMemberWhoseIdentityDoesNotNameTheService(t *testing.T) {
	nodes := startCluster(t, 3, func(i int) Meta {
		m := sidecarMeta(i)
		switch i {
		case 1:
			m.ID = "spiffe://example.org/payments" // claims orders
		case 2:
			m.ID = "spiffe://example.org/ns/prod/sa/orders"
		}
		return m
	})
	src := nodes[0].Service("orders", "")
	got := src.Endpoints()
	if len(got) != 2 || got[0].Addr != "127.0.0.1:9000" || got[1].Addr != "127.0.0.1:9002" {
		t.Fatalf("endpoints %v, want node 0 and 2's", got)
	}
	if ids := src.IDs(); len(ids) != 2 || slices.Contains(ids, "spiffe://example.org/payments") {
		t.Fatalf("ids %v", ids)
	}
	for id, want := range map[string]bool{
		"spiffe://example.org/orders": true, "spiffe://example.org/orders-v2": true, "spiffe://example.org/ns/a/sa/orders": true,
		"spiffe://example.org/payments": false, "spiffe://example.org/ordersx": false, "spiffe://example.org/orders/x": false, "": false,
	} {
		if ServesService(id, "orders") != want {
			t.Errorf("ServesService(%q, orders) = %v", id, !want)
		}
	}
}
