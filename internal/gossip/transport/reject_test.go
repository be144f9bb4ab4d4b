package transport

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// TestJoinRejected: a node without a valid SVID of the trust domain can
// neither join the cluster nor be joined by it, and the members stay as
// they were. The intruder itself trusts the cluster's CA and authorizes
// anyone, so every rejection below is the cluster's doing.
func TestJoinRejected(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	evilTD := spiffeid.RequireTrustDomainFromString("evil.example")
	evil := pkitest.NewCA(t, evilTD)

	// The cluster is federated with evil.example (its bundle verifies) but
	// authorizes only example.org: the foreign case exercises the
	// authorizer, not just chain verification.
	nodes := make([]*node, 2)
	for i, name := range []string{"a", "b"} {
		src := identity(t, ca, "/gossip/"+name, ca.Bundle(), evil.Bundle())
		nodes[i] = startNode(t, name, src)
	}
	if _, err := nodes[1].ml.Join([]string{nodes[0].addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a and b to see each other", seesAlive(nodes, "a", "b"))
	a := nodes[0]

	for _, tc := range []struct {
		name string
		svid func(t *testing.T) *x509svid.SVID
	}{
		{"foreign trust domain", func(t *testing.T) *x509svid.SVID { return evil.SVID(t, evil.ID(t, "/gossip/x")) }},
		{"untrusted CA", func(t *testing.T) *x509svid.SVID {
			other := pkitest.OtherCA(t, td)
			return other.SVID(t, other.ID(t, "/gossip/x"))
		}},
		{"expired", func(t *testing.T) *x509svid.SVID { return ca.SVID(t, ca.ID(t, "/gossip/x"), pkitest.Expired()) }},
		{"not yet valid", func(t *testing.T) *x509svid.SVID { return ca.SVID(t, ca.ID(t, "/gossip/x"), pkitest.NotYetValid()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := pkitest.NewSource(tc.svid(t), ca.Bundle(), evil.Bundle())
			x := startNodeOn(t, "x", newTransport(t, src, func(o *Options) {
				o.Authorize = tlsconfig.AuthorizeAny()
			}))
			before := a.tr.Stats().Rejected

			if n, err := x.ml.Join([]string{a.addr()}); err == nil || n != 0 {
				t.Fatalf("intruder joined: %d, %v", n, err)
			}
			// The intruder may hear the alert before a's handler counts it.
			eventually(t, 5*time.Second, "a to count the rejected handshake", func() bool {
				return a.tr.Stats().Rejected > before
			})
			if n, err := a.ml.Join([]string{x.addr()}); err == nil || n != 0 {
				t.Fatalf("a joined the intruder: %d, %v", n, err)
			}
			holds(t, 500*time.Millisecond, "the cluster unchanged", func() bool {
				return seesAlive(nodes, "a", "b")() && seesAlive([]*node{x}, "x")()
			})
			if s := x.tr.Stats(); s.PacketsIn != 0 || s.StreamsIn != 0 {
				t.Errorf("the intruder received from the cluster: %+v", s)
			}
		})
	}
}

// TestRotationAdmits: an expired SVID is refused; once the source serves a
// fresh one, the same transport (no restart) joins.
func TestRotationAdmits(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	nodes := startCluster(t, ca, nil, "a")
	src := pkitest.NewSource(ca.SVID(t, ca.ID(t, "/gossip/x"), pkitest.Expired()), ca.Bundle())
	x := startNode(t, "x", src)
	if _, err := x.ml.Join([]string{nodes[0].addr()}); err == nil {
		t.Fatal("expired SVID joined")
	}
	src.SetSVID(ca.SVID(t, ca.ID(t, "/gossip/x")))
	if _, err := x.ml.Join([]string{nodes[0].addr()}); err != nil {
		t.Fatalf("rotated SVID: %v", err)
	}
	eventually(t, 5*time.Second, "x to be a member", seesAlive(append(nodes, x), "a", "x"))
}

// assertNothingDelivered checks that tr hands memberlist nothing for a
// moment after a rejection was counted.
func assertNothingDelivered(t *testing.T, tr *Transport) {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		t.Fatalf("packet delivered: %q", p.Buf)
	case c := <-tr.StreamCh():
		t.Fatalf("stream delivered from %s", c.RemoteAddr())
	case <-time.After(100 * time.Millisecond):
	}
}

// memberlistPing is a packet memberlist would act on (pingMsg, then a
// msgpack map), framed as a packet connection would carry it.
func memberlistPing(t testing.TB, from string) []byte {
	b := appendPacketPreamble(nil, mustAddrPort(t, from))
	return appendFrame(b, []byte{0x00, 0x82, 0xa7, 'S', 'e', 'q', 'N', 'o', 0x01, 0xa4, 'N', 'o', 'd', 'e', 0xa1, 'a'})
}

// TestPlaintextRejected: raw TCP bytes shaped like a packet or a stream
// never reach memberlist; each connection is counted, and a burst of them
// yields one log line, not one per connection.
func TestPlaintextRejected(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	logs := &countingHandler{}
	tr := newTransport(t, identity(t, ca, "/b"), func(o *Options) {
		o.Logger = slog.New(logs)
		o.LogInterval = time.Minute
	})
	const n = 30
	for i := range n {
		c, err := net.Dial("tcp", tr.AdvertiseAddr())
		if err != nil {
			t.Fatal(err)
		}
		junk := memberlistPing(t, "127.0.0.1:9")
		if i%2 == 1 {
			// A stream preamble and the start of a push/pull (pushPullMsg,
			// then a msgpack map with Nodes and Join).
			junk = []byte{kindStream, 0x06, 0x83, 0xa5, 'N', 'o', 'd', 'e', 's', 0x01, 0xa4, 'J', 'o', 'i', 'n', 0xc3}
		}
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c) // returns when the server hangs up
		_ = c.Close()
	}
	eventually(t, 5*time.Second, "all junk connections counted", func() bool { return tr.Stats().Rejected == n })
	assertNothingDelivered(t, tr)
	if s := tr.Stats(); s.Accepted != 0 || s.PacketsIn != 0 {
		t.Errorf("stats %+v", s)
	}
	if got := logs.count(); got != 1 {
		t.Errorf("%d log lines for %d junk connections, want 1", got, n)
	}
}

// TestTLSWithoutClientCertRejected: TLS without a client certificate is
// refused, whichever TLS version; with 1.3 the client only learns it on
// its first read, and the bytes it wrote before are never delivered.
func TestTLSWithoutClientCertRejected(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	tr := newTransport(t, identity(t, ca, "/b"))
	for i, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		conf := &tls.Config{
			InsecureSkipVerify: true, // this client wants in; it does not care who b is
			NextProtos:         []string{alpn},
			MaxVersion:         version,
		}
		c, err := tls.Dial("tcp", tr.AdvertiseAddr(), conf)
		if err == nil {
			_, _ = c.Write(memberlistPing(t, "127.0.0.1:9"))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Read(make([]byte, 1)); err == nil {
				t.Errorf("%s: read succeeded", tls.VersionName(version))
			}
			_ = c.Close()
		}
		eventually(t, 5*time.Second, "the rejection to be counted", func() bool { return tr.Stats().Rejected == uint64(i+1) })
	}
	assertNothingDelivered(t, tr)
}

// TestWrongProtocolRejected: a valid SVID is not enough on its own; a
// client speaking another ALPN protocol (an HTTP client aimed at the
// gossip port) or none is refused, as is an unknown connection type.
func TestWrongProtocolRejected(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	tr := newTransport(t, identity(t, ca, "/b"))
	src := identity(t, ca, "/a")
	dial := func(protos []string, first []byte) {
		t.Helper()
		conf := pki.ClientTLS(src, src, pki.AllowTrustDomain(td))
		conf.NextProtos = protos
		c, err := tls.Dial("tcp", tr.AdvertiseAddr(), conf)
		if err != nil {
			return // refused in the handshake
		}
		defer c.Close()
		_, _ = c.Write(first)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("ALPN %v, first byte %#x: read succeeded", protos, first[0])
		}
	}
	dial([]string{"h2", "http/1.1"}, memberlistPing(t, "127.0.0.1:9"))
	dial(nil, memberlistPing(t, "127.0.0.1:9"))
	dial([]string{alpn}, []byte{0x7f})
	eventually(t, 5*time.Second, "three rejections", func() bool { return tr.Stats().Rejected == 3 })
	assertNothingDelivered(t, tr)
}

// TestHandshakeLimits: a client that connects and says nothing is dropped
// at HandshakeTimeout, and beyond MaxPendingHandshakes connections are
// closed at once.
func TestHandshakeLimits(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	tr := newTransport(t, identity(t, ca, "/b"), func(o *Options) {
		o.HandshakeTimeout = 300 * time.Millisecond
		o.MaxPendingHandshakes = 2
	})
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", tr.AdvertiseAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	start := time.Now()
	closedAfter := func(c net.Conn) time.Duration {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("server wrote to a silent client")
		}
		return time.Since(start)
	}
	if d := closedAfter(conns[2]); d > 200*time.Millisecond {
		t.Errorf("connection over the pending limit closed after %v", d)
	}
	for _, c := range conns[:2] {
		if d := closedAfter(c); d < 250*time.Millisecond {
			t.Errorf("silent client closed after %v, before the handshake timeout", d)
		}
	}
	eventually(t, time.Second, "three rejections", func() bool { return tr.Stats().Rejected == 3 })
}
