package transport

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
)

func recvPacket(t *testing.T, tr *Transport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
		return nil
	}
}

func recvStream(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	select {
	case c := <-tr.StreamCh():
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no stream")
		return nil
	}
}

// TestPackets: packets arrive whole and in order, From is the sender's
// advertise address (not its ephemeral port) and carries its SPIFFE ID.
func TestPackets(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	a := newTransport(t, identity(t, ca, "/edge"))
	b := newTransport(t, identity(t, ca, "/sidecar/b"))

	before := time.Now()
	for i := range 50 {
		if _, err := a.WriteTo([]byte("packet "+strconv.Itoa(i)), b.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		p := recvPacket(t, b)
		if want := "packet " + strconv.Itoa(i); string(p.Buf) != want {
			t.Fatalf("packet %d = %q, want %q", i, p.Buf, want)
		}
		if p.From.String() != a.AdvertiseAddr() {
			t.Fatalf("From = %s, want a's advertise address %s", p.From, a.AdvertiseAddr())
		}
		if id, ok := PacketPeerID(p.From); !ok || id != ca.ID(t, "/edge") {
			t.Fatalf("PacketPeerID = %v, %v", id, ok)
		}
		if p.Timestamp.Before(before) {
			t.Fatalf("Timestamp %v before the send", p.Timestamp)
		}
	}
	// The receiver can have a packet before the sender's Write returns.
	eventually(t, 5*time.Second, "the sender to count 50 packets", func() bool { return a.Stats().PacketsOut == 50 })
	if s := a.Stats(); s.PacketsDropped != 0 {
		t.Errorf("sender stats %+v", s)
	}
	if s := b.Stats(); s.PacketsIn != 50 || s.Accepted != 1 || s.Rejected != 0 {
		t.Errorf("receiver stats %+v (one packet connection expected)", s)
	}
}

// TestPacketSizeLimit: WriteTo refuses what a peer would refuse; the
// largest allowed packet goes through.
func TestPacketSizeLimit(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	a := newTransport(t, identity(t, ca, "/a"))
	b := newTransport(t, identity(t, ca, "/b"))
	for _, n := range []int{0, MaxFrame + 1} {
		if _, err := a.WriteTo(make([]byte, n), b.AdvertiseAddr()); err == nil {
			t.Errorf("WriteTo of %d bytes: no error", n)
		}
	}
	big := bytes.Repeat([]byte{7}, MaxFrame)
	if _, err := a.WriteTo(big, b.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b); !bytes.Equal(p.Buf, big) {
		t.Fatalf("got %d bytes", len(p.Buf))
	}
}

// TestStreams: a dialled stream reaches StreamCh as a *tls.Conn, carries
// bytes both ways, and each end can name the other's SPIFFE ID.
func TestStreams(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	a := newTransport(t, identity(t, ca, "/edge"))
	b := newTransport(t, identity(t, ca, "/sidecar/b"))

	out, err := a.DialTimeout(b.AdvertiseAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	in := recvStream(t, b)
	defer in.Close()
	if _, ok := in.(*tls.Conn); !ok {
		t.Fatalf("stream is %T, want *tls.Conn", in)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := in.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if id, err := PeerID(in); err != nil || id != ca.ID(t, "/edge") {
		t.Errorf("acceptor's PeerID = %v, %v", id, err)
	}
	if id, err := PeerID(out); err != nil || id != ca.ID(t, "/sidecar/b") {
		t.Errorf("dialler's PeerID = %v, %v", id, err)
	}
	if _, err := PeerID(&net.TCPConn{}); err == nil {
		t.Error("PeerID of a plain conn: no error")
	}
	if s := a.Stats(); s.StreamsOut != 1 {
		t.Errorf("StreamsOut = %d", s.StreamsOut)
	}
	if s := b.Stats(); s.StreamsIn != 1 || s.Accepted != 1 {
		t.Errorf("acceptor stats %+v", s)
	}
}

// TestOversizeFrameFromPeer: even an authenticated peer is cut off when it
// announces a frame over MaxFrame, before anything is allocated for it.
func TestOversizeFrameFromPeer(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	b := newTransport(t, identity(t, ca, "/b"))
	src := identity(t, ca, "/a")
	conf := pki.ClientTLS(src, src, pki.AllowTrustDomain(td))
	conf.NextProtos = []string{alpn}
	c, err := tls.Dial("tcp", b.AdvertiseAddr(), conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := appendPacketPreamble(nil, mustAddrPort(t, "127.0.0.1:9"))
	msg = appendFrame(msg, []byte("fine"))
	msg = binary.BigEndian.AppendUint32(msg, MaxFrame+1)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b); string(p.Buf) != "fine" {
		t.Fatalf("got %q", p.Buf)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after an oversize frame")
	}
	if s := b.Stats(); s.Malformed != 1 {
		t.Errorf("Malformed = %d, want 1", s.Malformed)
	}
}

// TestRedialAfterPeerRestart: when the peer at an address restarts, the
// sender notices the dead connection and redials; packets flow again.
func TestRedialAfterPeerRestart(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	a := newTransport(t, identity(t, ca, "/a"))
	srcB := identity(t, ca, "/b")
	b := newTransport(t, srcB)
	addr := b.AdvertiseAddr()
	if _, err := a.WriteTo([]byte("one"), addr); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, b)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	b2 := newTransport(t, srcB, func(o *Options) { o.BindAddr = addr })
	eventually(t, 5*time.Second, "a packet to reach the restarted peer", func() bool {
		if _, err := a.WriteTo([]byte("two"), addr); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-b2.PacketCh():
			return string(p.Buf) == "two"
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	// The watcher marks the old connection gone as soon as the peer closes
	// it, so at most the packets sent in that instant are lost.
	if s := a.Stats(); s.PacketsDropped > 2 {
		t.Errorf("dropped %d packets across a restart", s.PacketsDropped)
	}
}

// TestFinalAdvertiseAddr: port 0 is reported as the bound port; an address
// from memberlist is honoured unless it contradicts Options.AdvertiseAddr;
// a wildcard bind without an advertise address is an error, not a guess.
func TestFinalAdvertiseAddr(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	src := identity(t, ca, "/n")

	tr := newTransport(t, src)
	port := tr.Addr().(*net.TCPAddr).Port
	ip, p, err := tr.FinalAdvertiseAddr("", 7946)
	if err != nil || ip.String() != "127.0.0.1" || p != port || port == 0 {
		t.Fatalf("FinalAdvertiseAddr = %v, %d, %v; bound port %d", ip, p, err, port)
	}
	if ip, p, err = tr.FinalAdvertiseAddr("127.0.0.1", 0); err != nil || p != port {
		t.Fatalf("explicit ip, port 0: %v, %d, %v", ip, p, err)
	}
	if ip, p, err = tr.FinalAdvertiseAddr("127.0.0.2", 4000); err != nil || ip.String() != "127.0.0.2" || p != 4000 {
		t.Fatalf("explicit address: %v, %d, %v", ip, p, err)
	}
	if got := tr.AdvertiseAddr(); got != "127.0.0.2:4000" {
		t.Fatalf("AdvertiseAddr after memberlist set it = %s", got)
	}
	if _, _, err := tr.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Error("bad ip accepted")
	}

	fixed := newTransport(t, src, func(o *Options) { o.AdvertiseAddr = "10.1.2.3:7000" })
	if ip, p, err := fixed.FinalAdvertiseAddr("", 7946); err != nil || ip.String() != "10.1.2.3" || p != 7000 {
		t.Fatalf("Options.AdvertiseAddr: %v, %d, %v", ip, p, err)
	}
	if _, _, err := fixed.FinalAdvertiseAddr("10.1.2.3", 7946); err == nil {
		t.Error("conflicting advertise addresses accepted")
	}

	wild := newTransport(t, src, func(o *Options) { o.BindAddr = "0.0.0.0:0" })
	if _, _, err := wild.FinalAdvertiseAddr("", 7946); err == nil {
		t.Error("wildcard bind without advertise address: no error")
	}
	for _, bad := range []string{"0.0.0.0:1", "127.0.0.1", "host:1", "127.0.0.1:0"} {
		if _, err := New(Options{BindAddr: "127.0.0.1:0", AdvertiseAddr: bad, SVIDs: src, Bundles: src, Authorize: pki.AllowTrustDomain(td)}); err == nil {
			t.Errorf("AdvertiseAddr %q accepted", bad)
		}
	}
	if _, err := New(Options{BindAddr: "127.0.0.1:0", SVIDs: src, Bundles: src}); err == nil {
		t.Error("nil Authorize accepted")
	}
}

func TestAfterShutdown(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	a := newTransport(t, identity(t, ca, "/a"))
	b := newTransport(t, identity(t, ca, "/b"))
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo([]byte("x"), b.AdvertiseAddr()); err == nil {
		t.Error("WriteTo after Shutdown: no error")
	}
	if _, err := a.DialTimeout(b.AdvertiseAddr(), time.Second); err == nil {
		t.Error("DialTimeout after Shutdown: no error")
	}
	if err := a.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
