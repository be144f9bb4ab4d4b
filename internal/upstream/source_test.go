package upstream

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

// dnsServer is a tiny authoritative UDP DNS server answering A queries with
// the addresses it holds (AAAA: no answer); fail answers SERVFAIL.
type dnsServer struct {
	conn    net.PacketConn
	mu      sync.Mutex
	answers []netip.Addr
	fail    bool
	queries atomic.Int64
}

func newDNSServer(t *testing.T, ips ...string) *dnsServer {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: c}
	s.set(ips...)
	go s.serve()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *dnsServer) set(ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = nil
	for _, ip := range ips {
		s.answers = append(s.answers, netip.MustParseAddr(ip))
	}
	s.fail = false
}

func (s *dnsServer) setFail() {
	s.mu.Lock()
	s.fail = true
	s.mu.Unlock()
}

func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
	}}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if len(q) < 12 {
			continue
		}
		i := 12 // skip the question name
		for i < len(q) && q[i] != 0 {
			i += int(q[i]) + 1
		}
		if i+5 > len(q) {
			continue
		}
		qend := i + 5
		qtype := binary.BigEndian.Uint16(q[i+1:])
		s.queries.Add(1)
		s.mu.Lock()
		answers, fail := slices.Clone(s.answers), s.fail
		s.mu.Unlock()
		resp := append([]byte(nil), q[:2]...) // id
		flags := uint16(0x8580)               // response, authoritative, RD, RA
		if fail {
			flags |= 2 // SERVFAIL
		}
		var an [][]byte
		if !fail && qtype == 1 {
			for _, a := range answers {
				ip := a.As4()
				rr := []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4}
				an = append(an, append(rr, ip[:]...))
			}
		}
		resp = binary.BigEndian.AppendUint16(resp, flags)
		resp = binary.BigEndian.AppendUint16(resp, 1)
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(an)))
		resp = append(resp, 0, 0, 0, 0)
		resp = append(resp, q[12:qend]...)
		for _, rr := range an {
			resp = append(resp, rr...)
		}
		s.conn.WriteTo(resp, from)
	}
}

func addrsOf(u *Upstream) []string {
	var out []string
	for _, e := range u.Endpoints() {
		out = append(out, e.Addr)
	}
	slices.Sort(out)
	return out
}

func TestDNSReResolution(t *testing.T) {
	dns := newDNSServer(t, "127.0.0.1", "127.0.0.2")
	clk := clock.NewFake(t0)
	cfg := config.Upstream{
		Name: "dns",
		Endpoints: []config.Endpoint{
			{Address: "svc.meshgate.test.:8080", Weight: 2},
			{Address: "192.0.2.1:80", Weight: 1},
		},
		DNSRefresh: config.Duration(30 * time.Second),
	}
	u, err := New(cfg, Options{Clock: clk, Resolver: dns.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	want := []string{"127.0.0.1:8080", "127.0.0.2:8080", "192.0.2.1:80"}
	if got := addrsOf(u); !slices.Equal(got, want) {
		t.Fatalf("endpoints %v, want %v", got, want)
	}
	kept := u.set.Load().byAddr["127.0.0.1:8080"]
	if kept.Weight != 2 || kept.Host != "svc.meshgate.test." {
		t.Fatalf("resolved endpoint weight %d host %q", kept.Weight, kept.Host)
	}
	kept.Begin()

	dns.set("127.0.0.1", "127.0.0.3")
	clk.BlockUntil(1)
	clk.Advance(30 * time.Second)
	want = []string{"127.0.0.1:8080", "127.0.0.3:8080", "192.0.2.1:80"}
	eventually(t, "re-resolution", func() bool { return slices.Equal(addrsOf(u), want) })
	if e := u.set.Load().byAddr["127.0.0.1:8080"]; e != kept || e.InFlight() != 1 {
		t.Fatal("surviving endpoint lost its state")
	}

	// A failing resolution keeps the last good set.
	dns.setFail()
	clk.BlockUntil(1)
	q := dns.queries.Load()
	clk.Advance(30 * time.Second)
	eventually(t, "a query", func() bool { return dns.queries.Load() > q })
	clk.BlockUntil(1) // the round is over and the timer re-armed
	if got := addrsOf(u); !slices.Equal(got, want) {
		t.Fatalf("after failure: %v, want %v", got, want)
	}
}

func TestStaticSourceLocalhost(t *testing.T) {
	// The system resolver; localhost is in /etc/hosts everywhere.
	u, err := New(config.Upstream{Name: "lh", Endpoints: []config.Endpoint{{Address: "localhost:9"}}},
		Options{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got := addrsOf(u)
	if !slices.Contains(got, "127.0.0.1:9") && !slices.Contains(got, "[::1]:9") {
		t.Fatalf("localhost resolved to %v", got)
	}
}

type chanSource chan []Address

func (c chanSource) Run(ctx context.Context, update func([]Address)) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-c:
			update(a)
		}
	}
}

func TestCustomSource(t *testing.T) {
	src := make(chanSource, 1)
	src <- []Address{{Addr: "10.1.0.1:80"}}
	u, err := New(config.Upstream{Name: "gossip"}, Options{Source: src, Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if got := addrsOf(u); !slices.Equal(got, []string{"10.1.0.1:80"}) {
		t.Fatalf("got %v", got)
	}
	src <- []Address{{Addr: "10.1.0.2:80"}, {Addr: "10.1.0.3:80"}}
	eventually(t, "update", func() bool { return len(u.Endpoints()) == 2 })
}
