package telemetry

import (
	"bytes"
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

	"github.com/meshgate/meshgate/internal/config"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
	collpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

func ratio(r float64) *float64 { return &r }

// memExporter keeps copies of what it is given (as the accessors show it).
type memExporter struct {
	mu    sync.Mutex
	spans []copied
	err   error
	block chan struct{} // when set, exports wait on it
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
	if cfg.Endpoint == "" {
		cfg.Endpoint, cfg.Insecure = "127.0.0.1:4317", true
	}
	if cfg.Sampling.Ratio == nil {
		cfg.Sampling.Ratio = ratio(1)
	}
	m := NewMetrics()
	tr, err := NewTracer(cfg, TracerOptions{NodeName: "n1", Metrics: m, Exporter: exp, Logger: log, BatchInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, m
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
		if ok != tc.ok || rc.state != tc.state || rc.deferred != tc.deferred || rc.fromB3 != tc.b3 {
			t.Errorf("%s: ok %v state %q deferred %v b3 %v, want %v %q %v %v", tc.name, ok, rc.state, rc.deferred, rc.fromB3, tc.ok, tc.state, tc.deferred, tc.b3)
		}
		if ok && (rc.traceID.String() != tid || rc.spanID.String() != sid) {
			t.Errorf("%s: ids %s %s", tc.name, rc.traceID, rc.spanID)
		}
	}
}

// The sampler follows a caller's decision and samples new traces at the
// ratio, by trace id, the same way on every node.
func TestSampling(t *testing.T) {
	tr, _ := newTestTracer(t, config.Tracing{Sampling: config.TracingSampling{Ratio: ratio(0.25)}}, &memExporter{}, nil)
	sampled := 0
	const n = 20000
	for i := 0; i < n; i++ {
		s := tr.StartServer(http.Header{}, time.Now())
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
		s := tr.StartServer(http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags}}, time.Now())
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
	in := http.Header{"X-B3-Traceid": {"4bf92f3577b34da6a3ce929d0e0e4736"}, "X-B3-Spanid": {"00f067aa0ba902b7"}, "X-B3-Sampled": {"1"}}
	s := tr.StartServer(in, time.Now())
	c := s.StartClient(time.Now())
	out := in.Clone()
	out["Tracestate"] = []string{"stale=1"}
	c.Inject(out, s.FromB3())
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + c.SpanIDString() + "-01"
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

// A span's encoding is OTLP: decoded with the OpenTelemetry proto types it
// holds every field set, and the accessors agree with it.
func TestSpanEncodingIsOTLP(t *testing.T) {
	exp := &memExporter{}
	tr, _ := newTestTracer(t, config.Tracing{}, exp, nil)
	start := time.Unix(1700000000, 123456789)
	in := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Tracestate": {"v=1"}}
	s := tr.StartServer(in, start)
	s.SetName("GET", "orders")
	s.Set(AttrHTTPMethod, "GET")
	s.SetInt64(AttrHTTPStatusCode, 503)
	s.SetString("custom", strings.Repeat("x", 300)) // a length of two bytes
	s.SetInt("negative", -5)
	s.SetBool("flag", true)
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
		len(attrs["custom"].GetStringValue()) != 300 || attrs["negative"].GetIntValue() != -5 || !attrs["flag"].GetBoolValue() {
		t.Errorf("attributes %v", p.Attributes)
	}
	if len(p.Events) != 1 || p.Events[0].Name != "meshgate.circuit_open" || p.Events[0].Attributes[0].Value.GetStringValue() != "circuit open" ||
		p.Events[0].TimeUnixNano != uint64(start.Add(time.Millisecond).UnixNano()) {
		t.Errorf("events %v", p.Events)
	}
	// The accessors read the same.
	if c.attrs["custom"] != strings.Repeat("x", 300) || c.attrs["http.response.status_code"] != "503" || c.attrs["flag"] != "true" ||
		len(c.events) != 1 || c.events[0].Name != "meshgate.circuit_open" || !c.remote || c.status != StatusError {
		t.Errorf("accessors: %+v", c)
	}
}

// A full request as the OTLP exporter builds it decodes as an
// ExportTraceServiceRequest with the node's resource.
func TestOTLPRequest(t *testing.T) {
	res := tracingResource(config.Tracing{MeshService: "payments", Resource: map[string]string{"deployment.environment.name": "prod"}}, "node-1")
	enc := newOTLPEncoder(res)
	tr, _ := newTestTracer(t, config.Tracing{}, &memExporter{}, nil)
	var spans []*Span
	for i := 0; i < 3; i++ {
		s := tr.StartServer(http.Header{}, time.Now())
		s.SetName("GET", "r")
		s.Set(AttrURLPath, strings.Repeat("/p", 100*i))
		s.buf = putLen(appendSpanTail(appendWellKnown(s.buf, &s.std), s), spanHeader, spanHeader-1)
		spans = append(spans, s)
	}
	body := enc.encode(nil, spans)
	var req collpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans[0].Spans) != 3 {
		t.Fatalf("request %v", &req)
	}
	got := map[string]string{}
	for _, kv := range req.ResourceSpans[0].Resource.Attributes {
		got[kv.Key] = kv.Value.GetStringValue()
	}
	for k, v := range map[string]string{"service.name": "meshgate-sidecar", AttrMeshService: "payments", AttrNodeName: "node-1",
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
		s := tr.StartServer(http.Header{}, time.Now())
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
		s := tr.StartServer(http.Header{}, time.Now())
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
		s := tr.StartServer(http.Header{}, time.Now())
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

type grpcCollector struct {
	collpb.UnimplementedTraceServiceServer
	mu      sync.Mutex
	reqs    []*collpb.ExportTraceServiceRequest
	md      []metadata.MD
	partial int64
}

func (c *grpcCollector) Export(ctx context.Context, req *collpb.ExportTraceServiceRequest) (*collpb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, req)
	c.md = append(c.md, md)
	resp := &collpb.ExportTraceServiceResponse{}
	if c.partial > 0 {
		resp.PartialSuccess = &collpb.ExportTracePartialSuccess{RejectedSpans: c.partial, ErrorMessage: "too old"}
	}
	return resp, nil
}

func (c *grpcCollector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reqs {
		n += len(r.ResourceSpans[0].ScopeSpans[0].Spans)
	}
	return n
}

// OTLP/gRPC to the OpenTelemetry collector service: headers travel as
// metadata, spans arrive whole, a partial success is counted.
func TestExportOTLPGRPC(t *testing.T) {
	col := &grpcCollector{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collpb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	tr, _ := newTestTracer(t, config.Tracing{Endpoint: ln.Addr().String(), Insecure: true, Headers: map[string]string{"X-Tenant": "t1"}}, nil, nil)
	for i := 0; i < 1200; i++ { // more than two full batches
		s := tr.StartServer(http.Header{}, time.Now())
		s.Set(AttrHTTPMethod, "GET")
		s.End(time.Now())
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := col.count(); n != 1200 {
		t.Fatalf("collector got %d spans, want 1200", n)
	}
	if got := col.md[0].Get("x-tenant"); len(got) != 1 || got[0] != "t1" {
		t.Errorf("metadata %v", col.md[0])
	}
	if got := counterValue(tr.pipe.exported); got != 1200 {
		t.Errorf("exported counter %v", got)
	}
	col.mu.Lock()
	col.partial = 1
	col.mu.Unlock()
	s := tr.StartServer(http.Header{}, time.Now())
	s.End(time.Now())
	_ = tr.ForceFlush(context.Background())
	if got := counterValue(tr.pipe.rejected); got != 1 {
		t.Errorf("rejected counter %v, want 1", got)
	}
}

// OTLP/HTTP: POST /v1/traces, protobuf, the configured headers; a server
// error fails the export.
func TestExportOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []*collpb.ExportTraceServiceRequest
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Authorization") != "Bearer x" {
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "unavailable", 503)
			return
		}
		var req collpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got = append(got, &req)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	tr, _ := newTestTracer(t, config.Tracing{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Protocol: "http", Insecure: true,
		Headers: map[string]string{"Authorization": "Bearer x"}}, nil, nil)
	s := tr.StartServer(http.Header{}, time.Now())
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
	s = tr.StartServer(http.Header{}, time.Now())
	s.End(time.Now())
	_ = tr.ForceFlush(context.Background())
	if v := counterValue(tr.pipe.droppedFailed); v != 1 {
		t.Errorf("export_failed %v after a 503", v)
	}
}

// Spans that are not sampled, or not made at all (nil), cost nothing to
// set: no allocation.
func TestUnsampledSpanDoesNotAllocate(t *testing.T) {
	tr, _ := newTestTracer(t, config.Tracing{Sampling: config.TracingSampling{Ratio: ratio(0)}}, &memExporter{}, nil)
	h := http.Header{}
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		s := tr.StartServer(h, now)
		s.Set(AttrHTTPMethod, "GET")
		s.SetString("k", "v")
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

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
