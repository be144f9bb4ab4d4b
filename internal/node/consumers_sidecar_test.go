package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// consumerApp is a sidecar's app that records the consumer headers of every
// request it gets and answers with them.
type consumerApp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newConsumerApp(t *testing.T) *consumerApp {
	a := &consumerApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.Header.Clone())
		a.mu.Unlock()
		fmt.Fprintf(w, "consumer=%q tier=%q caller=%q", r.Header.Get(config.HeaderConsumer),
			r.Header.Get(config.HeaderTier), r.Header.Get(dataplaneCaller))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *consumerApp) requests() []http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]http.Header(nil), a.seen...)
}

// client (API key) → edge (auth: acme or bob) → mTLS → payments sidecar
// with inbound.consumers {require, trusted: [edge], allow: [acme]} → app.
// The edge's consumer reaches the app; bob is refused 403 by the sidecar;
// another workload of the mesh (orders, allowed as a caller but not trusted
// for consumers) cannot pass a consumer on, neither directly over mTLS with
// a forged header nor through its own sidecar's outbound listener: 401,
// and the app never sees the forged header.
func TestSidecarConsumers(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID, paymentsID, ordersID := ca.ID(t, "/edge"), ca.ID(t, "/payments"), ca.ID(t, "/orders")
	acmeKey, acmeHash, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	bobKey, bobHash, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}

	app := newConsumerApp(t)
	payments := startNode(t, t, identityFiles(t, ca, paymentsID)+fmt.Sprintf(`
log: {access: stdout}
service: {name: payments, app: %q}
inbound:
  address: "127.0.0.1:0"
  allow: ["spiffe://example.org/edge", "spiffe://example.org/orders"]
  consumers: {require: true, trusted: ["spiffe://example.org/edge"], allow: [acme]}
`, addr(app.srv)), Options{Load: config.LoadSidecar})
	inbound := payments.node.Addr(config.SidecarInbound)

	e := startEdge(t, identityFiles(t, ca, edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
auth:
  api_keys: [{name: key, header: X-Api-Key}]
consumers:
  - {name: acme, tier: gold, api_keys: [%q]}
  - {name: bob, api_keys: [%q]}
tiers:
  - {name: default, limits: [{requests: 1000, window: 1m}]}
  - {name: gold, limits: [{requests: 1000, window: 1m}]}
routes:
  - {name: pay, match: {path: {prefix: /pay}}, upstream: payments, auth: {methods: [key]}}
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, acmeHash, bobHash, inbound))

	// acme, authenticated by the edge: the app sees it (and its tier), and
	// the sidecar's access log records it.
	code, _, body := get(t, nil, "GET", e.url("public")+"/pay", map[string]string{"X-Api-Key": acmeKey, config.HeaderConsumer: "bob"})
	want := fmt.Sprintf("consumer=%q tier=%q caller=%q", "acme", "gold", edgeID.String())
	if code != 200 || body != want {
		t.Fatalf("acme: %d %q, want %q", code, body, want)
	}
	waitAccessLine(t, payments, func(l string) bool {
		return strings.Contains(l, `"status":200`) && strings.Contains(l, `"consumer":"acme"`) && strings.Contains(l, `"tier":"gold"`)
	})

	// bob is a consumer of the edge, not allowed by payments: 403 from the
	// sidecar, the app never called.
	before := len(app.requests())
	code, _, body = get(t, nil, "GET", e.url("public")+"/pay", map[string]string{"X-Api-Key": bobKey})
	if code != 403 || !strings.Contains(body, "consumer bob may not call this service") {
		t.Fatalf("bob: %d %s", code, body)
	}
	waitAccessLine(t, payments, func(l string) bool {
		return strings.Contains(l, `"status":403`) && strings.Contains(l, `"consumer":"bob"`)
	})

	// orders calls payments directly over mTLS (it is an allowed caller)
	// with a forged consumer: not trusted, so no consumer: 401.
	orders := callerClient(ca.SVID(t, ordersID), ca, paymentsID)
	code, _, body = get(t, orders, "GET", "https://"+inbound+"/pay", map[string]string{config.HeaderConsumer: "acme", config.HeaderTier: "gold"})
	if code != 401 || !strings.Contains(body, "a verified consumer is required") {
		t.Fatalf("forged consumer from orders: %d %s", code, body)
	}

	// orders' app calls payments through orders' sidecar outbound with a
	// forged consumer: the outbound listener removes it, and payments does
	// not trust the orders sidecar for consumers anyway: 401.
	ordersSidecar := startSidecar(t, identityFiles(t, ca, ordersID)+fmt.Sprintf(`
log: {access: "off"}
service: {name: orders, app: "127.0.0.1:1"}
inbound: {address: "127.0.0.1:0"}
outbound: {address: "127.0.0.1:0"}
services:
  - {name: payments, spiffe_ids: ["spiffe://example.org/payments"], endpoints: [{address: %q}]}
`, inbound))
	code, _, body = get(t, nil, "GET", "http://"+ordersSidecar.Addr(config.SidecarOutbound)+"/pay",
		map[string]string{"Host": "payments", config.HeaderConsumer: "acme", dataplaneCaller: edgeID.String()})
	if code != 401 {
		t.Fatalf("forged consumer through the outbound listener: %d %s", code, body)
	}
	if got := app.requests(); len(got) != before {
		t.Fatalf("the app got %d refused requests: %v", len(got)-before, got[before:])
	}
	for _, h := range app.requests() {
		if c := h.Values(config.HeaderConsumer); len(c) != 1 || c[0] != "acme" {
			t.Errorf("the app saw consumer %q", c)
		}
	}
	if m := scrape(t, payments); !strings.Contains(m, `meshgate_authz_denied_total{listener="inbound"} 3`) {
		t.Errorf("refusals not counted:\n%s", grepLines(m, "meshgate_authz_denied_total"))
	}
}

// Without require, an untrusted caller's consumer is removed rather than
// refused: the app gets the request without it.
func TestSidecarConsumersUntrustedRemoved(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	paymentsID := ca.ID(t, "/payments")
	app := newConsumerApp(t)
	payments := startSidecar(t, identityFiles(t, ca, paymentsID)+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, app: %q}
inbound:
  address: "127.0.0.1:0"
  consumers: {trusted: ["spiffe://example.org/edge"]}
`, addr(app.srv)))
	orders := callerClient(ca.SVID(t, ca.ID(t, "/orders")), ca, paymentsID)
	code, _, body := get(t, orders, "GET", "https://"+payments.Addr(config.SidecarInbound)+"/pay",
		map[string]string{config.HeaderConsumer: "acme", config.HeaderTier: "gold"})
	want := fmt.Sprintf("consumer=%q tier=%q caller=%q", "", "", "spiffe://example.org/orders")
	if code != 200 || body != want {
		t.Fatalf("%d %q, want %q", code, body, want)
	}
	for _, h := range app.requests() {
		if _, ok := h[config.HeaderConsumer]; ok {
			t.Errorf("forged consumer reached the app: %v", h)
		}
		if _, ok := h[config.HeaderTier]; ok {
			t.Errorf("forged tier reached the app: %v", h)
		}
	}
}

// waitAccessLine waits for an access line of e that ok accepts.
func waitAccessLine(t *testing.T, e *edge, ok func(string) bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l := <-e.accessLines:
			if ok(l) {
				return
			}
		case <-timeout:
			t.Fatal("no such access line")
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
