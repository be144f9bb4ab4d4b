package proxy

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/upstream"
)

// Cluster is an upstream together with the connection pools that reach its
// endpoints. It outlives a configuration when the upstream's config is
// unchanged, so that pools and endpoint state survive reloads.
type Cluster struct {
	Upstream *upstream.Upstream
	protocol string
	h1       *http.Transport
	h2c      *http.Transport // HTTP/2: cleartext, or over mTLS when tls is set
	fast     *h1Pool
	tls      *ClientTLS
}

// NewCluster builds the pools of an upstream; with ctls every connection is
// SPIFFE mTLS (HTTP/2 is then negotiated by ALPN rather than h2c).
func NewCluster(cfg config.Upstream, up *upstream.Upstream, ctls *ClientTLS) *Cluster {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	base := func() *http.Transport {
		return &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: cfg.MaxIdlePerEndpoint,
			MaxIdleConns:        0, // bounded per host above
			MaxConnsPerHost:     cfg.MaxConnections,
			IdleConnTimeout:     cfg.IdleTimeout.D(),
			// The proxy forwards what the client sent; it must not add or
			// strip compression on its own.
			DisableCompression:    true,
			ResponseHeaderTimeout: 0, // per-try timeout is enforced by the forwarder
			ExpectContinueTimeout: time.Second,
			WriteBufferSize:       32 << 10,
			ReadBufferSize:        32 << 10,
		}
	}
	c := &Cluster{Upstream: up, protocol: cfg.Protocol, tls: ctls}
	c.h1 = base()
	c.h2c = base()
	// With mTLS the dial functions hand the transports connections that
	// are already TLS with ALPN settled; the transports then speak plain
	// HTTP/1.1 or prior-knowledge HTTP/2 over them.
	c.h2c.Protocols = new(http.Protocols)
	c.h2c.Protocols.SetUnencryptedHTTP2(true)
	c.fast = newH1Pool(dialer, cfg.MaxIdlePerEndpoint, cfg.IdleTimeout.D())
	if ctls != nil {
		c.h1.DialContext = ctls.dialH1
		c.h2c.DialContext = ctls.dialH2
		c.fast.dialTLS = ctls.dial
		c.fast.tlsConfig = ctls.h1
	}
	return c
}

// fastFor reports whether a request takes the fast HTTP/1.1 pool: bodiless
// and not gRPC (which needs HTTP/2).
func (c *Cluster) fastFor(r *http.Request) bool {
	return !c.wantsH2(r) && c.fast.canServe(r)
}

func (c *Cluster) wantsH2(r *http.Request) bool {
	return c.protocol == "h2c" || (c.protocol == "auto" && isGRPC(r))
}

// transportFor picks the http.Transport for a request the fast pool does
// not take.
func (c *Cluster) transportFor(r *http.Request) http.RoundTripper {
	if c.wantsH2(r) {
		return c.h2c
	}
	return c.h1
}

// CloseIdle closes idle pooled connections; the cluster stays usable and
// dials afresh (with the current SVID, when mTLS).
func (c *Cluster) CloseIdle() {
	c.h1.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
	c.fast.closeIdle(false)
}

// Close releases idle connections; requests in flight keep theirs, so a
// stream opened before a reload finishes on the old cluster.
func (c *Cluster) Close() {
	c.Upstream.Close()
	c.h1.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
	c.fast.closeIdle(true)
	if c.tls != nil {
		c.tls.health.CloseIdleConnections()
	}
}

func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc")
}
