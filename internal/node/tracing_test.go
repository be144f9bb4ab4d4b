package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/tracetest"
	"github.com/meshgate/meshgate/pki/pkitest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	sdktracetest "go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	codes2 "google.golang.org/grpc/codes"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// spanSink gathers the spans of every node of a test into the OpenTelemetry
// SDK's in-memory exporter, as SDK spans (tracetest.SpanStub).
type spanSink struct {
	mem   *sdktracetest.InMemoryExporter
	mu    sync.Mutex
	nodes []*Node
}

func newSpanSink() *spanSink { return &spanSink{mem: sdktracetest.NewInMemoryExporter()} }

func (k *spanSink) ExportSpans(ctx context.Context, spans []*telemetry.Span) error {
	ro := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		ro[i] = stubOf(s).Snapshot()
	}
	return k.mem.ExportSpans(ctx, ro)
}

// Shutdown keeps the spans (the in-memory exporter's own Shutdown drops
// them).
func (k *spanSink) Shutdown(context.Context) error { return nil }

// start runs a node whose spans come here.
func (k *spanSink) start(t *testing.T, yaml string, opts Options) *edge {
	t.Helper()
	opts.TraceExporter = k
	e := startNode(t, t, yaml, opts)
	k.mu.Lock()
	k.nodes = append(k.nodes, e.node)
	k.mu.Unlock()
	return e
}

// spans flushes every node's tracer and returns all spans so far.
func (k *spanSink) spans(t *testing.T) sdktracetest.SpanStubs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k.mu.Lock()
	nodes := slices.Clone(k.nodes)
	k.mu.Unlock()
	for _, n := range nodes {
		if err := n.Tracer().ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return k.mem.GetSpans()
}

// stubOf converts a span into the SDK's form.
func stubOf(s *telemetry.Span) sdktracetest.SpanStub {
	ts, _ := trace.ParseTraceState(s.TraceState())
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: s.TraceID(), SpanID: s.SpanID(), TraceFlags: s.TraceFlags(), TraceState: ts})
	var parent trace.SpanContext
	if pid, remote := s.ParentSpanID(); pid.IsValid() {
		parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: s.TraceID(), SpanID: pid, TraceFlags: s.TraceFlags(), Remote: remote})
	}
	st := sdktrace.Status{Code: codes.Unset}
	if code, desc := s.Status(); code == telemetry.StatusError {
		st = sdktrace.Status{Code: codes.Error, Description: desc}
	}
	var events []sdktrace.Event
	for _, e := range s.Events() {
		events = append(events, sdktrace.Event{Name: e.Name, Time: e.Time, Attributes: e.Attributes})
	}
	return sdktracetest.SpanStub{
		Name: s.Name(), SpanContext: sc, Parent: parent, SpanKind: trace.SpanKind(s.Kind()),
		StartTime: s.StartTime(), EndTime: s.EndTime(), Attributes: s.Attributes(), Events: events, Status: st,
		Resource:             resource.NewSchemaless(s.Resource()...),
		InstrumentationScope: instrumentation.Scope{Name: "github.com/meshgate/meshgate"},
	}
}

// tracingOn is a tracing section sampling every trace; the sink replaces
// its exporter.
const tracingOn = "tracing: {endpoint: \"127.0.0.1:4317\", insecure: true, sampling: {ratio: 1}}\n"

func attrOf(s sdktracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func attrStr(s sdktracetest.SpanStub, key string) string {
	v, _ := attrOf(s, key)
	return v.Emit()
}

func resourceStr(s sdktracetest.SpanStub, key string) string {
	v, _ := s.Resource.Set().Value(attribute.Key(key))
	return v.Emit()
}

// describe lists spans for failure messages.
func describe(spans sdktracetest.SpanStubs) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n\t%s %q kind=%s trace=%s span=%s parent=%s service=%s/%s",
			s.SpanKind, s.Name, s.SpanKind, s.SpanContext.TraceID(), s.SpanContext.SpanID(), s.Parent.SpanID(),
			resourceStr(s, "service.name"), resourceStr(s, telemetry.AttrMeshService))
	}
	return b.String()
}

// findSpan returns the one span of kind named name on the service.
func findSpan(t *testing.T, spans sdktracetest.SpanStubs, service string, kind trace.SpanKind, name string) sdktracetest.SpanStub {
	t.Helper()
	var found []sdktracetest.SpanStub
	for _, s := range spans {
		svc := resourceStr(s, telemetry.AttrMeshService)
		if svc == "" {
			svc = resourceStr(s, "service.name")
		}
		if svc == service && s.SpanKind == kind && s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans %q of %s, want 1; spans:%s", len(found), kind, name, service, describe(spans))
	}
	return found[0]
}

func wantChild(t *testing.T, child, parent sdktracetest.SpanStub) {
	t.Helper()
	if child.SpanContext.TraceID() != parent.SpanContext.TraceID() || child.Parent.SpanID() != parent.SpanContext.SpanID() {
		t.Errorf("span %q (parent %s in trace %s) is not the child of %q (%s in trace %s)",
			child.Name, child.Parent.SpanID(), child.SpanContext.TraceID(), parent.Name, parent.SpanContext.SpanID(), parent.SpanContext.TraceID())
	}
}

func wantAttr(t *testing.T, s sdktracetest.SpanStub, key, want string) {
	t.Helper()
	if v, ok := attrOf(s, key); !ok || v.Emit() != want {
		t.Errorf("span %q: %s = %q (set: %v), want %q", s.Name, key, v.Emit(), ok, want)
	}
}

// propagate copies the trace headers of an incoming request onto an
// outgoing one, as an instrumented app does.
func propagate(dst, src http.Header) {
	for _, k := range []string{"Traceparent", "Tracestate", "Baggage"} {
		if v, ok := src[k]; ok {
			dst[k] = v
		}
	}
}

// One request from a client through the edge, the payments sidecar, the
// payments app, its sidecar's outbound listener and the catalog sidecar to
// the catalog app is one trace of 8 spans, each the child of the one
// before; every hop carries the context (and the client's baggage).
func TestTraceThroughMesh(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	k := newSpanSink()
	sidecar := Options{Load: config.LoadSidecar}

	var catalogSaw sync.Map // header → value, as the catalog app got them
	catalogApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"Traceparent", "Tracestate", "Baggage"} {
			catalogSaw.Store(h, r.Header.Get(h))
		}
		_, _ = io.WriteString(w, "items")
	}))
	defer catalogApp.Close()
	catalog := k.start(t, identityFiles(t, ca, ca.ID(t, "/catalog"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
service: {name: catalog, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/payments"]}
`, addr(catalogApp)), sidecar)

	var outbound string
	var paymentsTP string
	paymentsApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paymentsTP = r.Header.Get("Traceparent")
		req, _ := http.NewRequest("GET", "http://"+outbound+"/items", nil)
		req.Host = "catalog"
		propagate(req.Header, r.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "payments -> %d %s", resp.StatusCode, b)
	}))
	defer paymentsApp.Close()
	payments := k.start(t, identityFiles(t, ca, ca.ID(t, "/payments"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
outbound: {address: "127.0.0.1:0"}
services:
  - {name: catalog, spiffe_ids: ["spiffe://example.org/catalog"], endpoints: [{address: %q}]}
`, addr(paymentsApp), catalog.node.Addr(config.SidecarInbound)), sidecar)
	outbound = payments.node.Addr(config.SidecarOutbound)

	e := k.start(t, identityFiles(t, ca, ca.ID(t, "/edge"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: pay, match: {path: {template: "/pay/{id}"}}, upstream: payments}]
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, payments.node.Addr(config.SidecarInbound)), Options{})

	status, _, body := get(t, nil, "GET", e.url("public")+"/pay/7", map[string]string{"Baggage": "tenant=acme", "User-Agent": "trace-test/1"})
	if status != 200 || body != "payments -> 200 items" {
		t.Fatalf("%d %q", status, body)
	}
	spans := k.spans(t)
	if len(spans) != 8 {
		t.Fatalf("%d spans, want 8:%s", len(spans), describe(spans))
	}
	for _, s := range spans[1:] {
		if s.SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
			t.Fatalf("more than one trace:%s", describe(spans))
		}
	}

	edgeServer := findSpan(t, spans, "meshgate-edge", trace.SpanKindServer, "GET pay")
	edgeClient := findSpan(t, spans, "meshgate-edge", trace.SpanKindClient, "GET payments")
	payIn := findSpan(t, spans, "payments", trace.SpanKindServer, "GET inbound")
	payApp := findSpan(t, spans, "payments", trace.SpanKindClient, "GET local-app")
	payOut := findSpan(t, spans, "payments", trace.SpanKindServer, "GET outbound-catalog")
	payCatalog := findSpan(t, spans, "payments", trace.SpanKindClient, "GET catalog")
	catIn := findSpan(t, spans, "catalog", trace.SpanKindServer, "GET inbound")
	catApp := findSpan(t, spans, "catalog", trace.SpanKindClient, "GET local-app")

	if edgeServer.Parent.IsValid() {
		t.Errorf("the edge's server span has a parent %s; the client sent no context", edgeServer.Parent.SpanID())
	}
	wantChild(t, edgeClient, edgeServer)
	wantChild(t, payIn, edgeClient)
	wantChild(t, payApp, payIn)
	wantChild(t, payOut, payApp) // through the app, which propagated the context
	wantChild(t, payCatalog, payOut)
	wantChild(t, catIn, payCatalog)
	wantChild(t, catApp, catIn)
	for _, s := range []sdktracetest.SpanStub{payIn, payOut, catIn} {
		if !s.Parent.IsRemote() {
			t.Errorf("span %q: parent not marked remote", s.Name)
		}
	}

	// What each app saw: the context of the client span of its sidecar.
	if want := "00-" + catApp.SpanContext.TraceID().String() + "-" + catApp.SpanContext.SpanID().String() + "-01"; paymentsTP == "" {
		t.Error("payments app got no traceparent")
	} else if got, _ := catalogSaw.Load("Traceparent"); got != want {
		t.Errorf("catalog app got traceparent %q, want %q", got, want)
	}
	if got, _ := catalogSaw.Load("Baggage"); got != "tenant=acme" {
		t.Errorf("catalog app got baggage %q, want the client's", got)
	}

	// Attributes (HTTP semantic conventions and meshgate's).
	wantAttr(t, edgeServer, "http.request.method", "GET")
	wantAttr(t, edgeServer, "url.path", "/pay/7")
	wantAttr(t, edgeServer, "url.scheme", "http")
	wantAttr(t, edgeServer, "http.route", "/pay/{id}")
	wantAttr(t, edgeServer, "meshgate.route", "pay")
	wantAttr(t, edgeServer, "http.response.status_code", "200")
	wantAttr(t, edgeServer, "server.address", "127.0.0.1")
	wantAttr(t, edgeServer, "network.peer.address", "127.0.0.1")
	wantAttr(t, edgeServer, "user_agent.original", "trace-test/1")
	if _, ok := attrOf(edgeServer, "meshgate.upstream"); ok {
		t.Error("the server span names the upstream its attempt's span names")
	}
	if _, ok := attrOf(edgeServer, "server.port"); !ok {
		t.Error("edge server span: no server.port")
	}
	wantAttr(t, edgeClient, "url.scheme", "https")
	wantAttr(t, edgeClient, "http.response.status_code", "200")
	wantAttr(t, edgeClient, "server.address", "127.0.0.1")
	wantAttr(t, edgeClient, "meshgate.upstream", "payments")
	wantAttr(t, payIn, "meshgate.caller", "spiffe://example.org/edge")
	wantAttr(t, payIn, "meshgate.authz.decision", "allow")
	wantAttr(t, catIn, "meshgate.caller", "spiffe://example.org/payments")
	wantAttr(t, payOut, "server.address", "catalog")
	for _, s := range spans {
		if s.Status.Code != codes.Unset {
			t.Errorf("span %q: status %v on a 200", s.Name, s.Status)
		}
		if s.EndTime.Before(s.StartTime) {
			t.Errorf("span %q ends before it starts", s.Name)
		}
	}
	if edgeClient.StartTime.Before(edgeServer.StartTime) || edgeClient.EndTime.After(edgeServer.EndTime) {
		t.Errorf("the attempt [%v, %v] is not within the request [%v, %v]", edgeClient.StartTime, edgeClient.EndTime, edgeServer.StartTime, edgeServer.EndTime)
	}

	// Resources: the node's role, its mesh service and its name.
	if got := resourceStr(payIn, "service.name"); got != "meshgate-sidecar" {
		t.Errorf("sidecar service.name %q", got)
	}
	if got := resourceStr(edgeServer, "service.name"); got != "meshgate-edge" {
		t.Errorf("edge service.name %q", got)
	}
	if resourceStr(edgeServer, telemetry.AttrNodeName) == "" {
		t.Errorf("no %s in the edge's resource", telemetry.AttrNodeName)
	}
}

// tracedEdge is an edge with tracing (the sink's) in front of upstream u at
// the given addresses, with extra route settings.
func tracedEdge(t *testing.T, k *spanSink, tracing, route string, upstreams ...string) *edge {
	t.Helper()
	var eps []string
	for _, a := range upstreams {
		eps = append(eps, fmt.Sprintf("{address: %q}", a))
	}
	return k.start(t, tracing+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u%s}]
upstreams:
  - {name: u, protocol: http1, endpoints: [%s], balancer: {policy: round_robin}}
`, route, strings.Join(eps, ", ")), Options{})
}

// traceparentOf parses a traceparent the upstream saw.
func traceparentOf(t *testing.T, v string) (trace.TraceID, trace.SpanID, string) {
	t.Helper()
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" {
		t.Fatalf("traceparent %q", v)
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("traceparent %q: %v %v", v, err1, err2)
	}
	return tid, sid, parts[3]
}

func header(s seen, k string) string {
	if v := s.Headers[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// The context a request brings is continued: W3C (with its tracestate),
// B3 multiple and single headers. Without one a new trace starts. Either
// way the upstream sees the edge's client span as its parent, in W3C
// headers only.
func TestTracePropagation(t *testing.T) {
	k := newSpanSink()
	be := echoBackend(t, "a")
	e := tracedEdge(t, k, tracingOn, "", addr(be))
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		name    string
		hdr     map[string]string
		traceID string // "" : a new one
		parent  string
		state   string
	}{
		{"w3c", map[string]string{"Traceparent": "00-" + tid + "-" + sid + "-01", "Tracestate": "vendor=abc,other=1"}, tid, sid, "vendor=abc,other=1"},
		{"b3-multi", map[string]string{"X-B3-Traceid": tid, "X-B3-Spanid": sid, "X-B3-Sampled": "1"}, tid, sid, ""},
		{"b3-single", map[string]string{"B3": tid + "-" + sid + "-1"}, tid, sid, ""},
		{"b3-64bit", map[string]string{"X-B3-Traceid": "a3ce929d0e0e4736", "X-B3-Spanid": sid, "X-B3-Sampled": "1"}, "0000000000000000a3ce929d0e0e4736", sid, ""},
		{"none", nil, "", "", ""},
		{"invalid", map[string]string{"Traceparent": "00-" + strings.ToUpper(tid) + "-" + sid + "-01", "Tracestate": "vendor=abc"}, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k.mem.Reset()
			status, _, body := get(t, nil, "GET", e.url("public")+"/x", tc.hdr)
			if status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			up := decode(t, body)
			spans := k.spans(t)
			if len(spans) != 2 {
				t.Fatalf("%d spans:%s", len(spans), describe(spans))
			}
			server := findSpan(t, spans, "meshgate-edge", trace.SpanKindServer, "GET r")
			client := findSpan(t, spans, "meshgate-edge", trace.SpanKindClient, "GET u")
			wantChild(t, client, server)
			if tc.traceID != "" {
				if got := server.SpanContext.TraceID().String(); got != tc.traceID {
					t.Errorf("trace %s, want the caller's %s", got, tc.traceID)
				}
				if got := server.Parent.SpanID().String(); got != tc.parent || !server.Parent.IsRemote() {
					t.Errorf("parent %s (remote %v), want the caller's %s", got, server.Parent.IsRemote(), tc.parent)
				}
			} else if server.Parent.IsValid() || server.SpanContext.TraceID().String() == tid {
				t.Errorf("a request without a valid context continued trace %s from %s", server.SpanContext.TraceID(), server.Parent.SpanID())
			}
			gotTID, gotSID, flags := traceparentOf(t, header(up, "Traceparent"))
			if gotTID != server.SpanContext.TraceID() || gotSID != client.SpanContext.SpanID() || flags != "01" {
				t.Errorf("upstream traceparent %s, want trace %s, parent %s (the attempt), sampled",
					header(up, "Traceparent"), server.SpanContext.TraceID(), client.SpanContext.SpanID())
			}
			if got := header(up, "Tracestate"); got != tc.state {
				t.Errorf("upstream tracestate %q, want %q", got, tc.state)
			}
			if got := client.SpanContext.TraceState().String(); got != tc.state {
				t.Errorf("span tracestate %q, want %q", got, tc.state)
			}
			for k := range up.Headers {
				if strings.HasPrefix(k, "X-B3-") || k == "B3" {
					t.Errorf("upstream got B3 header %s: the context goes on in W3C headers only", k)
				}
			}
		})
	}
}

// Each attempt is a client span: a retried request shows both, the failed
// one with its status and error, the retry with its resend count.
func TestTraceRetryAttempts(t *testing.T) {
	k := newSpanSink()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	ok := echoBackend(t, "ok")
	e := tracedEdge(t, k, tracingOn, `, retry: {attempts: 2, on: ["503"], backoff_base: 1ms, backoff_max: 2ms}`, addr(failing), addr(ok))
	// Round robin: the first request may start on either endpoint; keep
	// going until one was retried.
	for i := 0; i < 4; i++ {
		k.mem.Reset()
		status, _, body := get(t, nil, "GET", e.url("public")+"/retry", nil)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		spans := k.spans(t)
		var clients []sdktracetest.SpanStub
		for _, s := range spans {
			if s.SpanKind == trace.SpanKindClient {
				clients = append(clients, s)
			}
		}
		if len(clients) == 1 {
			continue
		}
		if len(clients) != 2 {
			t.Fatalf("%d client spans:%s", len(clients), describe(spans))
		}
		server := findSpan(t, spans, "meshgate-edge", trace.SpanKindServer, "GET r")
		slices.SortFunc(clients, func(a, b sdktracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
		first, second := clients[0], clients[1]
		wantChild(t, first, server)
		wantChild(t, second, server)
		wantAttr(t, first, "http.response.status_code", "503")
		wantAttr(t, first, "error.type", "503")
		wantAttr(t, first, "server.address", "127.0.0.1")
		if first.Status.Code != codes.Error {
			t.Errorf("failed attempt: status %v, want Error", first.Status)
		}
		if _, ok := attrOf(first, "http.request.resend_count"); ok {
			t.Error("first attempt has a resend count")
		}
		wantAttr(t, second, "http.request.resend_count", "1")
		wantAttr(t, second, "http.response.status_code", "200")
		if !second.StartTime.After(first.EndTime) && !second.StartTime.Equal(first.EndTime) {
			t.Errorf("the retry starts at %v, before the first attempt ended at %v", second.StartTime, first.EndTime)
		}
		if server.Status.Code != codes.Unset {
			t.Errorf("server span status %v on a 200", server.Status)
		}
		return
	}
	t.Fatal("no request was retried")
}

// Failed requests: 5xx is an error with error.type, and the proxy's own
// answers carry an event naming why — rate limited, circuit open, no
// upstream; a failed connection is an exception on the attempt.
func TestTraceErrors(t *testing.T) {
	k := newSpanSink()
	dead := deadAddr(t)
	e := k.start(t, tracingOn+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: limited, match: {path: {prefix: /limited}}, upstream: ok, rate_limit: {requests: 1, window: 1m}}
  - {name: down, match: {path: {prefix: /down}}, upstream: down, retry: {attempts: 1}}
  - {name: open, match: {path: {prefix: /open}}, upstream: down2, retry: {attempts: 1}}
upstreams:
  - {name: ok, endpoints: [{address: %q}]}
  - {name: down, endpoints: [{address: %q}]}
  - {name: down2, endpoints: [{address: %q}], breaker: {consecutive_failures: 1, open_timeout: 1m}}
`, addr(echoBackend(t, "ok")), dead, dead), Options{})

	get(t, nil, "GET", e.url("public")+"/limited", nil)
	if status, _, _ := get(t, nil, "GET", e.url("public")+"/limited", nil); status != 429 {
		t.Fatalf("second request: %d, want 429", status)
	}
	if status, _, _ := get(t, nil, "GET", e.url("public")+"/down", nil); status != 502 {
		t.Fatalf("/down: %d, want 502", status)
	}
	get(t, nil, "GET", e.url("public")+"/open", nil) // opens the breaker
	if status, _, body := get(t, nil, "GET", e.url("public")+"/open", nil); status != 503 {
		t.Fatalf("/open: %d %s, want 503 circuit open", status, body)
	}
	spans := k.spans(t)
	event := func(s sdktracetest.SpanStub, name string) *sdktrace.Event {
		for i := range s.Events {
			if s.Events[i].Name == name {
				return &s.Events[i]
			}
		}
		t.Errorf("span %q: no event %q (events %v)", s.Name, name, s.Events)
		return nil
	}
	servers := map[string][]sdktracetest.SpanStub{}
	children := map[trace.SpanID][]sdktracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			servers[s.Name] = append(servers[s.Name], s)
		} else {
			children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], s)
		}
	}
	limited, down, open := servers["GET limited"], servers["GET down"], servers["GET open"]
	if len(limited) != 2 || len(down) != 1 || len(open) != 2 {
		t.Fatalf("spans:%s", describe(spans))
	}
	for _, s := range limited {
		switch attrStr(s, "http.response.status_code") {
		case "429":
			event(s, "meshgate.rate_limited")
			if s.Status.Code != codes.Unset {
				t.Errorf("a 429 is not a server error: status %v", s.Status)
			}
			if n := len(children[s.SpanContext.SpanID()]); n != 0 {
				t.Errorf("a rate-limited request made %d attempts", n)
			}
		case "200":
		default:
			t.Errorf("/limited: span %q status %s", s.Name, attrStr(s, "http.response.status_code"))
		}
	}
	server := down[0]
	wantAttr(t, server, "error.type", "502")
	if server.Status.Code != codes.Error || server.Status.Description != "upstream connect failed" {
		t.Errorf("502: status %+v", server.Status)
	}
	event(server, "meshgate.error")
	if c := children[server.SpanContext.SpanID()]; len(c) != 1 {
		t.Errorf("/down: %d attempts", len(c))
	} else {
		wantAttr(t, c[0], "error.type", "connect_error")
		if c[0].Status.Code != codes.Error {
			t.Errorf("failed attempt: status %v", c[0].Status)
		}
		if e := event(c[0], "exception"); e != nil && len(e.Attributes) != 2 {
			t.Errorf("exception event attributes %v", e.Attributes)
		}
	}
	slices.SortFunc(open, func(a, b sdktracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	refused := open[1]
	wantAttr(t, refused, "http.response.status_code", "503")
	event(refused, "meshgate.circuit_open")
	wantAttr(t, refused, "meshgate.upstream", "down2")
	if n := len(children[refused.SpanContext.SpanID()]); n != 0 {
		t.Errorf("a request refused by the breaker made %d attempts", n)
	}
}

// The sidecar's inbound span records the policy's decision: a caller not
// allowed is a denial with an auth event.
func TestTraceInboundDenied(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	k := newSpanSink()
	app := echoBackend(t, "app")
	sc := k.start(t, identityFiles(t, ca, ca.ID(t, "/catalog"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
service: {name: catalog, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/payments"]}
`, addr(app)), Options{Load: config.LoadSidecar})
	e := k.start(t, identityFiles(t, ca, ca.ID(t, "/edge"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: c, match: {path: {prefix: /}}, upstream: catalog}]
upstreams:
  - {name: catalog, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/catalog"]}}
`, sc.node.Addr(config.SidecarInbound)), Options{})
	if status, _, _ := get(t, nil, "GET", e.url("public")+"/items", nil); status != 403 {
		t.Fatalf("status %d, want 403", status)
	}
	spans := k.spans(t)
	in := findSpan(t, spans, "catalog", trace.SpanKindServer, "GET")
	wantChild(t, in, findSpan(t, spans, "meshgate-edge", trace.SpanKindClient, "GET catalog"))
	wantAttr(t, in, "meshgate.caller", "spiffe://example.org/edge")
	wantAttr(t, in, "meshgate.authz.decision", "deny")
	wantAttr(t, in, "http.response.status_code", "403")
	if len(in.Events) != 1 || in.Events[0].Name != "meshgate.auth_failed" {
		t.Errorf("events %+v, want meshgate.auth_failed", in.Events)
	}
}

// The access log line of a traced request names its trace and server span;
// the latency histogram takes the trace as an exemplar (OpenMetrics).
func TestTraceLogsAndExemplars(t *testing.T) {
	k := newSpanSink()
	e := tracedEdge(t, k, tracingOn, "", addr(echoBackend(t, "a")))
	get(t, nil, "GET", e.url("public")+"/x", nil)
	spans := k.spans(t)
	server := findSpan(t, spans, "meshgate-edge", trace.SpanKindServer, "GET r")

	select {
	case l := <-e.accessLines:
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["trace_id"] != server.SpanContext.TraceID().String() || m["span_id"] != server.SpanContext.SpanID().String() {
			t.Errorf("access log trace_id %v span_id %v, want %s %s", m["trace_id"], m["span_id"],
				server.SpanContext.TraceID(), server.SpanContext.SpanID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no access log line")
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	e.node.metrics.Handler().ServeHTTP(rec, req)
	want := `trace_id="` + server.SpanContext.TraceID().String() + `"`
	found := false
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, `meshgate_request_duration_seconds_bucket{route="r"`) && strings.Contains(line, want) {
			found = true
		}
	}
	if !found {
		t.Errorf("no exemplar %s on meshgate_request_duration_seconds of route r:\n%s", want, rec.Body.String())
	}
}

// Without a tracing section nothing is recorded and trace headers pass
// through untouched, B3 included.
func TestTracingOff(t *testing.T) {
	k := newSpanSink()
	be := echoBackend(t, "a")
	e := tracedEdge(t, k, "", "", addr(be))
	if e.node.Tracer() != nil {
		t.Fatal("a tracer without a tracing section")
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, _, body := get(t, nil, "GET", e.url("public")+"/x", map[string]string{"Traceparent": tp, "X-B3-Traceid": "a3ce929d0e0e4736", "Tracestate": "v=1"})
	up := decode(t, body)
	if header(up, "Traceparent") != tp || header(up, "X-B3-Traceid") != "a3ce929d0e0e4736" || header(up, "Tracestate") != "v=1" {
		t.Errorf("upstream headers %v: want the client's trace headers as they came", up.Headers)
	}
	_, _, body = get(t, nil, "GET", e.url("public")+"/x", nil)
	if _, ok := decode(t, body).Headers["Traceparent"]; ok {
		t.Error("a traceparent was added with tracing off")
	}
	if got := k.mem.GetSpans(); len(got) != 0 {
		t.Errorf("%d spans with tracing off", len(got))
	}
	if strings.Contains(scrape(t, e), "meshgate_tracing_") {
		t.Error("tracing metrics with tracing off")
	}
}

// Parent-based sampling: with ratio 0 the edge starts no sampled trace, yet
// passes the context on (unsampled), and follows a caller that sampled.
func TestTraceSamplingFollowsParent(t *testing.T) {
	k := newSpanSink()
	be := echoBackend(t, "a")
	e := tracedEdge(t, k, "tracing: {endpoint: \"127.0.0.1:4317\", insecure: true, sampling: {ratio: 0}}\n", "", addr(be))
	_, _, body := get(t, nil, "GET", e.url("public")+"/x", nil)
	tid, _, flags := traceparentOf(t, header(decode(t, body), "Traceparent"))
	if flags != "00" || !tid.IsValid() {
		t.Errorf("unsampled request: upstream traceparent flags %s", flags)
	}
	if n := len(k.spans(t)); n != 0 {
		t.Errorf("%d spans at ratio 0", n)
	}
	// An unsampled caller is followed too.
	get(t, nil, "GET", e.url("public")+"/x", map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"})
	if n := len(k.spans(t)); n != 0 {
		t.Errorf("%d spans for an unsampled caller", n)
	}
	_, _, body = get(t, nil, "GET", e.url("public")+"/x", map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if _, _, flags := traceparentOf(t, header(decode(t, body), "Traceparent")); flags != "01" {
		t.Errorf("sampled caller: upstream flags %s", flags)
	}
	if n := len(k.spans(t)); n != 2 {
		t.Errorf("%d spans for a sampled caller, want 2", n)
	}
}

// mdBackend is a gRPC TestService that remembers the metadata of its last
// unary call.
type mdBackend struct {
	pb.UnimplementedTestServiceServer
	mu sync.Mutex
	md metadata.MD
}

func (b *mdBackend) UnaryCall(ctx context.Context, req *pb.SimpleRequest) (*pb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	b.md = md
	b.mu.Unlock()
	if req.GetResponseStatus() != nil {
		return nil, status.Error(codes2.Code(req.GetResponseStatus().GetCode()), req.GetResponseStatus().GetMessage())
	}
	return &pb.SimpleResponse{}, nil
}

// gRPC through the edge and a sidecar carries the trace context in its
// metadata (HTTP/2 headers), and its spans say it is gRPC.
func TestTraceGRPC(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	k := newSpanSink()
	be := &mdBackend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterTestServiceServer(srv, be)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	sc := k.start(t, identityFiles(t, ca, ca.ID(t, "/payments"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
`, ln.Addr().String()), Options{Load: config.LoadSidecar})
	e := k.start(t, identityFiles(t, ca, ca.ID(t, "/edge"))+tracingOn+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: grpc, match: {path: {prefix: /grpc.testing.TestService}}, upstream: payments}]
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, sc.node.Addr(config.SidecarInbound)), Options{})
	client := grpcDial(t, e.node.Addr("public"))
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+tid+"-00f067aa0ba902b7-01")
	if _, err := client.UnaryCall(ctx, &pb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = client.UnaryCall(ctx, &pb.SimpleRequest{ResponseStatus: &pb.EchoStatus{Code: int32(codes2.NotFound), Message: "no"}})
	if status.Code(err) != codes2.NotFound {
		t.Fatalf("err %v", err)
	}
	spans := k.spans(t)
	if len(spans) != 8 {
		t.Fatalf("%d spans, want 8:%s", len(spans), describe(spans))
	}
	be.mu.Lock()
	got := be.md.Get("traceparent")
	be.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("backend metadata traceparent %v", got)
	}
	gotTID, gotParent, _ := traceparentOf(t, got[0])
	if gotTID.String() != tid {
		t.Errorf("backend got trace %s, want the client's %s", gotTID, tid)
	}
	var apps, edges []sdktracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindClient && s.Name == "POST local-app" {
			apps = append(apps, s)
		}
		if s.SpanKind == trace.SpanKindServer && s.Name == "POST grpc" {
			edges = append(edges, s)
		}
	}
	if len(apps) != 2 || len(edges) != 2 {
		t.Fatalf("spans:%s", describe(spans))
	}
	slices.SortFunc(apps, func(a, b sdktracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	slices.SortFunc(edges, func(a, b sdktracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	if gotParent != apps[1].SpanContext.SpanID() {
		t.Errorf("backend's parent %s, want the sidecar's attempt %s", gotParent, apps[1].SpanContext.SpanID())
	}
	for _, s := range edges {
		wantAttr(t, s, "rpc.system", "grpc")
		wantAttr(t, s, "rpc.service", "grpc.testing.TestService")
		wantAttr(t, s, "rpc.method", "UnaryCall")
		wantAttr(t, s, "network.protocol.version", "2")
	}
	wantAttr(t, edges[0], "rpc.grpc.status_code", "0")
	wantAttr(t, edges[1], "rpc.grpc.status_code", "5")
	for _, s := range apps { // the attempts name the call too
		wantAttr(t, s, "rpc.system", "grpc")
		wantAttr(t, s, "rpc.service", "grpc.testing.TestService")
		wantAttr(t, s, "rpc.method", "UnaryCall")
	}
}

// blackHole accepts connections and never answers.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// With the trace collector down (a closed port) or black-holed (a listener
// that never answers), requests go on at the speed of an untraced edge and
// the spans that cannot go out are counted as dropped.
func TestTraceCollectorDown(t *testing.T) {
	be := echoBackend(t, "a")
	plain := startEdge(t, simpleConfig(addr(be), ""))
	collectors := map[string]string{"closed": deadAddr(t), "black-hole": blackHole(t)}
	for name, collector := range collectors {
		t.Run(name, func(t *testing.T) {
			traced := startNode(t, t, fmt.Sprintf(`tracing: {endpoint: %q, insecure: true, sampling: {ratio: 1}, queue_size: 64, export_timeout: 500ms}
`, collector)+simpleConfig(addr(be), ""), Options{TraceBatchInterval: 10 * time.Millisecond})
			const n = 300
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			run := func(e *edge) time.Duration {
				start := time.Now()
				for i := 0; i < n; i++ {
					resp, err := client.Get(e.url("public") + "/x")
					if err != nil {
						t.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
				}
				return time.Since(start)
			}
			run(plain) // warm both connections up
			run(traced)
			var untracedTime, tracedTime time.Duration
			for round := 0; round < 3; round++ {
				untracedTime += run(plain)
				tracedTime += run(traced)
			}
			t.Logf("%d requests × 3: untraced %v, traced with the collector %s %v", n, untracedTime, name, tracedTime)
			if tracedTime > 2*untracedTime+100*time.Millisecond {
				t.Errorf("traced requests took %v, untraced %v: the exporter slows requests down", tracedTime, untracedTime)
			}
			reason := "export_failed"
			if name == "black-hole" {
				reason = "queue_full" // the one export under way waits; the queue fills
			}
			series := `meshgate_tracing_spans_dropped_total{reason="` + reason + `"}`
			eventually(t, 5*time.Second, series, func() bool { return metricValue(t, traced.node, series) > 0 })
			if v := metricValue(t, traced.node, "meshgate_tracing_spans_exported_total"); v != 0 {
				t.Errorf("%v spans exported to a collector that is down", v)
			}
		})
	}
}

// The file's tracing section exports over real OTLP/gRPC, in plaintext, to
// a receiver of the OpenTelemetry protocol, with the configured headers.
func TestTraceExportOTLPGRPC(t *testing.T) {
	col := tracetest.StartCollector(t)
	be := echoBackend(t, "a")
	e := startNode(t, t, fmt.Sprintf(`tracing:
  endpoint: %q
  insecure: true
  headers: {authorization: "Bearer t0ken"}
  sampling: {ratio: 1}
  resource: {deployment.environment.name: test}
`, col.Addr())+simpleConfig(addr(be), ""), Options{})
	get(t, nil, "GET", e.url("public")+"/x", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.node.Tracer().ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	spans, resources := col.Spans()
	if len(spans) != 2 {
		t.Fatalf("collector got %d spans", len(spans))
	}
	names := map[string]tracepb.Span_SpanKind{}
	for _, s := range spans {
		names[s.Name] = s.Kind
	}
	if names["GET r"] != tracepb.Span_SPAN_KIND_SERVER || names["GET u"] != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("span names and kinds %v", names)
	}
	res := map[string]string{}
	for _, kv := range resources[0] {
		res[kv.Key] = kv.Value.GetStringValue()
	}
	if res["service.name"] != "meshgate-edge" || res["deployment.environment.name"] != "test" {
		t.Errorf("resource %v", res)
	}
	if md := col.Metadata(); len(md) == 0 || len(md[0].Get("authorization")) == 0 || md[0].Get("authorization")[0] != "Bearer t0ken" {
		t.Errorf("authorization metadata %v", md)
	}
	if v := metricValue(t, e.node, "meshgate_tracing_spans_exported_total"); v != 2 {
		t.Errorf("exported counter %v, want 2", v)
	}
}

// A WebSocket handshake is an attempt like any other: its request carries
// the context, and a client span covers the handshake (101) under the
// server span, which lasts as long as the tunnel.
func TestTraceWebSocket(t *testing.T) {
	k := newSpanSink()
	b := startWSBackend(t, "b1")
	e := k.start(t, tracingOn+wsEdgeConfig("", "w", wsUpstream("w", b)), Options{})
	conn, _ := wsDial(t, e, "/ws/chat")
	wsEcho(t, conn, "b1", websocket.TextMessage, []byte("hi"))
	hs := <-b.handshakes
	conn.Close()
	eventually(t, 5*time.Second, "the server span", func() bool {
		for _, s := range k.spans(t) {
			if s.SpanKind == trace.SpanKindServer {
				return true
			}
		}
		return false
	})
	spans := k.spans(t)
	server := findSpan(t, spans, "meshgate-edge", trace.SpanKindServer, "GET ws")
	client := findSpan(t, spans, "meshgate-edge", trace.SpanKindClient, "GET w")
	wantChild(t, client, server)
	wantAttr(t, client, "http.response.status_code", "101")
	wantAttr(t, server, "http.response.status_code", "101")
	tid, parent, _ := traceparentOf(t, hs.Get("Traceparent"))
	if tid != server.SpanContext.TraceID() || parent != client.SpanContext.SpanID() {
		t.Errorf("backend handshake traceparent %s, want the attempt's context", hs.Get("Traceparent"))
	}
}
