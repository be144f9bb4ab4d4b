package transport

import (
	"bytes"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki/pkitest"
)

// ownGoroutines returns the stacks of goroutines, other than the caller,
// running code of this package.
func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var own []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, "meshgate/internal/gossip/transport.") {
			own = append(own, g)
		}
	}
	return own
}

// noOwnGoroutines fails unless this package's goroutines are gone. One
// that has called wg.Done may not have exited yet: it gets an instant, as
// with goleak, but none may stay blocked.
func noOwnGoroutines(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for own := ownGoroutines(); len(own) > 0; own = ownGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines %s:\n%s", len(own), what, strings.Join(own, "\n\n"))
		}
		runtime.Gosched()
	}
}

// TestShutdownLeavesNoGoroutines: Shutdown returns only after every
// goroutine of the transport has ended, with packet connections open in
// both directions, a peer that went silent mid-handshake, a dial to a
// blackholed address in progress and a full queue.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	noOwnGoroutines(t, "left by earlier tests") // they shut down in their cleanups
	ca := pkitest.NewCA(t, td)
	slow := func(o *Options) { o.HandshakeTimeout = time.Minute }
	a := newTransport(t, identity(t, ca, "/a"), slow)
	b := newTransport(t, identity(t, ca, "/b"), slow)

	for _, pair := range [][2]*Transport{{a, b}, {b, a}} {
		if _, err := pair[0].WriteTo([]byte("hi"), pair[1].AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		<-pair[1].PacketCh()
	}
	s, err := a.DialTimeout(b.AdvertiseAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // the stream is the caller's, not the transport's
	(<-b.StreamCh()).Close()

	silent, err := net.Dial("tcp", a.AdvertiseAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A listener that never accepts: the TCP connect succeeds from the
	// backlog, the TLS handshake then hangs for HandshakeTimeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 200 { // more than QueueLen: some are dropped, none block
		if _, err := a.WriteTo(bytes.Repeat([]byte{1}, 100), ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	// b's packets to a now back up: nobody reads a's PacketCh.
	for range 10 {
		if _, err := b.WriteTo([]byte("unread"), a.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "the silent client and the hung dial to be in progress", func() bool {
		return strings.Count(strings.Join(ownGoroutines(), ""), ".handshake(") >= 1 &&
			strings.Count(strings.Join(ownGoroutines(), ""), ".dial(") >= 1
	})

	start := time.Now()
	for _, tr := range []*Transport{a, b} {
		if err := tr.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	noOwnGoroutines(t, "outlived Shutdown")
	if s := a.Stats(); s.PacketsDropped == 0 {
		t.Errorf("no packets dropped to a peer that never answers: %+v", s)
	}
}
