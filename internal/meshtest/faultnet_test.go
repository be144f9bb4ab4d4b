package meshtest

import (
	"errors"
	"io"
	"log"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/gossip/transport"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

func TestNetworkRules(t *testing.T) {
	const a, b, c, d = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"
	n := NewNetwork()
	if n.Blocked(a, b) {
		t.Fatal("a new network blocks")
	}
	n.Partition([]string{a, b}, []string{c})
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{a, c, true}, {c, a, true}, {b, c, true}, {c, b, true},
		{a, b, false}, {b, a, false}, {a, d, false}, {c, d, false}, {c, c, false},
	} {
		if got := n.Blocked(tc.from, tc.to); got != tc.want {
			t.Errorf("after Partition: Blocked(%s, %s) = %v", tc.from, tc.to, got)
		}
	}
	n.Heal()
	n.Cut(a, b)
	if !n.Blocked(a, b) || n.Blocked(b, a) {
		t.Error("Cut is not one-way")
	}
	n.Heal()
	n.Isolate(d)
	if !n.Blocked(d, a) || !n.Blocked(b, d) || n.Blocked(a, b) || n.Blocked(d, d) {
		t.Error("Isolate blocks the wrong links")
	}
	n.Heal()
	if n.Blocked(d, a) || n.Blocked(a, b) {
		t.Error("Heal left a fault")
	}
}

// newTransport starts an mTLS gossip transport on loopback.
func newTransport(t *testing.T, ca *pkitest.CA, name string) *transport.Transport {
	t.Helper()
	src := pkitest.NewSource(ca.SVID(t, ca.ID(t, "/gossip/"+name)), ca.Bundle())
	tr, err := transport.New(transport.Options{BindAddr: "127.0.0.1:0", SVIDs: src, Bundles: src,
		Authorize: pki.AllowTrustDomain(td)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

func recv(ch <-chan *memberlist.Packet, d time.Duration) *memberlist.Packet {
	select {
	case p := <-ch:
		return p
	case <-time.After(d):
		return nil
	}
}

// TestWrapDropsAndFails: across a partition packets vanish both on the
// way out and on the way in, dials fail with ErrPartitioned, and Heal
// restores both.
func TestWrapDropsAndFails(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	trA, trB := newTransport(t, ca, "a"), newTransport(t, ca, "b")
	addrA, addrB := trA.AdvertiseAddr(), trB.AdvertiseAddr()
	n := NewNetwork()
	a := n.Wrap(addrA, trA)
	t.Cleanup(func() { _ = a.Shutdown() })

	n.Cut(addrA, addrB)
	if _, err := a.WriteTo([]byte("lost"), addrB); err != nil {
		t.Fatalf("a dropped packet must look sent: %v", err)
	}
	if _, err := a.DialTimeout(addrB, time.Second); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial across the cut: %v", err)
	}
	// b is not wrapped, so only a's receiving side can drop b's packets.
	n.Heal()
	n.Cut(addrB, addrA)
	if _, err := trB.WriteTo([]byte("filtered"), addrA); err != nil {
		t.Fatal(err)
	}
	if p := recv(a.PacketCh(), 200*time.Millisecond); p != nil {
		t.Fatalf("a received %q from a blocked sender", p.Buf)
	}
	if p := recv(trB.PacketCh(), 100*time.Millisecond); p != nil {
		t.Fatalf("b received %q across the cut", p.Buf)
	}

	n.Heal()
	if _, err := trB.WriteTo([]byte("through"), addrA); err != nil {
		t.Fatal(err)
	}
	if p := recv(a.PacketCh(), 5*time.Second); p == nil || string(p.Buf) != "through" {
		t.Fatalf("after Heal: %v", p)
	}
	if _, err := a.WriteTo([]byte("back"), addrB); err != nil {
		t.Fatal(err)
	}
	if p := recv(trB.PacketCh(), 5*time.Second); p == nil || string(p.Buf) != "back" {
		t.Fatalf("after Heal: %v", p)
	}
	c, err := a.DialTimeout(addrB, time.Second)
	if err != nil {
		t.Fatalf("dial after Heal: %v", err)
	}
	_ = c.Close()
}

type member struct {
	name string
	addr string
	ml   *memberlist.Memberlist
}

func (m *member) alive() []string {
	var names []string
	for _, n := range m.ml.Members() {
		if n.State == memberlist.StateAlive {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return names
}

// startMember runs memberlist over the mTLS transport wrapped by n, with
// failure detection in well under a second.
func startMember(t *testing.T, n *Network, ca *pkitest.CA, name string) *member {
	t.Helper()
	tr := newTransport(t, ca, name)
	c := memberlist.DefaultLocalConfig()
	c.Name = name
	c.Transport = n.Wrap(tr.AdvertiseAddr(), tr)
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 250 * time.Millisecond
	c.GossipToTheDeadTime = 500 * time.Millisecond
	c.TCPTimeout = 500 * time.Millisecond
	c.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return &member{name: name, addr: tr.AdvertiseAddr(), ml: ml}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func see(ms []*member, names ...string) func() bool {
	return func() bool {
		for _, m := range ms {
			if !slices.Equal(m.alive(), names) {
				return false
			}
		}
		return true
	}
}

// TestPartitionAndHeal: three memberlist nodes over real mTLS; the
// partitioned-off node is declared dead by the others (and they by it), and
// after Heal it is a member again. memberlist does not probe dead nodes,
// so after a long partition the isolated side rejoins explicitly, as the
// gossip package's reconnect loop does.
func TestPartitionAndHeal(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	n := NewNetwork()
	a, b, c := startMember(t, n, ca, "a"), startMember(t, n, ca, "b"), startMember(t, n, ca, "c")
	all := []*member{a, b, c}
	for _, m := range all[1:] {
		if _, err := m.ml.Join([]string{a.addr}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "three alive members", see(all, "a", "b", "c"))

	n.Partition([]string{c.addr}, []string{a.addr, b.addr})
	eventually(t, 5*time.Second, "a and b to declare c dead", see(all[:2], "a", "b"))
	eventually(t, 5*time.Second, "c to declare a and b dead", see(all[2:], "c"))
	if _, err := c.ml.Join([]string{a.addr}); err == nil {
		t.Fatal("join across the partition succeeded")
	}

	n.Heal()
	if _, err := c.ml.Join([]string{a.addr}); err != nil {
		t.Fatalf("join after Heal: %v", err)
	}
	eventually(t, 5*time.Second, "all three alive again", see(all, "a", "b", "c"))
}
