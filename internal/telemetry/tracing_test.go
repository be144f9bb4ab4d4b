package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/tracetest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
	collpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func ratio(r float64) *float64 { return &r }

// memExporter keeps copies of what it is given (as the accessors show it).
type memExporter struct {
	mu      sync.Mutex
	spans   []copied
	batches []int // the spans of each export
	err     error
	block   chan struct{} // when set, exports wait on it
}

type copied struct {
	name   string
	kind   SpanKind
	attrs  map[string]string
	events []SpanEvent
	status StatusCode
	desc   string
	trace  trace.TraceID
	parent trace.SpanID
	remote bool
	wire   []byte // the span's OTLP encoding
}

func (m *memExporter) ExportSpans(ctx context.Context, spans []*Span) error {
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, len(spans))
	for _, s := range spans {
		c := copied{name: s.Name(), kind: s.Kind(), attrs: map[string]string{}, events: s.Events(), trace: s.TraceID(),
			wire: bytes.Clone(s.buf)}
		c.status, c.desc = s.Status()
		c.parent, c.remote = s.ParentSpanID()
		for _, a := range s.Attributes() {
			c.attrs[string(a.Key)] = a.Value.Emit()
		}
		m.spans = append(m.spans, c)
	}
	return m.err
}

func (m *memExporter) Shutdown(context.Context) error { return nil }

func (m *memExporter) got() []copied {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]copied(nil), m.spans...)
}

func newTestTracer(t *testing.T, cfg config.Tracing, exp SpanExporter, log *slog.Logger) (*Tracer, *Metrics) {
	t.Helper()
	return startTestTracer(t, cfg, TracerOptions{Exporter: exp, Logger: log})
}

// startTestTracer starts a tracer sampling everything (unless cfg says
// otherwise) with a short batch interval.
func startTestTracer(t *testing.T, cfg config.Tracing, o TracerOptions) (*Tracer, *Metrics) {
	t.Helper()
	if cfg.Endpoint == "" {
		cfg.Endpoint, cfg.Insecure = "127.0.0.1:4317", true
	}
	if cfg.Sampling.Ratio == nil {
		cfg.Sampling.Ratio = ratio(1)
	}
	m := NewMetrics()
	o.NodeName, o.Metrics, o.BatchInterval = "n1", m, 10*time.Millisecond
	tr, err := NewTracer(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, m
}

// postCapture is the transport of an OTLP exporter that keeps the
// requests it is given, decoded (the tracer's own encoder path, without a
// network).
type postCapture struct {
	mu    sync.Mutex
	reqs  []*collpb.ExportTraceServiceRequest
	sizes []int
	err   error // the first request that did not decode
}

func (c *postCapture) post(_ context.Context, body []byte) error {
	var req collpb.ExportTraceServiceRequest
	err := proto.Unmarshal(body, &req) // checks UTF-8 as a collector does
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.err == nil {
			c.err = err
		}
		return err
	}
	c.reqs = append(c.reqs, &req)
	c.sizes = append(c.sizes, len(body))
	return nil
}

// spans returns the spans received so far, and the first decoding error.
func (c *postCapture) spans() ([]*tracepb.Span, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, r := range c.reqs {
		for _, rs := range r.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out, c.err
}

func TestParseTraceparent(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		v       string
		ok      bool
		sampled bool
	}{
		{"00-" + tid + "-" + sid + "-01", true, true},
		{"00-" + tid + "-" + sid + "-00", true, false},
		{"00-" + tid + "-" + sid + "-03", true, true},                    // random flag kept
		{"01-" + tid + "-" + sid + "-01-what-comes-next", true, true},    // a later version may extend
		{"00-" + tid + "-" + sid + "-01-extra", false, false},            // version 00 is exactly 55
		{"ff-" + tid + "-" + sid + "-01", false, false},                  // version ff is invalid
		{"00-" + strings.ToUpper(tid) + "-" + sid + "-01", false, false}, // upper-case hex
		{"00-00000000000000000000000000000000-" + sid + "-01", false, false},
		{"00-" + tid + "-0000000000000000-01", false, false},
		{"00-" + tid + "-" + sid + "-0g", false, false},
		{"00-" + tid + "_" + sid + "-01", false, false},
		{"", false, false},
		{"01-" + tid + "-" + sid + "-01x", false, false},
	}
	for _, tc := range cases {
		rc, ok := parseTraceparent(tc.v)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.v, ok, tc.ok)
			continue
		}
		if ok && (rc.traceID.String() != tid || rc.spanID.String() != sid || rc.flags.IsSampled() != tc.sampled) {
			t.Errorf("%q: got %s %s %v", tc.v, rc.traceID, rc.spanID, rc.flags)
		}
	}
}

func TestExtractHeaders(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		name     string
		h        http.Header
		ok       bool
		state    string
		deferred bool
		b3       bool
	}{
		{"w3c", http.Header{"Traceparent": {"00-" + tid + "-" + sid + "-01"}, "Tracestate": {"a=1", "b=2"}}, true, "a=1,b=2", false, false},
		{"bad tracestate dropped", http.Header{"Traceparent": {"00-" + tid + "-" + sid + "-01"}, "Tracestate": {"not a list entry"}}, true, "", false, false},
		{"two traceparents", http.Header{"Traceparent": {"00-" + tid + "-" + sid + "-01", "00-" + tid + "-" + sid + "-01"}}, false, "", false, false},
		{"invalid w3c ignores b3", http.Header{"Traceparent": {"junk"}, "B3": {tid + "-" + sid + "-1"}}, false, "", false, false},
		{"b3 single", http.Header{"B3": {tid + "-" + sid + "-1"}}, true, "", false, true},
		{"b3 single deferred", http.Header{"B3": {tid + "-" + sid}}, true, "", true, true},
		{"b3 multi", http.Header{"X-B3-Traceid": {tid}, "X-B3-Spanid": {sid}, "X-B3-Sampled": {"1"}}, true, "", false, true},
		{"b3 multi deferred", http.Header{"X-B3-Traceid": {tid}, "X-B3-Spanid": {sid}}, true, "", true, true},
		{"b3 debug", http.Header{"X-B3-Traceid": {tid}, "X-B3-Spanid": {sid}, "X-B3-Flags": {"1"}}, true, "", false, true},
		{"none", http.Header{}, false, "", false, false},
	}
	for _, tc := range cases {
		rc, ok := extract(tc.h)
		if ok != tc.ok || rc.state != tc.state || rc.deferred != tc.deferred || (ok && rc.fromB3 != tc.b3) {
			t.Errorf("%s: ok %v state %q deferred %v b3 %v, want %v %q %v %v", tc.name, ok, rc.state, rc.deferred, rc.fromB3, tc.ok, tc.state, tc.deferred, tc.b3)
		}
		if ok && (rc.traceID.String() != tid || rc.spanID.String() != sid) {
			t.Errorf("%s: ids %s %s", tc.name, rc.traceID, rc.spanID)
		}
	}
}

// The sampling state of B3 is the one of the header the context was read
// from; a "not sampled" without ids is a deny; any B3 header is
// remembered, for Inject to remove.
func TestExtractB3(t *testing.T) {
	const tid, sid, other = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "80f198ee56343ba864fe8b2a57d3eff7"
	multi := func(extra ...string) http.Header {
		h := http.Header{"X-B3-Traceid": {tid}, "X-B3-Spanid": {sid}}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = []string{extra[i+1]}
		}
		return h
	}
	cases := []struct {
		name     string
		h        http.Header
		ok       bool
		traceID  string
		sampled  bool
		deferred bool
		deny     bool
		b3       bool
	}{
		// An invalid single header whose first part is empty used to pass
		// for the single header (any id ends with ""): the multiple
		// headers' sampled state was taken as deferred.
		{"invalid single, multi sampled", multi("B3", "-x", "X-B3-Sampled", "1"), true, tid, true, false, false, true},
		{"invalid single, multi deferred", multi("B3", "-x"), true, tid, false, true, false, true},
		{"invalid single, multi not sampled", multi("B3", "garbage-1", "X-B3-Sampled", "0"), true, tid, false, false, false, true},
		// A valid single header wins, with its own state.
		{"single deferred over multi sampled", multi("B3", other+"-"+sid, "X-B3-Sampled", "1"), true, other, false, true, false, true},
		{"single sampled over multi deferred", multi("B3", other+"-"+sid+"-1"), true, other, true, false, false, true},
		{"single debug", http.Header{"B3": {tid + "-" + sid + "-d"}}, true, tid, true, false, false, true},
		{"single with parent", http.Header{"B3": {tid + "-" + sid + "-0-" + sid}}, true, tid, false, false, false, true},
		{"single 64-bit", http.Header{"B3": {tid[16:] + "-" + sid + "-1"}}, true, "0000000000000000" + tid[16:], true, false, false, true},
		{"single zero parent", http.Header{"B3": {tid + "-" + sid + "-1-0000000000000000"}}, false, "", false, false, false, true},
		// Sampling only.
		{"deny", http.Header{"B3": {"0"}}, false, "", false, false, true, true},
		{"deny multi", http.Header{"X-B3-Sampled": {"0"}}, false, "", false, false, true, true},
		{"accept only", http.Header{"B3": {"1"}}, false, "", false, false, false, true},
		{"deny, multi context", multi("B3", "0", "X-B3-Sampled", "1"), true, tid, true, false, false, true},
		// Next to a valid traceparent B3 is not read, but remembered.
		{"traceparent and b3", http.Header{"Traceparent": {"00-" + other + "-" + sid + "-01"}, "B3": {"0"}}, true, other, true, false, false, true},
		{"traceparent and x-b3-flags", http.Header{"Traceparent": {"00-" + other + "-" + sid + "-01"}, "X-B3-Flags": {"1"}}, true, other, true, false, false, true},
		{"invalid traceparent and b3", http.Header{"Traceparent": {"junk"}, "X-B3-Parentspanid": {sid}}, false, "", false, false, false, true},
		{"traceparent only", http.Header{"Traceparent": {"00-" + other + "-" + sid + "-01"}}, true, other, true, false, false, false},
	}
	for _, tc := range cases {
		rc, ok := extract(tc.h)
		if ok != tc.ok || rc.flags.IsSampled() != tc.sampled || rc.deferred != tc.deferred || rc.deny != tc.deny || rc.b3 != tc.b3 {
			t.Errorf("%s: ok %v sampled %v deferred %v deny %v b3 %v, want %v %v %v %v %v", tc.name, ok, rc.flags.IsSampled(), rc.deferred, rc.deny, rc.b3,
				tc.ok, tc.sampled, tc.deferred, tc.deny, tc.b3)
		}
		if ok && (rc.traceID.String() != tc.traceID || rc.spanID.String() != sid) {
			t.Errorf("%s: ids %s %s, want %s %s", tc.name, rc.traceID, rc.spanID, tc.traceID, sid)
		}
	}
}

// A B3 "not sampled" without a context starts a new trace here, not
// sampled (when the caller is followed).
func TestB3DenyStartsUnsampledTrace(t *testing.T) {
	tr, _ := newTestTracer(t, config.Tracing{}, &memExporter{}, nil) // ratio 1
	for range 100 {
		s := tr.StartServer(http.Header{"B3": {"0"}}, time.Now(), false)
		if s.Sampled() || !s.TraceID().IsValid() {
			t.Fatalf("b3: 0 gave a sampled span (or no trace): %v %s", s.Sampled(), s.TraceID())
		}
		if pid, _ := s.ParentSpanID(); pid.IsValid() {
			t.Fatalf("b3: 0 gave a parent %s", pid)
		}
		if !s.FromB3() {
			t.Fatal("b3: 0 not remembered as a B3 header")
		}
		s.End(time.Now())
	}
}

// The sampler follows a caller's decision and samples new traces at the
// ratio, by trace id, the same way on every node.
func TestSampling(t *testing.T) {
	tr, _ := newTestTracer(t, config.Tracing{Sampling: config.TracingSampling{Ratio: ratio(0.25)}}, &memExporter{}, nil)
	sampled := 0
	const n = 20000
	for i := 0; i < n; i++ {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		if s.Sampled() != s.Recording() {
			t.Fatal("sampled and recording disagree")
		}
		if s.Sampled() {
			sampled++
		}
		// A second node deciding on the same trace id agrees.
		if again := tr.decide(s.TraceID(), 0).IsSampled(); again != s.Sampled() {
			t.Fatal("the decision is not a function of the trace id")
		}
		s.End(time.Now())
	}
	if got := float64(sampled) / n; got < 0.22 || got > 0.28 {
		t.Errorf("sampled %.3f of new traces, want about 0.25", got)
	}
	for _, flags := range []string{"00", "01"} {
		s := tr.StartServer(http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags}}, time.Now(), false)
		if s.Sampled() != (flags == "01") {
			t.Errorf("caller flags %s: sampled %v", flags, s.Sampled())
		}
		s.End(time.Now())
	}
}

// Injection replaces the caller's context with the span's, keeps a valid
// tracestate, and removes B3 headers when asked.
func TestInject(t *testing.T) {
	tr, _ := newTestTracer(t, config.Tracing{}, &memExporter{}, nil)
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, in := range []http.Header{
		{"X-B3-Traceid": {tid}, "X-B3-Spanid": {sid}, "X-B3-Sampled": {"1"}},
		// B3 headers next to a valid traceparent (not read, but stale once
		// the traceparent is replaced) go too.
		{"Traceparent": {"00-" + tid + "-" + sid + "-01"}, "X-B3-Traceid": {"80f198ee56343ba864fe8b2a57d3eff7"},
			"X-B3-Spanid": {"e457b5a2e4d86bd1"}, "X-B3-Sampled": {"1"}, "X-B3-Parentspanid": {sid}},
		{"Traceparent": {"00-" + tid + "-" + sid + "-01"}, "B3": {"0"}, "X-B3-Flags": {"1"}},
	} {
		s := tr.StartServer(in, time.Now(), false)
		c := s.StartClient(time.Now())
		out := in.Clone()
		out["Tracestate"] = []string{"stale=1"}
		c.Inject(out, s.FromB3())
		want := "00-" + tid + "-" + c.SpanIDString() + "-01"
		if got := out.Get("Traceparent"); got != want {
			t.Errorf("traceparent %q, want %q", got, want)
		}
		for k := range out {
			if k != "Traceparent" {
				t.Errorf("header %s left after inject: %v", k, out)
			}
		}
		c.End(time.Now())
		s.End(time.Now())
	}
}

// A span's encoding is OTLP: decoded with the OpenTelemetry proto types it
// holds every field set, and the accessors agree with it.
func TestSpanEncodingIsOTLP(t *testing.T) {
	exp := &memExporter{}
	tr, _ := newTestTracer(t, config.Tracing{}, exp, nil)
	start := time.Unix(1700000000, 123456789)
	in := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Tracestate": {"v=1"}}
	s := tr.StartServer(in, start, false)
	s.SetName("GET", "orders")
	s.Set(AttrHTTPMethod, "GET")
	s.SetInt64(AttrHTTPStatusCode, 503)
	s.Set(AttrUserAgent, strings.Repeat("x", 300)) // a length of two bytes
	s.SetInt64(AttrRPCGRPCStatusCode, -5)          // ten bytes
	s.AddEvent("meshgate.circuit_open", start.Add(time.Millisecond), "meshgate.reason", "circuit open")
	s.SetError("circuit open")
	s.End(start.Add(2 * time.Millisecond))
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := exp.got()
	if len(got) != 1 {
		t.Fatalf("%d spans", len(got))
	}
	c := got[0]
	// The buffer is ScopeSpans.spans: a tag, a length, a Span.
	var ss tracepb.ScopeSpans
	if err := proto.Unmarshal(c.wire, &ss); err != nil {
		t.Fatalf("not OTLP: %v", err)
	}
	if len(ss.Spans) != 1 {
		t.Fatalf("%d spans in the encoding", len(ss.Spans))
	}
	p := ss.Spans[0]
	if p.Name != "GET orders" || p.Kind != tracepb.Span_SPAN_KIND_SERVER || p.TraceState != "v=1" ||
		trace.TraceID(p.TraceId) != c.trace || trace.SpanID(p.ParentSpanId).String() != "00f067aa0ba902b7" ||
		p.StartTimeUnixNano != uint64(start.UnixNano()) || p.EndTimeUnixNano != uint64(start.Add(2*time.Millisecond).UnixNano()) {
		t.Errorf("span %v", p)
	}
	if p.Flags != 0x301 {
		t.Errorf("flags %#x, want sampled with a remote parent (0x301)", p.Flags)
	}
	if p.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || p.Status.GetMessage() != "circuit open" {
		t.Errorf("status %v", p.Status)
	}
	attrs := map[string]*commonpb.AnyValue{}
	for _, kv := range p.Attributes {
		attrs[kv.Key] = kv.Value
	}
	if attrs["http.request.method"].GetStringValue() != "GET" || attrs["http.response.status_code"].GetIntValue() != 503 ||
		len(attrs["user_agent.original"].GetStringValue()) != 300 || attrs["rpc.grpc.status_code"].GetIntValue() != -5 {
		t.Errorf("attributes %v", p.Attributes)
	}
	if len(p.Events) != 1 || p.Events[0].Name != "meshgate.circuit_open" || p.Events[0].Attributes[0].Value.GetStringValue() != "circuit open" ||
		p.Events[0].TimeUnixNano != uint64(start.Add(time.Millisecond).UnixNano()) {
		t.Errorf("events %v", p.Events)
	}
	// The accessors read the same.
	if c.attrs["user_agent.original"] != strings.Repeat("x", 300) || c.attrs["http.response.status_code"] != "503" || c.attrs["rpc.grpc.status_code"] != "-5" ||
		len(c.events) != 1 || c.events[0].Name != "meshgate.circuit_open" || !c.remote || c.status != StatusError {
		t.Errorf("accessors: %+v", c)
	}
}

// A full request as the OTLP exporter builds it decodes as an
// ExportTraceServiceRequest with the node's resource.
func TestOTLPRequest(t *testing.T) {
	col := &postCapture{}
	tr, _ := startTestTracer(t, config.Tracing{MeshService: "payments", Resource: map[string]string{"deployment.environment.name": "prod"}},
		TracerOptions{post: col.post})
	for i := 0; i < 3; i++ {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.SetName("GET", "r")
		s.Set(AttrURLPath, strings.Repeat("/p", 100*i))
		s.End(time.Now())
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if col.err != nil || len(col.reqs) != 1 {
		t.Fatalf("%d requests, error %v", len(col.reqs), col.err)
	}
	req := col.reqs[0]
	if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans[0].Spans) != 3 {
		t.Fatalf("request %v", req)
	}
	got := map[string]string{}
	for _, kv := range req.ResourceSpans[0].Resource.Attributes {
		got[kv.Key] = kv.Value.GetStringValue()
	}
	for k, v := range map[string]string{"service.name": "meshgate-sidecar", AttrMeshService: "payments", AttrNodeName: "n1",
		"deployment.environment.name": "prod", "telemetry.sdk.language": "go"} {
		if got[k] != v {
			t.Errorf("resource %s = %q, want %q", k, got[k], v)
		}
	}
	if scope := req.ResourceSpans[0].ScopeSpans[0].Scope; scope.GetName() != "github.com/meshgate/meshgate" {
		t.Errorf("scope %v", scope)
	}
}

// Ending a span never waits for the exporter: with the export stuck, the
// queue fills and the rest is dropped and counted.
func TestQueueBoundsAndCountsDrops(t *testing.T) {
	exp := &memExporter{block: make(chan struct{})}
	tr, m := newTestTracer(t, config.Tracing{QueueSize: 8}, exp, nil)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.End(time.Now())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("ending 1000 spans took %v with the exporter stuck", d)
	}
	dropped := counterValue(tr.pipe.droppedFull)
	if dropped < 1000-2*8-1 {
		t.Errorf("dropped %v of 1000 spans with a queue of 8", dropped)
	}
	close(exp.block)
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.got()); n+int(dropped) != 1000 {
		t.Errorf("exported %d + dropped %v != 1000", n, dropped)
	}
	if !strings.Contains(scrapeText(t, m), `meshgate_tracing_spans_dropped_total{reason="queue_full"}`) {
		t.Error("no drop metric")
	}
}

// The encoded path (the OTLP exporter's) bounds its batches the same way.
func TestEncodedQueueBounds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a black hole
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// The export timeout outlasts the loop: no batch comes back while it
	// runs (a shutdown bounded by its own context ends the stuck export).
	tr, _ := newTestTracer(t, config.Tracing{Endpoint: ln.Addr().String(), Insecure: true, QueueSize: 512,
		ExportTimeout: config.Duration(time.Minute)}, nil, nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = tr.Shutdown(ctx)
	}()
	start := time.Now()
	for i := 0; i < 20000; i++ {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.Set(AttrHTTPMethod, "GET")
		s.End(time.Now())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("20000 spans took %v with the collector black-holed", d)
	}
	if dropped := counterValue(tr.pipe.droppedFull); dropped < 20000-2*512 {
		t.Errorf("dropped %v of 20000 spans with room for about 1024", dropped)
	}
}

// Export failures are logged at a bounded rate, not once per failure.
func TestExportErrorsLoggedAtBoundedRate(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	exp := &memExporter{err: errors.New("collector says no")}
	tr, _ := newTestTracer(t, config.Tracing{}, exp, log)
	for i := 0; i < 50; i++ {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.End(time.Now())
		if err := tr.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "span export failed"); n != 1 {
		t.Errorf("%d log lines for 50 failed exports, want 1:\n%s", n, buf.String())
	}
	if got := counterValue(tr.pipe.droppedFailed); got != 50 {
		t.Errorf("export_failed drops %v, want 50", got)
	}
	if got := counterValue(tr.pipe.exportErrors); got != 50 {
		t.Errorf("export errors %v, want 50", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func scrapeText(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// OTLP/gRPC to the OpenTelemetry collector service: headers travel as
// metadata, spans arrive whole, a partial success is counted.
func TestExportOTLPGRPC(t *testing.T) {
	col := tracetest.StartCollector(t)
	tr, _ := newTestTracer(t, config.Tracing{Endpoint: col.Addr(), Insecure: true, Headers: map[string]string{"X-Tenant": "t1"}}, nil, nil)
	for i := 0; i < 1200; i++ { // more than two full batches
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.Set(AttrHTTPMethod, "GET")
		s.End(time.Now())
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := col.Count(); n != 1200 {
		t.Fatalf("collector got %d spans, want 1200", n)
	}
	if got := col.Metadata()[0].Get("x-tenant"); len(got) != 1 || got[0] != "t1" {
		t.Errorf("metadata %v", col.Metadata()[0])
	}
	if got := counterValue(tr.pipe.exported); got != 1200 {
		t.Errorf("exported counter %v", got)
	}
	col.SetPartial(1)
	s := tr.StartServer(http.Header{}, time.Now(), false)
	s.End(time.Now())
	_ = tr.ForceFlush(context.Background())
	if got := counterValue(tr.pipe.rejected); got != 1 {
		t.Errorf("rejected counter %v, want 1", got)
	}
}

// OTLP/HTTP: POST /v1/traces, protobuf, gzip (the default), the
// configured headers; an error the specification does not call transient
// (400) fails the export at once.
func TestExportOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []*collpb.ExportTraceServiceRequest
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-protobuf" ||
			r.Header.Get("Authorization") != "Bearer x" || r.Header.Get("Content-Encoding") != "gzip" ||
			!strings.HasPrefix(r.Header.Get("User-Agent"), "meshgate/") {
			http.Error(w, "bad request", 400)
			return
		}
		req, err := readOTLPHTTP(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "no", 400)
			return
		}
		got = append(got, req)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	tr, _ := newTestTracer(t, config.Tracing{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Protocol: "http", Insecure: true,
		Headers: map[string]string{"Authorization": "Bearer x"}}, nil, nil)
	s := tr.StartServer(http.Header{}, time.Now(), false)
	s.End(time.Now())
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(got)
	fail = true
	mu.Unlock()
	if n != 1 || len(got[0].ResourceSpans[0].ScopeSpans[0].Spans) != 1 {
		t.Fatalf("server got %d requests", n)
	}
	s = tr.StartServer(http.Header{}, time.Now(), false)
	s.End(time.Now())
	start := time.Now()
	_ = tr.ForceFlush(context.Background())
	if v := counterValue(tr.pipe.droppedFailed); v != 1 {
		t.Errorf("export_failed %v after a 400", v)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a 400 took %v: retried?", d)
	}
}

// readOTLPHTTP decodes an OTLP/HTTP request's body, gzip or not.
func readOTLPHTTP(r *http.Request) (*collpb.ExportTraceServiceRequest, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var req collpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// Spans that are not sampled, or not made at all (nil), cost nothing to
// set: no allocation.
func TestUnsampledSpanDoesNotAllocate(t *testing.T) {
	tr, _ := newTestTracer(t, config.Tracing{Sampling: config.TracingSampling{Ratio: ratio(0)}}, &memExporter{}, nil)
	h := http.Header{}
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		s := tr.StartServer(h, now, false)
		s.Set(AttrHTTPMethod, "GET")
		s.AddEvent("e", now, "k", "v")
		c := s.StartClient(now)
		c.End(now)
		s.End(now)
		var off *Span
		off.Set(AttrHTTPMethod, "GET")
		off.End(now)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// A sampled span with valid values of ordinary length (the usual case)
// is recorded and queued without allocating: checking the values does not
// copy them.
func TestRecordingValidValuesDoesNotAllocate(t *testing.T) {
	// The export runs meanwhile and AllocsPerRun counts every goroutine's
	// allocations: a transport that decodes what it gets would be counted.
	discard := func(context.Context, []byte) error { return nil }
	tr, _ := startTestTracer(t, config.Tracing{}, TracerOptions{post: discard})
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "User-Agent": {"curl"}}
	now := time.Now()
	ua := "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 — über"
	if n := testing.AllocsPerRun(1000, func() {
		s := tr.StartServer(h, now, false)
		s.SetName("GET", "r")
		s.Set(AttrUserAgent, ua)
		s.Set(AttrURLPath, "/orders/1")
		s.AddEvent("meshgate.error", now, "meshgate.reason", "upstream said no")
		s.SetError("upstream said no")
		s.End(now)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// Client-derived strings with invalid UTF-8 (a user agent, a path, an
// error text, an event value; a resource value) are made valid: a span
// with them encodes to a request that protobuf decodes, as a collector
// does, instead of one that makes it refuse the whole batch.
func TestInvalidUTF8IsReplaced(t *testing.T) {
	col := &postCapture{}
	tr, _ := startTestTracer(t, config.Tracing{Resource: map[string]string{"team\xff": "a\xffb"}}, TracerOptions{post: col.post})
	now := time.Now()
	s := tr.StartServer(http.Header{}, now, false)
	s.SetName("GET", "r\xfe")
	s.Set(AttrUserAgent, "curl\xff")
	s.Set(AttrURLPath, "/caf\xc3")
	s.Set(AttrRPCService, "\xe2\x82")
	s.AddEvent("meshgate.error\xff", now, "meshgate.reason\xff", "bad \xff\xfe path", "k", "ok")
	s.SetError("malformed \xc3\x28")
	c := s.StartClient(now)
	c.Set(AttrURLPath, "/ok")
	c.End(now)
	s.End(now)
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, err := col.spans()
	if err != nil {
		t.Fatalf("the request does not decode: %v", err)
	}
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	var server *tracepb.Span
	for _, p := range spans {
		if p.Kind == tracepb.Span_SPAN_KIND_SERVER {
			server = p
		}
	}
	attrs := map[string]string{}
	for _, kv := range server.Attributes {
		attrs[kv.Key] = kv.Value.GetStringValue()
	}
	for k, want := range map[string]string{"user_agent.original": "curl\uFFFD", "url.path": "/caf\uFFFD", "rpc.service": "\uFFFD"} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q", k, attrs[k], want)
		}
	}
	if server.Name != "GET r\uFFFD" || server.Status.GetMessage() != "malformed \uFFFD(" {
		t.Errorf("name %q, status %q", server.Name, server.Status.GetMessage())
	}
	if e := server.Events; len(e) != 1 || e[0].Name != "meshgate.error\uFFFD" || e[0].Attributes[0].Key != "meshgate.reason\uFFFD" ||
		e[0].Attributes[0].Value.GetStringValue() != "bad \uFFFD path" || e[0].Attributes[1].Value.GetStringValue() != "ok" {
		t.Errorf("events %v", e)
	}
}

// Attribute values, event values and status descriptions are cut to
// MaxAttributeValueLength bytes, at a character boundary.
func TestAttributeValuesAreCut(t *testing.T) {
	long := strings.Repeat("é", 600)                                       // 1200 bytes, 2 a character
	edge := strings.Repeat("a", MaxAttributeValueLength-1) + "€"           // 1026 bytes: the € straddles the limit
	bad := strings.Repeat("\xff", 3*MaxAttributeValueLength) + "tail"      // invalid, and 3 bytes a replacement
	mixed := strings.Repeat("a", MaxAttributeValueLength-2) + "\xff" + "b" // invalid at the limit
	cases := []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("x", MaxAttributeValueLength), strings.Repeat("x", MaxAttributeValueLength)},
		{long, strings.Repeat("é", MaxAttributeValueLength/2)},
		{edge, strings.Repeat("a", MaxAttributeValueLength-1)},
		{bad, "\uFFFD"},
		{mixed, strings.Repeat("a", MaxAttributeValueLength-2)},
	}
	for _, tc := range cases {
		got := attrValue(tc.in)
		if got != tc.want || len(got) > MaxAttributeValueLength || !utf8.ValidString(got) {
			t.Errorf("attrValue(%.20q… %d bytes) = %.20q… (%d bytes), want %.20q… (%d bytes)", tc.in, len(tc.in), got, len(got), tc.want, len(tc.want))
		}
	}

	exp := &memExporter{}
	tr, _ := newTestTracer(t, config.Tracing{}, exp, nil)
	now := time.Now()
	s := tr.StartServer(http.Header{}, now, false)
	s.Set(AttrUserAgent, long)
	s.AddEvent("exception", now, "exception.message", edge)
	s.SetError(strings.Repeat("z", 5000))
	s.End(now)
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := exp.got()[0]
	if ua := c.attrs["user_agent.original"]; ua != strings.Repeat("é", 512) {
		t.Errorf("user agent of %d bytes", len(ua))
	}
	if v := c.events[0].Attributes[0].Value.AsString(); v != strings.Repeat("a", MaxAttributeValueLength-1) {
		t.Errorf("event value of %d bytes", len(v))
	}
	if len(c.desc) != MaxAttributeValueLength {
		t.Errorf("status description of %d bytes", len(c.desc))
	}
}

// bigSpans ends n sampled spans of about 20 KiB each (every well-known
// string attribute at the length limit).
func bigSpans(tr *Tracer, n int) {
	v := strings.Repeat("v", MaxAttributeValueLength)
	for range n {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		for a := Attr(0); a < numAttrs; a++ {
			s.Set(a, v)
		}
		s.End(time.Now())
	}
}

// A batch is closed when its spans reach maxBatchBytes, with fewer than
// maxBatch spans: large spans do not make requests a collector refuses.
func TestBatchClosedAtByteLimit(t *testing.T) {
	col := &postCapture{}
	tr, _ := startTestTracer(t, config.Tracing{QueueSize: 4096}, TracerOptions{post: col.post})
	const n = 200 // about 4 MiB
	bigSpans(tr, n)
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, err := col.spans()
	if err != nil || len(spans) != n {
		t.Fatalf("%d spans of %d, error %v", len(spans), n, err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.sizes) < 4 {
		t.Errorf("%d requests for %d spans of 20 KiB", len(col.sizes), n)
	}
	for _, size := range col.sizes {
		if size > maxBatchBytes+32<<10 {
			t.Errorf("a request of %d bytes; the limit is %d (and a span)", size, maxBatchBytes)
		}
	}

	// The same on the path of other exporters.
	exp := &memExporter{}
	tr2, _ := newTestTracer(t, config.Tracing{QueueSize: 4096}, exp, nil)
	bigSpans(tr2, n)
	if err := tr2.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	total, most := 0, maxBatchBytes/len(exp.spans[0].wire)+1
	for _, b := range exp.batches {
		total += b
		if b > most {
			t.Errorf("an export of %d spans of %d bytes", b, len(exp.spans[0].wire))
		}
	}
	if total != n {
		t.Errorf("exported %d of %d spans", total, n)
	}
}

// After a burst of large spans, the batches' buffers that grew beyond
// keepBatchCap are not kept.
func TestLargeBatchBuffersNotKept(t *testing.T) {
	col := &postCapture{}
	tr, _ := startTestTracer(t, config.Tracing{QueueSize: 4096}, TracerOptions{post: col.post})
	bigSpans(tr, 200)
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := tr.pipe
	// Idle now: every batch is free.
	var free []*batch
	for range cap(p.free) {
		select {
		case c := <-p.free:
			free = append(free, c)
		case <-time.After(5 * time.Second):
			t.Fatal("a batch is missing")
		}
	}
	for _, c := range free {
		if cap(c.b) > keepBatchCap {
			t.Errorf("a batch buffer of %d bytes kept (the bound is %d)", cap(c.b), keepBatchCap)
		}
		p.free <- c
	}
	// Ordinary batches keep theirs.
	for range 10 {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.Set(AttrHTTPMethod, "GET")
		s.End(time.Now())
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for range cap(p.free) {
		c := <-p.free
		if cap(c.b) > 0 {
			kept++
		}
		defer func() { p.free <- c }()
	}
	if kept == 0 {
		t.Error("no batch buffer kept after an ordinary batch")
	}
}

func boolp(b bool) *bool { return &b }

// With sampling.follow_clients false, a request on a listener without
// mTLS keeps its trace (id, parent, tracestate) but not its sampling
// decision: that is drawn at the ratio, at random — the client picked the
// trace id, so a decision by the id would be the client's too. A peer
// (mTLS) is followed, and so is everyone on a sidecar or by default.
func TestSamplingFollowClients(t *testing.T) {
	// The low 63 bits of this id are 0: by the id, it is sampled at any
	// ratio above 0.
	const tid, sid = "4bf92f3577b34da60000000000000000", "00f067aa0ba902b7"
	sampled := http.Header{"Traceparent": {"00-" + tid + "-" + sid + "-01"}, "Tracestate": {"v=1"}}
	unsampled := http.Header{"Traceparent": {"00-" + tid + "-" + sid + "-00"}}
	deferredB3 := http.Header{"B3": {tid + "-" + sid}}
	count := func(tr *Tracer, h http.Header, peer bool) int {
		n := 0
		for range 1000 {
			s := tr.StartServer(h, time.Now(), peer)
			if s.TraceID().String() != tid || s.traceState != first(h, "Tracestate") {
				t.Fatalf("trace %s state %q: the caller's trace is not kept", s.TraceID(), s.traceState)
			}
			if pid, remote := s.ParentSpanID(); pid.String() != sid || !remote {
				t.Fatalf("parent %s: the caller's span is not the parent", pid)
			}
			if s.Sampled() {
				n++
			}
			s.End(time.Now())
		}
		return n
	}
	own := func(cfg config.Tracing) *Tracer {
		cfg.Sampling.Ratio = ratio(0.01)
		tr, _ := newTestTracer(t, cfg, &memExporter{}, nil)
		return tr
	}

	edge := own(config.Tracing{Sampling: config.TracingSampling{FollowClients: boolp(false)}})
	if n := count(edge, sampled, false); n > 100 {
		t.Errorf("a client's sampled flag: %d of 1000 sampled at ratio 0.01", n)
	}
	if n := count(edge, deferredB3, false); n > 100 {
		t.Errorf("a client's deferred B3 on a crafted id: %d of 1000 sampled at ratio 0.01", n)
	}
	if n := count(edge, unsampled, false); n == 0 || n > 100 {
		t.Errorf("a client's unsampled flag: %d of 1000 sampled at ratio 0.01, want about 10", n)
	}
	if n := count(edge, sampled, true); n != 1000 {
		t.Errorf("a peer's sampled flag: %d of 1000 sampled", n)
	}
	if n := count(edge, unsampled, true); n != 0 {
		t.Errorf("a peer's unsampled flag: %d of 1000 sampled", n)
	}
	// A deny without a context is not followed either.
	ratio1 := own(config.Tracing{Sampling: config.TracingSampling{FollowClients: boolp(false)}})
	ratio1.rootBound = 1 << 63
	if s := ratio1.StartServer(http.Header{"B3": {"0"}}, time.Now(), false); !s.Sampled() {
		t.Error("b3: 0 from a client not followed made an unsampled trace at ratio 1")
	} else {
		s.End(time.Now())
	}

	for name, cfg := range map[string]config.Tracing{
		"default": {},
		"true":    {Sampling: config.TracingSampling{FollowClients: boolp(true)}},
		"sidecar": {MeshService: "payments", Sampling: config.TracingSampling{FollowClients: boolp(false)}},
	} {
		tr := own(cfg)
		if n := count(tr, sampled, false); n != 1000 {
			t.Errorf("%s: a client's sampled flag: %d of 1000 sampled", name, n)
		}
		if n := count(tr, unsampled, false); n != 0 {
			t.Errorf("%s: a client's unsampled flag: %d of 1000 sampled", name, n)
		}
	}
}

// Without a ratio in the configuration the tracer samples new traces at
// config.DefaultTracingRatio, as the configuration's defaults say.
func TestDefaultRatio(t *testing.T) {
	tr, err := NewTracer(config.Tracing{Endpoint: "127.0.0.1:4317", Insecure: true}, TracerOptions{Metrics: NewMetrics(), Exporter: &memExporter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	r := config.DefaultTracingRatio
	if want := uint64(r * (1 << 63)); tr.rootBound != want {
		t.Errorf("root bound %d, want %d (ratio %v)", tr.rootBound, want, config.DefaultTracingRatio)
	}
}

// Shutdown is bounded by its context even when an export is stuck on a
// collector that never answers (OTLP/HTTP, whose transport only closes
// idle connections): the export is cancelled, its spans count as lost,
// Shutdown says so, and the exporter goroutine ends.
func TestShutdownCancelsExport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() { // a black hole: reads, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	tr, _ := startTestTracer(t, config.Tracing{Endpoint: ln.Addr().String(), Protocol: "http", Insecure: true,
		ExportTimeout: config.Duration(time.Minute)}, TracerOptions{Logger: slog.New(slog.DiscardHandler)})
	s := tr.StartServer(http.Header{}, time.Now(), false)
	s.End(time.Now())
	var conn net.Conn
	select {
	case conn = <-accepted: // the export is under way
		defer conn.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no export")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = tr.Shutdown(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v with a context of 200ms", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the context's error (a span was lost)", err)
	}
	select {
	case <-tr.pipe.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the exporter goroutine is still running after Shutdown")
	}
	if got := counterValue(tr.pipe.droppedFailed); got != 1 {
		t.Errorf("export_failed %v, want the 1 span of the cancelled export", got)
	}
}

// Spans ended after Shutdown are counted as dropped (reason shutdown), on
// both paths.
func TestSpansAfterShutdownCounted(t *testing.T) {
	col := &postCapture{}
	enc, m1 := startTestTracer(t, config.Tracing{}, TracerOptions{post: col.post})
	mem, m2 := newTestTracer(t, config.Tracing{}, &memExporter{}, nil)
	for _, tm := range []struct {
		tr *Tracer
		m  *Metrics
	}{{enc, m1}, {mem, m2}} {
		tr := tm.tr
		live := tr.StartServer(http.Header{}, time.Now(), false)
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		live.End(time.Now())
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.End(time.Now())
		if got := counterValue(tr.pipe.droppedShutdown); got != 2 {
			t.Errorf("shutdown drops %v, want 2", got)
		}
		if !strings.Contains(scrapeText(t, tm.m), `meshgate_tracing_spans_dropped_total{reason="shutdown"} 2`) {
			t.Error("no shutdown drop metric")
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	cases := []struct {
		in   string
		host string
		port int
	}{
		{"example.com:8080", "example.com", 8080},
		{"example.com", "example.com", 0},
		{"10.0.0.1:443", "10.0.0.1", 443},
		{"[::1]:8443", "::1", 8443},
		{"[::1]", "::1", 0},
		{"::1", "::1", 0},
		{"fe80::1:80", "fe80::1:80", 0},
		{"host:notaport", "host", 0},
		{"host:70000", "host", 0},
		{"host:", "host", 0},
		{"", "", 0},
	}
	for _, tc := range cases {
		if host, port := SplitHostPort(tc.in); host != tc.host || port != tc.port {
			t.Errorf("SplitHostPort(%q) = %q, %d, want %q, %d", tc.in, host, port, tc.host, tc.port)
		}
	}
	if n := testing.AllocsPerRun(100, func() { SplitHostPort("[::1]:8443") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
