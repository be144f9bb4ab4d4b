package telemetry

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/tracetest"
	collpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// endSpans ends n sampled server spans and flushes them.
func endSpans(t *testing.T, tr *Tracer, n int) {
	t.Helper()
	for range n {
		s := tr.StartServer(http.Header{}, time.Now(), false)
		s.Set(AttrHTTPMethod, "GET")
		s.End(time.Now())
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// httpCollector is an OTLP/HTTP receiver for tests: it answers each
// export with the status the test sets (200 by default) and, on 200, with
// a partial success of rejected spans when set.
type httpCollector struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int // the next answers, then 200
	rejected int64
	reqs     []*collpb.ExportTraceServiceRequest
	headers  []http.Header
	attempts atomic.Int64
}

func startHTTPCollector(t *testing.T) *httpCollector {
	c := &httpCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.attempts.Add(1)
		req, err := readOTLPHTTP(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.statuses) > 0 {
			code := c.statuses[0]
			c.statuses = c.statuses[1:]
			w.Header().Set("Retry-After", "0")
			http.Error(w, "try later", code)
			return
		}
		c.reqs = append(c.reqs, req)
		c.headers = append(c.headers, r.Header.Clone())
		resp := &collpb.ExportTraceServiceResponse{}
		if c.rejected > 0 {
			resp.PartialSuccess = &collpb.ExportTracePartialSuccess{RejectedSpans: c.rejected, ErrorMessage: "too old"}
		}
		b, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *httpCollector) endpoint() string { return strings.TrimPrefix(c.URL, "http://") }

func (c *httpCollector) count() (spans int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reqs {
		for _, rs := range r.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans += len(ss.Spans)
			}
		}
	}
	return spans
}

// A collector that is briefly unavailable (503, as the specification's
// transient errors) gets the batch on a retry: nothing is lost.
func TestOTLPHTTPRetriesTransientErrors(t *testing.T) {
	col := startHTTPCollector(t)
	col.statuses = []int{503}
	tr, _ := newTestTracer(t, config.Tracing{Endpoint: col.endpoint(), Protocol: "http", Insecure: true}, nil, nil)
	endSpans(t, tr, 3)
	if n := col.count(); n != 3 || col.attempts.Load() != 2 {
		t.Errorf("collector got %d spans in %d attempts, want 3 in 2", n, col.attempts.Load())
	}
	if exported, failed := counterValue(tr.pipe.exported), counterValue(tr.pipe.droppedFailed); exported != 3 || failed != 0 {
		t.Errorf("exported %v, export_failed %v", exported, failed)
	}
}

// A partial success — the collector took the batch but refused some of its
// spans — is counted as rejected spans, the rest as exported, with both
// OpenTelemetry clients (which report it as an error of their internal
// package: this pins how uploadResult recognises it).
func TestPartialSuccessFromClients(t *testing.T) {
	grpcCol := tracetest.StartCollector(t)
	httpCol := startHTTPCollector(t)
	for _, tc := range []struct {
		protocol, endpoint string
		reject             func(n int64)
	}{
		{"grpc", grpcCol.Addr(), grpcCol.SetPartial},
		{"http", httpCol.endpoint(), func(n int64) { httpCol.mu.Lock(); httpCol.rejected = n; httpCol.mu.Unlock() }},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			tr, _ := newTestTracer(t, config.Tracing{Endpoint: tc.endpoint, Protocol: tc.protocol, Insecure: true}, nil, nil)
			tc.reject(2)
			endSpans(t, tr, 5)
			tc.reject(0)
			if rejected, exported, failed := counterValue(tr.pipe.rejected), counterValue(tr.pipe.exported),
				counterValue(tr.pipe.droppedFailed); rejected != 2 || exported != 3 || failed != 0 {
				t.Errorf("rejected %v, exported %v, export_failed %v; want 2, 3, 0", rejected, exported, failed)
			}
		})
	}
}

// PartialSuccess has the shape of the clients' internal error type, which
// uploadResult recognises by name and fields.
type PartialSuccess struct {
	ErrorMessage  string
	RejectedItems int64
	RejectedKind  string
}

func (PartialSuccess) Error() string { return "partial" }

// A partial success joined with a failure is a failure; partial successes
// alone add up.
func TestUploadResult(t *testing.T) {
	ps := PartialSuccess{ErrorMessage: "too old", RejectedItems: 2}
	var got *PartialSuccessError
	if err := uploadResult(errors.Join(ps, PartialSuccess{RejectedItems: 3})); !errors.As(err, &got) || got.Rejected != 5 || got.Message != "too old" {
		t.Errorf("two partial successes: %v", err)
	}
	failure := errors.New("unavailable")
	if err := uploadResult(errors.Join(ps, failure)); errors.As(err, &got) || !errors.Is(err, failure) {
		t.Errorf("a partial success and a failure: %v", err)
	}
	if err := uploadResult(failure); err != failure { //nolint:errorlint // the same error
		t.Errorf("a failure: %v", err)
	}
	if uploadResult(nil) != nil {
		t.Error("nil")
	}
}

// The OpenTelemetry clients read OTEL_EXPORTER_OTLP_* themselves; the
// configuration (which took the environment in already, where the file
// left a field unset) wins: its endpoint, scheme, headers, encoding and
// compression are the ones used, whatever the variables say.
func TestConfigWinsOverClientEnvironment(t *testing.T) {
	k := newTestPKI(t)
	for name, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           "https://127.0.0.1:1",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    "https://127.0.0.1:2/elsewhere",
		"OTEL_EXPORTER_OTLP_INSECURE":           "false",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        k.caFile,
		"OTEL_EXPORTER_OTLP_HEADERS":            "x-tenant=env,x-env=1",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":    "http/json",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
		"OTEL_EXPORTER_OTLP_TIMEOUT":            "1",
	} {
		t.Setenv(name, v)
	}
	cfg := config.Tracing{Insecure: true, Headers: map[string]string{"X-Tenant": "t1"}, Compression: "none",
		ExportTimeout: config.Duration(5 * time.Second)}

	t.Run("grpc", func(t *testing.T) {
		col := tracetest.StartCollector(t)
		cfg := cfg
		cfg.Endpoint = col.Addr()
		tr, _ := newTestTracer(t, cfg, nil, nil)
		endSpans(t, tr, 2)
		if n := col.Count(); n != 2 {
			t.Fatalf("collector got %d spans", n)
		}
		md := col.Metadata()[0]
		if got := md.Get("x-tenant"); len(got) != 1 || got[0] != "t1" || len(md.Get("x-env")) != 0 {
			t.Errorf("metadata %v", md)
		}
	})
	t.Run("http", func(t *testing.T) {
		col := startHTTPCollector(t)
		cfg := cfg
		cfg.Endpoint, cfg.Protocol = col.endpoint(), "http"
		tr, _ := newTestTracer(t, cfg, nil, nil)
		endSpans(t, tr, 2)
		if n := col.count(); n != 2 {
			t.Fatalf("collector got %d spans", n)
		}
		col.mu.Lock()
		h := col.headers[0]
		col.mu.Unlock()
		if h.Get("X-Tenant") != "t1" || h.Get("X-Env") != "" || h.Get("Content-Encoding") != "" ||
			h.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("headers %v", h)
		}
	})
}

// countingListener counts the bytes read from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// tracing.compression chooses gzip or none over OTLP/gRPC (the
// environment's OTEL_EXPORTER_OTLP_COMPRESSION saying the opposite): the
// bytes on the wire tell.
func TestGRPCCompression(t *testing.T) {
	wire := map[string]int64{}
	for _, tc := range []struct{ compression, env string }{{"gzip", "none"}, {"none", "gzip"}} {
		t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", tc.env)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		srv := grpc.NewServer()
		col := &tracetest.Collector{}
		collpb.RegisterTraceServiceServer(srv, col)
		go func() { _ = srv.Serve(countingListener{ln, &n}) }()
		tr, _ := newTestTracer(t, config.Tracing{Endpoint: ln.Addr().String(), Insecure: true, Compression: tc.compression}, nil, nil)
		endSpans(t, tr, 200)
		_ = tr.Shutdown(context.Background())
		srv.Stop()
		if got := col.Count(); got != 200 {
			t.Fatalf("%s: collector got %d spans", tc.compression, got)
		}
		wire[tc.compression] = n.Load()
	}
	if wire["gzip"]*2 > wire["none"] {
		t.Errorf("bytes on the wire: gzip %d, none %d", wire["gzip"], wire["none"])
	}
	t.Logf("bytes on the wire for 200 spans: gzip %d, none %d", wire["gzip"], wire["none"])
}

// The batch handed to the client marshals back to the very bytes encoded
// here, and decodes with the official types.
func TestRawResourceSpansRoundTrip(t *testing.T) {
	col := &postCapture{}
	tr, _ := startTestTracer(t, config.Tracing{}, TracerOptions{post: col.post})
	c := &batch{}
	c.b = tr.pipe.enc.begin(c.b)
	for _, s := range benchSpans(tr, 3) {
		c.add(s.buf)
	}
	body := tr.pipe.enc.(*otlpExporter).enc.finish(c.b)
	rs, err := rawResourceSpans(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := proto.Marshal(&collpb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	if err != nil || !bytes.Equal(out, body) {
		t.Fatalf("marshalled %d bytes (%v), encoded %d", len(out), err, len(body))
	}
	if err := col.post(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if spans, err := col.spans(); err != nil || len(spans) != 3 || spans[0].Attributes == nil {
		t.Fatalf("%d spans decoded, %v", len(spans), err)
	}
	if _, err := rawResourceSpans(body[:len(body)-1]); err == nil {
		t.Error("a truncated batch passed")
	}
}
