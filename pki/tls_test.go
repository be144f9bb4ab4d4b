package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// result is what both ends of one real handshake over loopback saw.
type result struct {
	serverErr, clientErr error
	server, client       tls.ConnectionState
}

// dial runs one connection over loopback TCP: the server does a TLS
// handshake and writes "ok"; client runs the client side (TLS or not) and
// returns its error. Both sides have deadlines, so a test never hangs.
func dial(t *testing.T, serverCfg *tls.Config, client func(net.Conn) (tls.ConnectionState, error)) result {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type srvResult struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan srvResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- srvResult{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, serverCfg)
		if err := tc.Handshake(); err != nil {
			done <- srvResult{err: err}
			return
		}
		_, err = tc.Write([]byte("ok"))
		done <- srvResult{err: err, state: tc.ConnectionState()}
		// Wait for the client to finish reading (it closes).
		_, _ = io.Copy(io.Discard, tc)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	state, cerr := client(c)
	_ = c.Close()
	s := <-done
	return result{serverErr: s.err, clientErr: cerr, server: s.state, client: state}
}

// tlsClient handshakes with cfg and reads the server's "ok": in TLS 1.3 the
// server's verdict on the client certificate arrives only with that read.
func tlsClient(cfg *tls.Config) func(net.Conn) (tls.ConnectionState, error) {
	return func(c net.Conn) (tls.ConnectionState, error) {
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return tls.ConnectionState{}, err
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(tc, buf); err != nil {
			return tc.ConnectionState(), err
		}
		if string(buf) != "ok" {
			return tc.ConnectionState(), errors.New("bad greeting " + string(buf))
		}
		return tc.ConnectionState(), nil
	}
}

// mesh is a trust domain with an edge (client) and a payments sidecar
// (server).
type mesh struct {
	ca                 *pkitest.CA
	serverSVID, client *pkitest.Source
}

func newMesh(t *testing.T) *mesh {
	ca := pkitest.NewCA(t, td, pkitest.WithIntermediate())
	return &mesh{
		ca:         ca,
		serverSVID: pkitest.NewSource(ca.SVID(t, payID), ca.Bundle()),
		client:     pkitest.NewSource(ca.SVID(t, edgeID), ca.Bundle()),
	}
}

func (m *mesh) serverCfg(authorize tlsconfig.Authorizer) *tls.Config {
	return pki.ServerTLS(m.serverSVID, m.serverSVID, authorize)
}

func (m *mesh) clientCfg(expect tlsconfig.Authorizer) *tls.Config {
	return pki.ClientTLS(m.client, m.client, expect)
}

func TestMTLSSuccess(t *testing.T) {
	m := newMesh(t)
	r := dial(t, m.serverCfg(pki.AllowIDs(edgeID)), tlsClient(m.clientCfg(pki.AllowIDs(payID))))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("server: %v; client: %v", r.serverErr, r.clientErr)
	}
	if got, err := pki.PeerID(r.server); err != nil || got != edgeID {
		t.Errorf("server sees peer %v (%v), want %v", got, err, edgeID)
	}
	if got, err := pki.PeerID(r.client); err != nil || got != payID {
		t.Errorf("client sees peer %v (%v), want %v", got, err, payID)
	}
	if r.client.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN %q, want h2", r.client.NegotiatedProtocol)
	}
	if r.client.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x", r.client.Version)
	}
}

func TestMTLSHTTP1ALPN(t *testing.T) {
	m := newMesh(t)
	cfg := m.clientCfg(pki.AllowIDs(payID))
	cfg.NextProtos = []string{"http/1.1"}
	r := dial(t, m.serverCfg(pki.AllowIDs(edgeID)), tlsClient(cfg))
	if r.serverErr != nil || r.clientErr != nil || r.client.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("server: %v; client: %v; ALPN %q", r.serverErr, r.clientErr, r.client.NegotiatedProtocol)
	}
}

// TestMTLSRejections: every way a handshake must fail, each failing on the
// side that should notice, for the expected reason.
func TestMTLSRejections(t *testing.T) {
	otherCA := pkitest.NewCA(t, otherTD)
	untrusted := pkitest.OtherCA(t, td)

	tests := []struct {
		name string
		// setup changes the mesh and returns the configs to use
		setup func(t *testing.T, m *mesh) (server, client *tls.Config)
		// which side must fail, and a fragment of its error
		serverWant, clientWant string
		notAuthorized          bool // the failing side's error wraps pki.ErrNotAuthorized
	}{
		{
			name: "expired client SVID",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.client.SetSVID(m.ca.SVID(t, edgeID, pkitest.Expired()))
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant: "expired or is not yet valid: current time",
		},
		{
			name: "not yet valid client SVID",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.client.SetSVID(m.ca.SVID(t, edgeID, pkitest.NotYetValid()))
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant: "is before",
		},
		{
			name: "expired server SVID",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.serverSVID.SetSVID(m.ca.SVID(t, payID, pkitest.Expired()))
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(payID))
			},
			clientWant: "expired or is not yet valid",
		},
		{
			name: "client of another trust domain, bundle unknown",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.client.SetSVID(otherCA.SVID(t, spiffeid.RequireFromPath(otherTD, "/edge")))
				m.client.SetBundles(m.ca.Bundle(), otherCA.Bundle())
				return m.serverCfg(pki.AllowTrustDomain(td)), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant: "could not get X509 bundle",
		},
		{
			name: "client of another trust domain, federated but not allowed",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.client.SetSVID(otherCA.SVID(t, spiffeid.RequireFromPath(otherTD, "/edge")))
				m.client.SetBundles(m.ca.Bundle(), otherCA.Bundle())
				m.serverSVID.SetBundles(m.ca.Bundle(), otherCA.Bundle())
				return m.serverCfg(pki.AllowTrustDomain(td)), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant:    "not in trust domain example.org",
			notAuthorized: true,
		},
		{
			name: "client SVID from an untrusted CA",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.client.SetSVID(untrusted.SVID(t, edgeID))
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant: "unknown authority",
		},
		{
			name: "server SVID from an untrusted CA",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.serverSVID.SetSVID(untrusted.SVID(t, payID))
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(payID))
			},
			clientWant: "unknown authority",
		},
		{
			name: "unexpected server ID",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(ordID))
			},
			clientWant:    "spiffe://example.org/ns/prod/sa/payments",
			notAuthorized: true,
		},
		{
			name: "caller not in the allow list",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				m.client.SetSVID(m.ca.SVID(t, ordID))
				return m.serverCfg(pki.AllowIDs(edgeID)), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant:    "spiffe://example.org/ns/prod/sa/orders",
			notAuthorized: true,
		},
		{
			name: "caller matches no pattern",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				a, err := pki.AllowPatterns("spiffe://example.org/ns/*/sa/orders")
				if err != nil {
					t.Fatal(err)
				}
				return m.serverCfg(a), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant:    "matches no allowed pattern",
			notAuthorized: true,
		},
		{
			name: "nil authorizer denies",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				return m.serverCfg(nil), m.clientCfg(pki.AllowIDs(payID))
			},
			serverWant:    "no authorizer",
			notAuthorized: true,
		},
		{
			name: "plain TLS client without certificate",
			setup: func(t *testing.T, m *mesh) (*tls.Config, *tls.Config) {
				return m.serverCfg(pki.AllowIDs(edgeID)), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
			},
			serverWant: "client didn't provide a certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMesh(t)
			scfg, ccfg := tt.setup(t, m)
			r := dial(t, scfg, tlsClient(ccfg))
			if r.clientErr == nil && r.serverErr == nil {
				t.Fatal("handshake succeeded")
			}
			// The rejecting side names the reason; the other side fails too.
			if r.clientErr == nil || r.serverErr == nil {
				t.Errorf("both sides must fail: server %v; client %v", r.serverErr, r.clientErr)
			}
			check := func(side string, err error, want string) {
				if want == "" {
					return
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s error %v, want it to mention %q", side, err, want)
				}
				if tt.notAuthorized && !errors.Is(err, pki.ErrNotAuthorized) {
					t.Errorf("%s error %v does not wrap ErrNotAuthorized", side, err)
				}
			}
			check("server", r.serverErr, tt.serverWant)
			check("client", r.clientErr, tt.clientWant)
		})
	}
}

func TestMTLSPlaintextClient(t *testing.T) {
	m := newMesh(t)
	r := dial(t, m.serverCfg(pki.AllowIDs(edgeID)), func(c net.Conn) (tls.ConnectionState, error) {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: payments\r\n\r\n"); err != nil {
			return tls.ConnectionState{}, err
		}
		b, err := io.ReadAll(c)
		if err == nil && strings.Contains(string(b), "ok") {
			return tls.ConnectionState{}, nil
		}
		return tls.ConnectionState{}, errors.New("rejected")
	})
	if r.serverErr == nil {
		t.Fatal("server accepted a plaintext client")
	}
	if !strings.Contains(r.serverErr.Error(), "first record does not look like a TLS handshake") {
		t.Errorf("server error %v", r.serverErr)
	}
	if r.clientErr == nil {
		t.Fatal("plaintext client got through")
	}
}

// TestRotationWithoutRebuild: a new SVID in the source is presented on the
// next handshake by the same tls.Config.
func TestRotationWithoutRebuild(t *testing.T) {
	m := newMesh(t)
	scfg := m.serverCfg(pki.AllowIDs(edgeID))
	ccfg := m.clientCfg(pki.AllowIDs(payID))
	serial := func() string {
		r := dial(t, scfg, tlsClient(ccfg))
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("server: %v; client: %v", r.serverErr, r.clientErr)
		}
		return r.client.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	next := m.ca.SVID(t, payID)
	m.serverSVID.SetSVID(next)
	if got := serial(); got == first || got != next.Certificates[0].SerialNumber.String() {
		t.Fatalf("served serial %s after rotation; first %s, new %s", got, first, next.Certificates[0].SerialNumber)
	}
}

// TestResumptionIsReverified: a resumed TLS session skips
// VerifyPeerCertificate; the configs must still check the peer against the
// current bundle and policy.
func TestResumptionIsReverified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, m *mesh, deny *atomic.Bool)
	}{
		{"server stops trusting the client's CA", func(t *testing.T, m *mesh, _ *atomic.Bool) {
			m.serverSVID.SetBundles(pkitest.OtherCA(t, td).Bundle())
		}},
		{"client stops trusting the server's CA", func(t *testing.T, m *mesh, _ *atomic.Bool) {
			m.client.SetBundles(pkitest.OtherCA(t, td).Bundle())
		}},
		{"server policy now denies the client", func(t *testing.T, m *mesh, deny *atomic.Bool) {
			deny.Store(true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh(t)
			var deny atomic.Bool
			allow := pki.AllowIDs(edgeID)
			scfg := m.serverCfg(func(id spiffeid.ID, chains [][]*x509.Certificate) error {
				if deny.Load() {
					return pki.ErrNotAuthorized
				}
				return allow(id, chains)
			})
			ccfg := m.clientCfg(pki.AllowIDs(payID))
			ccfg.ServerName = "payments"
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

			r := dial(t, scfg, tlsClient(ccfg))
			if r.serverErr != nil || r.clientErr != nil || r.client.DidResume {
				t.Fatalf("first: server %v; client %v; resumed %v", r.serverErr, r.clientErr, r.client.DidResume)
			}
			// Resumption really happens (else this test proves nothing).
			r = dial(t, scfg, tlsClient(ccfg))
			if r.serverErr != nil || r.clientErr != nil || !r.client.DidResume {
				t.Fatalf("second: server %v; client %v; resumed %v", r.serverErr, r.clientErr, r.client.DidResume)
			}
			if id, err := pki.PeerID(r.server); err != nil || id != edgeID {
				t.Fatalf("PeerID on resumed connection: %v %v", id, err)
			}
			tc.change(t, m, &deny)
			r = dial(t, scfg, tlsClient(ccfg))
			if r.serverErr == nil && r.clientErr == nil {
				t.Fatal("resumed session bypassed verification")
			}
		})
	}
}

func TestPeerIDWithoutCertificate(t *testing.T) {
	if _, err := pki.PeerID(tls.ConnectionState{}); err == nil {
		t.Fatal("PeerID of an anonymous peer")
	}
}

func TestAuthorizers(t *testing.T) {
	other := spiffeid.RequireFromPath(otherTD, "/edge")
	if err := pki.AllowIDs(edgeID, ordID)(ordID, nil); err != nil {
		t.Error(err)
	}
	if err := pki.AllowIDs(edgeID)(payID, nil); !errors.Is(err, pki.ErrNotAuthorized) {
		t.Error(err)
	}
	if err := pki.AllowIDs()(edgeID, nil); err == nil {
		t.Error("empty AllowIDs allowed")
	}
	if err := pki.AllowTrustDomain(td)(payID, nil); err != nil {
		t.Error(err)
	}
	if err := pki.AllowTrustDomain(td)(other, nil); !errors.Is(err, pki.ErrNotAuthorized) {
		t.Error(err)
	}
	a, err := pki.AllowPatterns()
	if err != nil || a(edgeID, nil) == nil {
		t.Error("empty AllowPatterns allowed")
	}
	if _, err := pki.AllowPatterns("spiffe://example.org/edge", "spiffe://example.org/a*"); err == nil {
		t.Error("AllowPatterns accepted a bad pattern")
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{
			pattern: "spiffe://example.org/edge",
			match:   []string{"spiffe://example.org/edge"},
			noMatch: []string{"spiffe://example.org/edge/x", "spiffe://example.org/edgy", "spiffe://other.org/edge", "spiffe://example.org", "spiffe://example.org/Edge"},
		},
		{
			pattern: "spiffe://example.org/ns/*/sa/orders",
			match:   []string{"spiffe://example.org/ns/prod/sa/orders", "spiffe://example.org/ns/dev/sa/orders"},
			noMatch: []string{"spiffe://example.org/ns/sa/orders", "spiffe://example.org/ns/a/b/sa/orders", "spiffe://example.org/ns/prod/sa/payments", "spiffe://example.org/ns/prod/sa/orders/x", "spiffe://other.org/ns/prod/sa/orders"},
		},
		{
			pattern: "spiffe://example.org/ns/prod/*",
			match:   []string{"spiffe://example.org/ns/prod/a", "spiffe://example.org/ns/prod/sa/orders"},
			noMatch: []string{"spiffe://example.org/ns/prod", "spiffe://example.org/ns/production/a", "spiffe://example.org/ns/dev/a"},
		},
		{
			pattern: "spiffe://example.org/*",
			match:   []string{"spiffe://example.org/a", "spiffe://example.org/a/b/c"},
			noMatch: []string{"spiffe://example.org", "spiffe://other.org/a"},
		},
		{
			pattern: "spiffe://example.org/*/sa/*",
			match:   []string{"spiffe://example.org/x/sa/y", "spiffe://example.org/x/sa/y/z"},
			noMatch: []string{"spiffe://example.org/sa/y", "spiffe://example.org/x/sa"},
		},
	}
	for _, tt := range tests {
		p, err := pki.ParsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		if p.String() != tt.pattern {
			t.Errorf("String() %q, want %q", p.String(), tt.pattern)
		}
		for _, s := range tt.match {
			if !p.Matches(spiffeid.RequireFromString(s)) {
				t.Errorf("%s should match %s", tt.pattern, s)
			}
		}
		for _, s := range tt.noMatch {
			if p.Matches(spiffeid.RequireFromString(s)) {
				t.Errorf("%s should not match %s", tt.pattern, s)
			}
		}
	}
	if (pki.Pattern{}).Matches(edgeID) {
		t.Error("zero Pattern matched")
	}
}

func TestParsePatternErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"example.org/edge",
		"http://example.org/edge",
		"SPIFFE://example.org/edge",
		"spiffe://example.org",
		"spiffe://example.org/",
		"spiffe:///edge",
		"spiffe://*.example.org/edge",
		"spiffe://*/edge",
		"spiffe://Example.org/edge",
		"spiffe://example.org/edge/",
		"spiffe://example.org//edge",
		"spiffe://example.org/a*",
		"spiffe://example.org/**",
		"spiffe://example.org/a/../b",
		"spiffe://example.org/a/./b",
		"spiffe://example.org/a b",
		"spiffe://example.org/edge?x=1",
		"spiffe://example.org/edge#f",
		"spiffe://user@example.org/edge",
		"spiffe://example.org:8080/edge",
	} {
		if p, err := pki.ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q) = %v, want error", s, p)
		}
	}
}
