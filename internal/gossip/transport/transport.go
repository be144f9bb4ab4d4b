package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/pki"
)

// Transport is a memberlist.NodeAwareTransport over SPIFFE mTLS. Create it
// with New, set it as memberlist.Config.Transport; memberlist calls
// Shutdown. It is safe for concurrent use.
type Transport struct {
	opts      Options
	ln        net.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config

	// advertise is the address announced in hellos, fixed by
	// Options.AdvertiseAddr or the listener, or set by FinalAdvertiseAddr.
	advertise atomic.Pointer[netip.AddrPort]

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	// ctx is cancelled by Shutdown: it aborts dials and handshakes and
	// releases every goroutine blocked on a channel.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// pending is a semaphore of inbound connections not yet authenticated.
	pending chan struct{}

	mu     sync.RWMutex
	closed bool
	peers  map[string]*peer      // outbound packet queues by address
	conns  map[net.Conn]struct{} // every raw connection a goroutine of ours uses

	stats     counters
	rejectLog *rateLog
	dialLog   *rateLog
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

var errClosed = errors.New("transport: shut down")

// New listens on opts.BindAddr and starts accepting peers.
func New(opts Options) (*Transport, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	var adv netip.AddrPort
	if opts.AdvertiseAddr != "" {
		a, err := parseHello([]byte(opts.AdvertiseAddr))
		if err != nil {
			return nil, fmt.Errorf("transport: AdvertiseAddr: %w", err)
		}
		adv = a
	}
	ln, err := net.Listen("tcp", opts.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if !adv.IsValid() {
		bound := ln.Addr().(*net.TCPAddr).AddrPort()
		if !bound.Addr().IsUnspecified() {
			adv = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
		}
	}

	server := pki.ServerTLS(opts.SVIDs, opts.Bundles, opts.Authorize)
	client := pki.ClientTLS(opts.SVIDs, opts.Bundles, opts.Authorize)
	// The pki helpers return fresh configs; narrowing ALPN to the gossip
	// protocol keeps HTTP clients and gossip peers apart (package doc).
	server.NextProtos = []string{alpn}
	client.NextProtos = []string{alpn}

	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		opts:      opts,
		ln:        ln,
		serverTLS: server,
		clientTLS: client,
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		ctx:       ctx,
		cancel:    cancel,
		pending:   make(chan struct{}, opts.MaxPendingHandshakes),
		peers:     make(map[string]*peer),
		conns:     make(map[net.Conn]struct{}),
		rejectLog: newRateLog(opts.Logger, opts.LogInterval),
		dialLog:   newRateLog(opts.Logger, opts.LogInterval),
	}
	if adv.IsValid() {
		t.advertise.Store(&adv)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr returns the address the listener is bound to.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// AdvertiseAddr returns the "ip:port" this node announces to peers, or ""
// if the listener is bound to a wildcard address and neither
// Options.AdvertiseAddr nor memberlist gave one.
func (t *Transport) AdvertiseAddr() string {
	if a := t.advertise.Load(); a != nil {
		return a.String()
	}
	return ""
}

// FinalAdvertiseAddr implements memberlist.Transport. Like memberlist's
// NetTransport it honours an address configured in memberlist (ip, port;
// port 0 meaning the bound port), and otherwise returns the transport's
// own: Options.AdvertiseAddr or the bound address. memberlist's
// AdvertisePort defaults to 7946, so when both are set they must agree
// exactly, or this fails rather than advertise a port nobody listens on.
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, 0, fmt.Errorf("transport: advertise address %q: %w", ip, err)
		}
		if port == 0 {
			port = t.ln.Addr().(*net.TCPAddr).Port
		}
		if port < 1 || port > 65535 {
			return nil, 0, fmt.Errorf("transport: advertise port %d out of range", port)
		}
		ap, err := parseHello([]byte(netip.AddrPortFrom(addr, uint16(port)).String()))
		if err != nil {
			return nil, 0, fmt.Errorf("transport: advertise address: %w", err)
		}
		if t.opts.AdvertiseAddr != "" && ap != *t.advertise.Load() {
			return nil, 0, fmt.Errorf("transport: memberlist advertises %s but Options.AdvertiseAddr is %s; set only one", ap, t.opts.AdvertiseAddr)
		}
		t.advertise.Store(&ap)
		return net.IP(ap.Addr().AsSlice()), port, nil
	}
	a := t.advertise.Load()
	if a == nil {
		return nil, 0, fmt.Errorf("transport: bound to %s: set Options.AdvertiseAddr", t.ln.Addr())
	}
	return net.IP(a.Addr().AsSlice()), int(a.Port()), nil
}

// PacketCh implements memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh implements memberlist.Transport. Each value is a *tls.Conn
// whose handshake and preamble are done; the receiver owns it.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport: it closes the listener and
// every connection the transport still owns (pending handshakes, packet
// connections both ways) and waits for all its goroutines. Streams already
// handed to memberlist are memberlist's to close. Later calls are no-ops.
func (t *Transport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()

	t.cancel()
	err := t.ln.Close()
	for c := range conns {
		_ = c.Close()
	}
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// track registers a raw connection for Shutdown to close. It returns false
// once the transport is shut down; the caller then closes c itself.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

// untrack forgets c (Shutdown may already have closed it).
func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// shuttingDown reports whether Shutdown has begun, to keep its own
// teardown errors out of the counters and the log.
func (t *Transport) shuttingDown() bool { return t.ctx.Err() != nil }

func (t *Transport) logRejected(remote net.Addr, err error) {
	t.rejectLog.Log(slog.LevelWarn, "gossip transport: rejected connection",
		slog.String("remote", remote.String()), slog.String("error", err.Error()))
}
