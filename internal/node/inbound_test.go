package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// inboundEdge is a node with an mTLS listener "in" (a sidecar's inbound)
// whose policy allows only /orders, in front of an echo backend and a gRPC
// backend.
func inboundEdge(t *testing.T, ca *pkitest.CA, selfID spiffeid.ID) *edge {
	t.Helper()
	a := echoBackend(t, "app")
	g := startGRPCBackend(t, "grpc-app")
	return startEdge(t, identityFiles(t, ca, selfID)+fmt.Sprintf(`
log: {access: "off"}
listeners:
  - name: in
    address: "127.0.0.1:0"
    mtls: {allow: ["spiffe://example.org/orders"]}
  - {name: plain, address: "127.0.0.1:0"}
routes:
  - {name: grpc, match: {path: {prefix: /grpc.testing.TestService}}, upstream: grpc-app}
  - {name: app, match: {path: {prefix: /}}, upstream: app}
upstreams:
  - {name: app, endpoints: [{address: %q}]}
  - {name: grpc-app, protocol: h2c, endpoints: [{address: %q}]}
`, addr(a), g.addr))
}

// callerClient is an HTTP client presenting svid and expecting the server
// to be serverID.
func callerClient(svid *x509svid.SVID, ca *pkitest.CA, serverID spiffeid.ID) *http.Client {
	src := pkitest.NewSource(svid, ca.Bundle())
	cfg := pki.ClientTLS(src, src, pki.AllowIDs(serverID))
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
}

func TestInboundMTLS(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	selfID, orders, other := ca.ID(t, "/payments"), ca.ID(t, "/orders"), ca.ID(t, "/catalog")
	e := inboundEdge(t, ca, selfID)
	in := "https://" + e.node.Addr("in")

	// An allowed caller reaches the app; the app learns who called, and a
	// client-supplied copy of the header is replaced.
	code, _, body := get(t, callerClient(ca.SVID(t, orders), ca, selfID), "GET", in+"/pay", map[string]string{dataplaneCaller: "spiffe://example.org/admin"})
	if code != 200 {
		t.Fatalf("allowed caller: %d %s", code, body)
	}
	if got := http.Header(decode(t, body).Headers).Get(dataplaneCaller); got != orders.String() {
		t.Fatalf("caller header at the app = %q", got)
	}

	// A caller of the trust domain that the policy does not list: 403.
	code, _, body = get(t, callerClient(ca.SVID(t, other), ca, selfID), "GET", in+"/pay", nil)
	if code != 403 || !strings.Contains(body, other.String()+" may not call "+selfID.String()) {
		t.Fatalf("denied caller: %d %s", code, body)
	}
	if !strings.Contains(scrape(t, e), `meshgate_authz_denied_total{listener="in"} 1`) {
		t.Fatal("denial not counted")
	}

	// The same over gRPC: PERMISSION_DENIED.
	src := pkitest.NewSource(ca.SVID(t, other), ca.Bundle())
	cc, err := grpc.NewClient("passthrough:///"+e.node.Addr("in"), grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(src, src, pki.AllowIDs(selfID)))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pb.NewTestServiceClient(cc).EmptyCall(ctx, &pb.Empty{})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("gRPC denied caller: %v", err)
	}

	// A plain listener never passes a client's caller header on.
	_, _, body = get(t, nil, "GET", "http://"+e.node.Addr("plain")+"/x", map[string]string{dataplaneCaller: orders.String()})
	if got := http.Header(decode(t, body).Headers).Get(dataplaneCaller); got != "" {
		t.Fatalf("forged caller header passed on: %q", got)
	}
}

// Each of these is refused in the handshake: the request never reaches
// routing.
func TestInboundMTLSRejections(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	selfID, orders := ca.ID(t, "/payments"), ca.ID(t, "/orders")
	e := inboundEdge(t, ca, selfID)
	in := e.node.Addr("in")
	otherTD := pkitest.NewCA(t, spiffeid.RequireTrustDomainFromString("other.org"))
	untrusted := pkitest.OtherCA(t, td)

	cases := map[string]*http.Client{
		"expired SVID":                       callerClient(ca.SVID(t, orders, pkitest.Expired()), ca, selfID),
		"not-yet-valid SVID":                 callerClient(ca.SVID(t, orders, pkitest.NotYetValid()), ca, selfID),
		"other trust domain":                 callerClient(otherTD.SVID(t, otherTD.ID(t, "/orders")), ca, selfID),
		"untrusted CA":                       callerClient(untrusted.SVID(t, orders), ca, selfID),
		"unexpected server ID (client side)": callerClient(ca.SVID(t, orders), ca, ca.ID(t, "/not-payments")),
		"TLS without a client certificate":   {Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			resp, err := c.Get("https://" + in + "/pay")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("accepted: %d %s", resp.StatusCode, b)
			}
		})
	}
	t.Run("plaintext client", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + in + "/pay")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("plaintext request served")
			}
		}
	})
}

const dataplaneCaller = "X-Meshgate-Caller"
