package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ClientTLS dials an upstream's endpoints with SPIFFE mTLS. The TLS configs
// come from pki.ClientTLS, whose callbacks fetch the current SVID and bundle
// at each handshake, so rotation needs nothing here. Connections are pooled
// by the cluster, so a request does not pay for a handshake.
//
// Sessions are not resumed: go-spiffe verifies peers itself, so crypto/tls
// would offer a session ticket even after the server's SVID in it expired
// (short TTLs make that minutes away), and the re-verification of resumed
// sessions would then fail the handshake. A pooled connection costs one full
// handshake per connection instead.
type ClientTLS struct {
	h1, h2 *tls.Config
	dialer *net.Dialer
	health *http.Transport
}

// NewClientTLS wraps base (from pki.ClientTLS) for HTTP/1.1 and HTTP/2.
func NewClientTLS(base *tls.Config, connectTimeout time.Duration) *ClientTLS {
	c := &ClientTLS{dialer: &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}}
	c.h1 = base.Clone()
	c.h1.NextProtos = []string{"http/1.1"}
	c.h2 = base.Clone()
	c.h2.NextProtos = []string{"h2"}
	c.health = &http.Transport{DialContext: c.dialH1, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}
	return c
}

// dial opens a connection and completes the handshake. A failed handshake
// is reported as a dial error: nothing was sent, so it is a connect failure
// (safe to retry on another endpoint).
func (c *ClientTLS) dial(ctx context.Context, cfg *tls.Config, addr string) (net.Conn, error) {
	raw, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	// The handshake is part of connecting: a hung host completes TCP in its
	// kernel and never answers, and must fail as a connect failure within
	// the connect timeout (then retried elsewhere and ejected), not hold the
	// request until its deadline.
	hctx := ctx
	if t := c.dialer.Timeout; t > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raw.RemoteAddr(), Err: fmt.Errorf("mTLS handshake: %w", err)}
	}
	return tc, nil
}

func (c *ClientTLS) dialH1(ctx context.Context, _, addr string) (net.Conn, error) {
	return c.dial(ctx, c.h1, addr)
}

func (c *ClientTLS) dialH2(ctx context.Context, _, addr string) (net.Conn, error) {
	return c.dial(ctx, c.h2, addr)
}

// HealthTransport carries active health checks over the same mTLS (nil-safe:
// a nil *ClientTLS gives nil, the upstream's own plain transport).
func (c *ClientTLS) HealthTransport() http.RoundTripper {
	if c == nil {
		return nil
	}
	return c.health
}
