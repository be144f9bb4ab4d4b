// Package listen runs the client listeners of a node: bound sockets that
// survive reloads (a reload points a socket at a new server instead of
// rebinding), TLS with certificates swapped in place, SPIFFE mTLS, and the
// choice per connection between the strict HTTP/1.x server (h1server) and
// net/http's HTTP/2 server (ALPN h2, or h2c with prior knowledge).
package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/h1server"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Listener is one running client listener. HTTP/1.x is served by h1server
// (strict framing, one goroutine per connection); HTTP/2 — TLS with ALPN h2,
// or h2c with prior knowledge — by net/http's server, to which the listener
// hands those connections after the TLS handshake or a look at the preface.
// A listener survives reloads that change only its certificates, which are
// swapped in place.
type Listener struct {
	cfg     config.Listener
	srvCfg  config.Server
	sock    *Socket
	queue   *connQueue // connections from the socket
	h1      *h1server.Server
	h2      *http.Server // nil when the listener speaks no HTTP/2
	h2queue *connQueue
	tlsCfg  *tls.Config
	certs   atomic.Pointer[CertSet]
	log     *slog.Logger
	metrics *telemetry.Metrics
	// entry routes the listener's requests; Close is called when the
	// listener stops serving.
	entry Handler
	// pending counts connections between accept and their server (TLS
	// handshake, h2c sniff): a drain waits for them, so a connection that
	// finishes its handshake during a reload is served, not reset.
	pending atomic.Int64
}

// CertSet is a listener's certificates; it chooses one by SNI.
type CertSet struct {
	certs []tls.Certificate
}

func loadCerts(t *config.TLS) (*CertSet, error) {
	cs := &CertSet{}
	for _, c := range t.Certificates {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.CertFile, err)
		}
		cs.certs = append(cs.certs, pair)
	}
	return cs, nil
}

func (cs *CertSet) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	for i := range cs.certs {
		if hello.SupportsCertificate(&cs.certs[i]) == nil && hello.ServerName != "" {
			if leaf := cs.certs[i].Leaf; leaf != nil && leaf.VerifyHostname(hello.ServerName) == nil {
				return &cs.certs[i], nil
			}
		}
	}
	return &cs.certs[0], nil
}

// CanKeep reports whether a listener can keep running under the new
// configuration: nothing but its certificates changed, which are swapped in
// place. Anything else starts a new server on the same socket and drains
// this one (see Socket).
func (l *Listener) CanKeep(cfg config.Listener, srv config.Server) bool {
	a, b := l.cfg, cfg
	a.TLS, b.TLS = nil, nil
	if !reflect.DeepEqual(a, b) || (l.cfg.TLS == nil) != (cfg.TLS == nil) {
		return false
	}
	if l.cfg.TLS != nil && l.cfg.TLS.MinVersion != cfg.TLS.MinVersion {
		return false
	}
	return l.srvCfg.ReadHeaderTimeout == srv.ReadHeaderTimeout &&
		l.srvCfg.IdleTimeout == srv.IdleTimeout &&
		l.srvCfg.MaxHeaderBytes == srv.MaxHeaderBytes &&
		l.srvCfg.BodyReadTimeout == srv.BodyReadTimeout &&
		l.srvCfg.WriteTimeout == srv.WriteTimeout
}

// Handler serves a listener's requests and holds what they need until
// Close (a dataplane.Entry).
type Handler interface {
	http.Handler
	Close()
}

// Identity is the node's SPIFFE identity, for mTLS listeners.
type Identity interface {
	x509svid.Source
	x509bundle.Source
}

// New prepares a listener on a bound socket; Serve starts it. The two
// are apart so that a reload prepares everything new before it commits.
func New(cfg config.Listener, srvCfg config.Server, sock *Socket, h Handler, m *telemetry.Metrics, log *slog.Logger, identity Identity) (*Listener, error) {
	l := &Listener{cfg: cfg, srvCfg: srvCfg, sock: sock, queue: newConnQueue(sock.ln.Addr()),
		log: log.With("listener", cfg.Name), metrics: m, entry: h}
	if cfg.TLS != nil {
		cs, err := loadCerts(cfg.TLS)
		if err != nil {
			return nil, err
		}
		l.certs.Store(cs)
	}
	gauge := m.Conns(cfg.Name)
	connState := func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			gauge.Inc()
		case http.StateClosed, http.StateHijacked:
			gauge.Dec()
		}
	}
	l.h1 = &h1server.Server{
		Handler:           h,
		ReadHeaderTimeout: srvCfg.ReadHeaderTimeout.D(),
		IdleTimeout:       srvCfg.IdleTimeout.D(),
		MaxHeaderBytes:    int(srvCfg.MaxHeaderBytes),
		BodyReadTimeout:   srvCfg.BodyReadTimeout.D(),
		WriteTimeout:      srvCfg.WriteTimeout.D(),
		ConnState:         connState,
		ErrorLog:          l.log,
		OnReject: func(c net.Conn, status int, reason string) {
			m.Rejected(rejectLabel(status))
			l.log.Info("request rejected", "status", status, "reason", reason, "client", c.RemoteAddr().String())
		},
	}
	secure := cfg.TLS != nil || cfg.MTLS != nil
	h2c := !secure && cfg.H2C != nil && *cfg.H2C
	if !secure && !h2c {
		return l, nil
	}
	l.h2queue = newConnQueue(sock.ln.Addr())
	l.h2 = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: srvCfg.ReadHeaderTimeout.D(),
		IdleTimeout:       srvCfg.IdleTimeout.D(),
		MaxHeaderBytes:    int(srvCfg.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		ConnState:         connState,
		Protocols:         new(http.Protocols),
	}
	if h2c {
		l.h2.Protocols.SetUnencryptedHTTP2(true)
		return l, nil
	}
	if cfg.MTLS != nil {
		// The handshake admits any SVID of the trust domain; the
		// listener's allow list is applied per request, so a refused
		// caller gets a 403 it can read rather than a broken handshake.
		svid, err := identity.GetX509SVID()
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", cfg.Name, err)
		}
		l.tlsCfg = pki.ServerTLS(identity, identity, pki.AllowTrustDomain(svid.ID.TrustDomain()))
		l.h2.Protocols.SetHTTP2(true)
		l.h2.TLSConfig = l.tlsCfg
		return l, nil
	}
	minVersion := uint16(tls.VersionTLS12)
	if cfg.TLS.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	l.tlsCfg = &tls.Config{
		MinVersion: minVersion,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return l.certs.Load().get(hello)
		},
	}
	l.h2.Protocols.SetHTTP2(true)
	l.h2.TLSConfig = l.tlsCfg
	return l, nil
}

// rejectLabel is the metric label of a request the server refused itself.
func rejectLabel(status int) string {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	case http.StatusRequestTimeout:
		return "header_timeout"
	case http.StatusHTTPVersionNotSupported:
		return "http_version"
	default:
		return "malformed"
	}
}

// Serve starts serving and points the socket at this listener (in that
// order: the hand-off may move queued connections here, which must find a
// consumer).
func (l *Listener) Serve() {
	if l.h2 != nil {
		go func() {
			if err := l.h2.Serve(l.h2queue); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				l.log.Error("HTTP/2 server stopped", "err", err)
			}
		}()
	}
	go func() {
		for {
			c, err := l.queue.Accept()
			if err != nil {
				return // retired: the socket now feeds another listener
			}
			l.pending.Add(1)
			go l.handle(c)
		}
	}()
	l.sock.handoff(l.queue)
	l.log.Info("listening", "address", l.sock.ln.Addr().String(), "protocol", l.cfg.Protocol)
}

// handle sends a connection to the server of its protocol.
func (l *Listener) handle(c net.Conn) {
	handedOver := false
	done := func() {
		if !handedOver {
			handedOver = true
			l.pending.Add(-1)
		}
	}
	defer done()
	switch {
	case l.tlsCfg != nil:
		tc := tls.Server(c, l.tlsCfg)
		if t := l.srvCfg.ReadHeaderTimeout.D(); t > 0 {
			_ = c.SetDeadline(time.Now().Add(t))
		}
		if err := tc.Handshake(); err != nil {
			l.metrics.Rejected("tls_handshake")
			l.log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		_ = c.SetDeadline(time.Time{})
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			l.toH2(tc)
			return
		}
		done()
		l.h1.ServeConn(tc)
	case l.h2 != nil:
		pc, isH2, err := sniffH2C(c, l.srvCfg.IdleTimeout.D())
		if err != nil {
			c.Close()
			return
		}
		if isH2 {
			l.toH2(pc)
			return
		}
		done()
		l.h1.ServeConn(pc)
	default:
		done()
		l.h1.ServeConn(c)
	}
}

func (l *Listener) toH2(c net.Conn) {
	if !l.h2queue.deliver(c) {
		c.Close() // retired meanwhile
	}
}

// LoadNewCerts loads the certificates a kept listener will use once the
// reload commits (nil for a plaintext listener).
func LoadNewCerts(cfg config.Listener) (*CertSet, error) {
	if cfg.TLS == nil {
		return nil, nil
	}
	return loadCerts(cfg.TLS)
}

// CommitCerts swaps the certificates of a running TLS listener in place.
func (l *Listener) CommitCerts(cfg config.Listener, cs *CertSet) {
	if cs != nil {
		l.certs.Store(cs)
	}
	l.cfg = cfg
}

// Shutdown stops taking connections and waits for requests in flight, up
// to ctx; what is left then is closed.
func (l *Listener) Shutdown(ctx context.Context) {
	l.queue.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := l.h1.Shutdown(ctx); err != nil {
			l.log.Warn("listener drain cut short", "err", err)
			l.h1.Close()
		}
	}()
	if l.h2 != nil {
		// Connections still in their handshake reach the HTTP/2 server
		// first (bounded by ReadHeaderTimeout, and by ctx).
		for l.pending.Load() > 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		l.h2queue.closeInto(nil)
		if err := l.h2.Shutdown(ctx); err != nil {
			l.log.Warn("listener drain cut short", "err", err)
			l.h2.Close()
		}
	}
	wg.Wait()
	l.entry.Close()
}

// Close stops everything at once.
func (l *Listener) Close() {
	l.queue.Close()
	l.h1.Close()
	if l.h2 != nil {
		l.h2queue.closeInto(nil)
		l.h2.Close()
	}
	l.entry.Close()
}

// Config is the listener's configuration.
func (l *Listener) Config() config.Listener { return l.cfg }

// Socket is the bound socket the listener serves on.
func (l *Listener) Socket() *Socket { return l.sock }

// Handler is the listener's request handler.
func (l *Listener) Handler() Handler { return l.entry }
