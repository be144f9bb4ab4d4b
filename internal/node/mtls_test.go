package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// mtlsBackend is an HTTP server behind SPIFFE mTLS that answers with the
// caller's SPIFFE ID, and counts full handshakes.
type mtlsBackend struct {
	addr       string
	handshakes atomic.Int64
}

func startMTLSBackend(t *testing.T, ca *pkitest.CA, id spiffeid.ID, allow tlsconfig.Authorizer, opts ...func(*tls.Config)) *mtlsBackend {
	t.Helper()
	src := pkitest.NewSource(ca.SVID(t, id), ca.Bundle())
	cfg := pki.ServerTLS(src, src, allow)
	for _, o := range opts {
		o(cfg)
	}
	b := &mtlsBackend{}
	cfg.NextProtos = []string{"http/1.1"}
	inner := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			b.handshakes.Add(1)
		}
		return inner(cs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := pki.PeerID(*r.TLS)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "hello %s", caller)
	})}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return b
}

func mtlsEdge(t *testing.T, ca *pkitest.CA, edgeID spiffeid.ID, backend string, expect string) *edge {
	t.Helper()
	return startEdge(t, identityFiles(t, ca, edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: svc, retry: {attempts: 1}}]
upstreams:
  - name: svc
    endpoints: [{address: %q}]
    tls: {spiffe_ids: [%q]}
`, backend, expect))
}

func TestMTLSToUpstream(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID, svcID := ca.ID(t, "/edge"), ca.ID(t, "/ns/prod/sa/payments")
	b := startMTLSBackend(t, ca, svcID, pki.AllowIDs(edgeID))
	e := mtlsEdge(t, ca, edgeID, b.addr, "spiffe://example.org/ns/*/sa/payments")
	for i := 0; i < 20; i++ {
		status, _, body := get(t, nil, "GET", e.url("public")+"/x", nil)
		if status != 200 || body != "hello "+edgeID.String() {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	// Connections are pooled: sequential requests share one handshake.
	if n := b.handshakes.Load(); n != 1 {
		t.Fatalf("%d full handshakes for 20 sequential requests", n)
	}
}

func TestMTLSRejections(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID, svcID := ca.ID(t, "/edge"), ca.ID(t, "/payments")
	t.Run("unexpected server ID", func(t *testing.T) {
		b := startMTLSBackend(t, ca, ca.ID(t, "/impostor"), pki.AllowIDs(edgeID))
		e := mtlsEdge(t, ca, edgeID, b.addr, svcID.String())
		status, _, body := get(t, nil, "GET", e.url("public")+"/x", nil)
		if status != 502 || !strings.Contains(body, "connect failed") {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("edge not allowed by the upstream", func(t *testing.T) {
		b := startMTLSBackend(t, ca, svcID, pki.AllowIDs(ca.ID(t, "/someone-else")))
		e := mtlsEdge(t, ca, edgeID, b.addr, svcID.String())
		status, _, _ := get(t, nil, "GET", e.url("public")+"/x", nil)
		if status != 502 {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("upstream from an untrusted CA", func(t *testing.T) {
		other := pkitest.OtherCA(t, td)
		b := startMTLSBackend(t, other, svcID, pki.AllowIDs(edgeID))
		e := mtlsEdge(t, ca, edgeID, b.addr, svcID.String())
		status, _, _ := get(t, nil, "GET", e.url("public")+"/x", nil)
		if status != 502 {
			t.Fatalf("status %d", status)
		}
	})
}

// A rotated SVID is presented on the next new connection; no restart.
func TestMTLSRotation(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID, svcID := ca.ID(t, "/edge"), ca.ID(t, "/payments")
	// A resumed session keeps the identity it was made with; to see the
	// rotated SVID on the wire the backend makes every handshake full.
	b := startMTLSBackend(t, ca, svcID, pki.AllowIDs(edgeID), func(c *tls.Config) { c.SessionTicketsDisabled = true })
	src := pkitest.NewSource(ca.SVID(t, edgeID), ca.Bundle())
	// The files make the config valid; the node uses src, which the test
	// rotates.
	e := startNode(t, t, identityFiles(t, ca, edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: svc}]
upstreams:
  - {name: svc, max_idle_per_endpoint: 1, endpoints: [{address: %q}], tls: {spiffe_ids: [%q]}}
`, b.addr, svcID), Options{Identity: src})
	if status, _, _ := get(t, nil, "GET", e.url("public")+"/x", nil); status != 200 {
		t.Fatalf("status %d", status)
	}
	// An SVID for an ID the backend does not allow: once rotated in, new
	// connections carry it (and are refused), which proves it is used.
	src.SetSVID(ca.SVID(t, ca.ID(t, "/rotated-out")))
	e.node.clusters["svc"].cluster.Close() // drop pooled connections
	if status, _, _ := get(t, nil, "GET", e.url("public")+"/x", nil); status != 502 {
		t.Fatalf("after rotation to a refused ID: %d", status)
	}
	src.SetSVID(ca.SVID(t, edgeID))
	if status, _, body := get(t, nil, "GET", e.url("public")+"/x", nil); status != 200 {
		t.Fatalf("after rotating back: %d %s", status, body)
	}
}
