package node

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// identityFiles writes an SVID for id and returns the YAML of an identity
// section that reads it.
func identityFiles(t *testing.T, ca *pkitest.CA, id spiffeid.ID) string {
	t.Helper()
	dir := t.TempDir()
	if err := pki.WriteSVID(dir, ca.SVID(t, id), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("identity: {files: {cert_file: %q, key_file: %q, bundle_file: %q}}\n",
		filepath.Join(dir, pki.SVIDCertFile), filepath.Join(dir, pki.SVIDKeyFile), filepath.Join(dir, pki.SVIDBundleFile))
}

// startSidecar runs a sidecar node from a sidecar file.
func startSidecar(t *testing.T, yaml string) *Node {
	t.Helper()
	return startNode(t, t, yaml, Options{Load: config.LoadSidecar}).node
}

// client → edge → payments sidecar → payments app → payments sidecar
// outbound (by Host, and by a dedicated port) → catalog sidecar → catalog
// app: every hop between meshgate processes is SPIFFE mTLS, and each app
// learns its caller's identity.
func TestMeshPath(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID, paymentsID, catalogID := ca.ID(t, "/edge"), ca.ID(t, "/payments"), ca.ID(t, "/catalog")

	catalogApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "catalog (called by %s)", r.Header.Get("X-Meshgate-Caller"))
	}))
	defer catalogApp.Close()
	catalogSidecar := startSidecar(t, identityFiles(t, ca, catalogID)+fmt.Sprintf(`
log: {access: "off"}
service: {name: catalog, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/payments"]}
`, addr(catalogApp)))

	var outbound, port atomic.Value
	paymentsApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		via := r.URL.Query().Get("via")
		req, _ := http.NewRequest("GET", "http://"+outbound.Load().(string)+"/items", nil)
		req.Host = "catalog" // http://catalog/items through the outbound listener
		if via == "port" {
			req, _ = http.NewRequest("GET", "http://"+port.Load().(string)+"/items", nil)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "payments (called by %s) -> %d %s", r.Header.Get("X-Meshgate-Caller"), resp.StatusCode, b)
	}))
	defer paymentsApp.Close()
	paymentsSidecar := startSidecar(t, identityFiles(t, ca, paymentsID)+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, subset: v1, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
outbound:
  address: "127.0.0.1:0"
  ports: [{service: catalog, address: "127.0.0.1:0"}]
services:
  - {name: catalog, spiffe_ids: ["spiffe://example.org/catalog"], endpoints: [{address: %q}]}
`, addr(paymentsApp), catalogSidecar.Addr(config.SidecarInbound)))
	outbound.Store(paymentsSidecar.Addr(config.SidecarOutbound))
	port.Store(paymentsSidecar.Addr("port-catalog"))

	e := startEdge(t, identityFiles(t, ca, edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: pay, match: {path: {prefix: /pay}}, upstream: payments}]
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, paymentsSidecar.Addr(config.SidecarInbound)))

	for _, via := range []string{"host", "port"} {
		status, _, body := get(t, nil, "GET", e.url("public")+"/pay?via="+via, nil)
		want := fmt.Sprintf("payments (called by %s) -> 200 catalog (called by %s)", edgeID, paymentsID)
		if status != 200 || body != want {
			t.Fatalf("via %s: %d %q\nwant %q", via, status, body, want)
		}
	}

	// The catalog sidecar refuses a caller not in its policy: the edge,
	// calling it directly, gets 403.
	e2 := startEdge(t, identityFiles(t, ca, edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: c, match: {path: {prefix: /}}, upstream: catalog}]
upstreams:
  - {name: catalog, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/catalog"]}}
`, catalogSidecar.Addr(config.SidecarInbound)))
	status, _, body := get(t, nil, "GET", e2.url("public")+"/items", nil)
	if status != 403 || !strings.Contains(body, "may not call") {
		t.Fatalf("edge → catalog: %d %s", status, body)
	}
}

// gRPC through the mesh: a grpc-go client → edge (h2c) → mTLS with ALPN h2
// → payments sidecar inbound → h2c → gRPC app; streaming included.
func TestMeshGRPC(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	g := startGRPCBackend(t, "g1")
	sc := startSidecar(t, identityFiles(t, ca, ca.ID(t, "/payments"))+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
`, g.addr))
	e := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge"))+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: grpc, match: {path: {prefix: /grpc.testing.TestService}}, upstream: payments}]
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, sc.Addr(config.SidecarInbound)))
	client := grpcDial(t, strings.TrimPrefix(e.url("public"), "http://"))
	grpcUnaryMetadata(t, client)
	grpcServerStreaming(t, client)
	grpcPingPong(t, client, "g1", 20)
}

// gRPC from an app through its sidecar's outbound listener (by Host, the
// gRPC authority) to another service's sidecar: h2c → mTLS h2 → h2c.
func TestMeshGRPCOutbound(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	g := startGRPCBackend(t, "g1")
	catalog := startSidecar(t, identityFiles(t, ca, ca.ID(t, "/catalog"))+fmt.Sprintf(`
log: {access: "off"}
service: {name: catalog, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/orders"]}
`, g.addr))
	orders := startSidecar(t, identityFiles(t, ca, ca.ID(t, "/orders"))+fmt.Sprintf(`
log: {access: "off"}
service: {name: orders, app: "127.0.0.1:1"}
inbound: {address: "127.0.0.1:0"}
outbound: {address: "127.0.0.1:0"}
services:
  - {name: catalog, spiffe_ids: ["spiffe://example.org/catalog"], endpoints: [{address: %q}]}
`, catalog.Addr(config.SidecarInbound)))
	client := grpcDial(t, orders.Addr(config.SidecarOutbound), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("catalog"))
	grpcServerStreaming(t, client)
	grpcPingPong(t, client, "g1", 10)
}
