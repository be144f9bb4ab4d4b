package node

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/tracetest"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// One trace from the client to the last service, stored in a real Jaeger:
// client → edge → sidecar A → service A → sidecar A outbound → sidecar B →
// service B. Every meshgate hop exports its spans over OTLP/gRPC; the apps
// only pass traceparent on, as any app in a mesh must.
func TestOneTraceInJaeger(t *testing.T) {
	j := tracetest.StartJaeger(t)
	tracing := fmt.Sprintf("tracing: {endpoint: %q, insecure: true, sampling: {ratio: 1}}\n", j.OTLPEndpoint())
	ca := pkitest.NewCA(t, td)
	edgeID, aID, bID := ca.ID(t, "/edge"), ca.ID(t, "/svc-a"), ca.ID(t, "/svc-b")

	appB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "b")
	}))
	defer appB.Close()
	sidecarB := startSidecar(t, identityFiles(t, ca, bID)+tracing+fmt.Sprintf(`
log: {access: "off"}
service: {name: svc-b, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/svc-a"]}
`, addr(appB)))

	var outbound atomic.Value
	appA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest("GET", "http://"+outbound.Load().(string)+"/b", nil)
		req.Host = "svc-b"
		req.Header.Set("Traceparent", r.Header.Get("Traceparent")) // the app's part of propagation
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "a -> %s", b)
	}))
	defer appA.Close()
	sidecarA := startSidecar(t, identityFiles(t, ca, aID)+tracing+fmt.Sprintf(`
log: {access: "off"}
service: {name: svc-a, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
outbound: {address: "127.0.0.1:0"}
services:
  - {name: svc-b, spiffe_ids: ["spiffe://example.org/svc-b"], endpoints: [{address: %q}]}
`, addr(appA), sidecarB.Addr(config.SidecarInbound)))
	outbound.Store(sidecarA.Addr(config.SidecarOutbound))

	e := startEdge(t, identityFiles(t, ca, edgeID)+tracing+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: a, match: {path: {template: "/a/{id}"}}, upstream: svc-a}]
upstreams:
  - {name: svc-a, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/svc-a"]}}
`, sidecarA.Addr(config.SidecarInbound)))

	// The client starts the trace: its own span is the root.
	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	status, _, body := get(t, nil, "GET", e.url("public")+"/a/42", map[string]string{
		"Traceparent": "00-" + traceID + "-" + clientSpan + "-01"})
	if status != 200 || body != "a -> b" {
		t.Fatalf("request: %d %q", status, body)
	}

	// Eight spans: a server and a client span at each of the four proxy
	// hops (edge, sidecar A inbound, sidecar A outbound, sidecar B inbound).
	tr := j.WaitTrace(t, traceID, func(tr *tracetest.Trace) bool { return len(tr.Spans) >= 8 }, 30*time.Second)
	if len(tr.Spans) != 8 {
		t.Fatalf("want 8 spans, got %d:\n%s", len(tr.Spans), tr)
	}
	// Walk the chain from the client's span: each span's only child is the
	// next hop, alternating server and client kinds, through the expected
	// services.
	want := []struct{ service, kind string }{
		{"meshgate-edge", "server"}, {"meshgate-edge", "client"},
		{"meshgate-sidecar", "server"}, {"meshgate-sidecar", "client"}, // A inbound → app A
		{"meshgate-sidecar", "server"}, {"meshgate-sidecar", "client"}, // A outbound → B
		{"meshgate-sidecar", "server"}, {"meshgate-sidecar", "client"}, // B inbound → app B
	}
	parent := clientSpan
	for i, w := range want {
		var next *tracetest.Span
		for _, s := range tr.Spans {
			if s.ParentSpanID == parent {
				if next != nil {
					t.Fatalf("hop %d: two children of %s:\n%s", i, parent, tr)
				}
				next = s
			}
		}
		if next == nil {
			t.Fatalf("hop %d (%s %s): no child of %s:\n%s", i, w.service, w.kind, parent, tr)
		}
		if next.Service != w.service || fmt.Sprint(next.Tags["span.kind"]) != w.kind {
			t.Fatalf("hop %d: %s %v, want %s %s:\n%s", i, next.Service, next.Tags["span.kind"], w.service, w.kind, tr)
		}
		if next.Tags["http.request.method"] != "GET" {
			t.Fatalf("hop %d: http.request.method %v", i, next.Tags["http.request.method"])
		}
		parent = next.SpanID
	}
	edge := tr.Span(tr.Spans[0].SpanID)
	for _, s := range tr.Spans {
		if s.ParentSpanID == clientSpan {
			edge = s
		}
	}
	if edge.Tags["http.route"] != "/a/{id}" || fmt.Sprint(edge.Tags["http.response.status_code"]) != "200" {
		t.Fatalf("edge server span tags: %v", edge.Tags)
	}
	var inboundA *tracetest.Span
	for _, s := range tr.Spans {
		if s.Tags["meshgate.caller"] == edgeID.String() {
			inboundA = s
		}
	}
	if inboundA == nil || inboundA.Tags["meshgate.authz.decision"] != "allow" {
		t.Fatalf("sidecar A's inbound span lacks the caller and the decision:\n%s", tr)
	}
}
