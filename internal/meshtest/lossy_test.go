package meshtest

import (
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki/pkitest"
)

// TestDegradedLinksDelayInOrder: on degraded links every packet and every
// stream write still arrives, in order (TCP resends a lost segment and holds
// up what follows), the losses cost at least an RTO, and Heal ends it.
func TestDegradedLinksDelayInOrder(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	trA, trB := newTransport(t, ca, "a"), newTransport(t, ca, "b")
	addrA, addrB := trA.AdvertiseAddr(), trB.AdvertiseAddr()
	n := NewNetwork()
	a, b := n.Wrap(addrA, trA), n.Wrap(addrB, trB)
	t.Cleanup(func() { _ = a.Shutdown(); _ = b.Shutdown() })

	// Fewer packets than the transport queues per destination (128): a
	// loss releases those behind it at once.
	const count, rto = 100, 50 * time.Millisecond
	n.Degrade(Link{Loss: 0.2, Jitter: 5 * time.Millisecond, RTO: rto})
	start := time.Now()
	for i := range count {
		if _, err := a.WriteTo([]byte(strconv.Itoa(i)), addrB); err != nil {
			t.Fatal(err)
		}
	}
	for i := range count {
		p := recv(b.PacketCh(), 5*time.Second)
		if p == nil {
			t.Fatalf("packet %d never arrived", i)
		}
		if string(p.Buf) != strconv.Itoa(i) {
			t.Fatalf("packet %d: got %q (out of order)", i, p.Buf)
		}
	}
	if took, lost := time.Since(start), n.Delayed(); lost == 0 || took < rto {
		t.Fatalf("%d of %d writes lost at 20%%, all delivered in %v (RTO %v)", lost, count, took, rto)
	}

	// A stream: writes return at once and arrive whole and in order,
	// what was written before Close included.
	c, err := a.DialTimeout(addrB, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range count {
		line := fmt.Sprintf("%d\n", i)
		want = append(want, line...)
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close()
	var in interface {
		io.Reader
		SetReadDeadline(time.Time) error
	}
	select {
	case s := <-b.StreamCh():
		in = s
		defer s.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no stream arrived")
	}
	_ = in.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(in)
	if err != nil || string(got) != string(want) {
		t.Fatalf("stream read %d of %d bytes (%v); in order: %v", len(got), len(want), err, string(got) == string(want[:len(got)]))
	}

	// Healed: a packet is not held back any more.
	n.Heal()
	before := n.Delayed()
	start = time.Now()
	for i := range 50 {
		if _, err := a.WriteTo([]byte(strconv.Itoa(i)), addrB); err != nil {
			t.Fatal(err)
		}
		if p := recv(b.PacketCh(), 5*time.Second); p == nil || string(p.Buf) != strconv.Itoa(i) {
			t.Fatalf("after Heal, packet %d: %v", i, p)
		}
	}
	if n.Delayed() != before {
		t.Fatalf("after Heal %d writes were held back", n.Delayed()-before)
	}
}
