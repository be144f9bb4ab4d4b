package transport

import (
	"errors"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Options configure New. SVIDs, Bundles and Authorize are required; every
// zero duration or count takes the default named beside it.
type Options struct {
	// BindAddr is the TCP listen address, "ip:port"; port 0 picks a free
	// port, reported by Addr and FinalAdvertiseAddr.
	BindAddr string
	// AdvertiseAddr is the "ip:port" other nodes reach this one at. Empty
	// means the bound address, which then must not be a wildcard such as
	// 0.0.0.0 (the transport will not guess an interface).
	AdvertiseAddr string

	// SVIDs is this node's identity, presented in both directions.
	SVIDs x509svid.Source
	// Bundles verify peers' SVIDs.
	Bundles x509bundle.Source
	// Authorize decides which peers may connect to us and which servers
	// we accept when we dial, for example pki.AllowTrustDomain(td).
	Authorize tlsconfig.Authorizer

	// Logger receives rejections and dial failures, rate-limited. Nil
	// discards.
	Logger *slog.Logger
	// LogInterval is the least time between two log lines about the same
	// kind of failure (1s); the suppressed count goes with the next line.
	LogInterval time.Duration

	// HandshakeTimeout bounds dial, TLS handshake and preamble, in both
	// directions (5s). Stream dials use the smaller of it and memberlist's
	// timeout.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write of packets to a peer (500ms); a peer
	// that does not drain its connection that fast loses packets.
	WriteTimeout time.Duration
	// IdleTimeout closes a packet connection unused this long, on either
	// side (2m).
	IdleTimeout time.Duration
	// QueueLen is the number of packets queued per destination while a
	// connection is dialled or written (128); beyond it packets are dropped.
	QueueLen int
	// MaxPendingHandshakes bounds inbound connections that have not yet
	// authenticated (64); more are closed at once and counted as rejected,
	// so junk connections cannot pile up goroutines.
	MaxPendingHandshakes int
}

func (o *Options) setDefaults() error {
	if o.SVIDs == nil || o.Bundles == nil {
		return errors.New("transport: SVIDs and Bundles are required")
	}
	if o.Authorize == nil {
		// pki would deny everyone; say so now rather than at the first join.
		return errors.New("transport: Authorize is required")
	}
	if o.BindAddr == "" {
		return errors.New("transport: BindAddr is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.LogInterval, time.Second)
	def(&o.HandshakeTimeout, 5*time.Second)
	def(&o.WriteTimeout, 500*time.Millisecond)
	def(&o.IdleTimeout, 2*time.Minute)
	if o.QueueLen <= 0 {
		o.QueueLen = 128
	}
	if o.MaxPendingHandshakes <= 0 {
		o.MaxPendingHandshakes = 64
	}
	return nil
}
