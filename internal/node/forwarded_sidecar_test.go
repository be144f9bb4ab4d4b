package node

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// client (plain http) → edge → mTLS → sidecar → app: the app sees the
// client's scheme and address as the edge saw them, with the edge
// appended, and the sidecar logs the client; a listener that believes
// only some callers' forwarding headers replaces those of the others.
func TestSidecarKeepsAVerifiedPeersForwardingHeaders(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID, paymentsID, ordersID := ca.ID(t, "/edge"), ca.ID(t, "/payments"), ca.ID(t, "/orders")
	app := newConsumerApp(t)
	start := func(forwardedFrom string) (*edge, string) {
		s := startNode(t, t, identityFiles(t, ca, paymentsID)+fmt.Sprintf(`
log: {access: stdout}
service: {name: payments, app: %q}
inbound:
  address: "127.0.0.1:0"
%s`, addr(app.srv), forwardedFrom), Options{Load: config.LoadSidecar})
		return s, s.node.Addr(config.SidecarInbound)
	}
	payments, inbound := start("")
	e := startEdge(t, identityFiles(t, ca, edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: pay, match: {path: {prefix: /pay}}, upstream: payments}]
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, inbound))

	last := func() http.Header {
		t.Helper()
		got := app.requests()
		if len(got) == 0 {
			t.Fatal("the app got nothing")
		}
		return got[len(got)-1]
	}
	// The client comes from 127.0.0.3 (the edge from 127.0.0.1), and
	// forges an X-Forwarded-For the edge does not believe.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).DialContext}}
	code, _, body := get(t, client, "GET", e.url("public")+"/pay", map[string]string{"X-Forwarded-For": "203.0.113.9"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	h := last()
	if xff := h.Get("X-Forwarded-For"); xff != "127.0.0.3, 127.0.0.1" {
		t.Errorf("the app got X-Forwarded-For %q, want the client, then the edge", xff)
	}
	if proto := h.Get("X-Forwarded-Proto"); proto != "http" {
		t.Errorf("the app got X-Forwarded-Proto %q, want the client's http", proto)
	}
	waitAccessLine(t, payments, func(l string) bool { return strings.Contains(l, `"client_ip":"127.0.0.3"`) })

	// Only the edge is believed: orders' own headers are replaced.
	_, inbound2 := start(`  forwarded_from: ["spiffe://example.org/edge"]` + "\n")
	orders := callerClient(ca.SVID(t, ordersID), ca, paymentsID)
	if code, _, body = get(t, orders, "GET", "https://"+inbound2+"/pay", map[string]string{"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "http"}); code != 200 {
		t.Fatalf("orders: %d %s", code, body)
	}
	h = last()
	if xff := h.Get("X-Forwarded-For"); xff != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("an unbelieved caller's headers reached the app: %q %q", xff, h.Get("X-Forwarded-Proto"))
	}
}
