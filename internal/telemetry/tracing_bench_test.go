package telemetry

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// encodingExporter encodes every batch as the OTLP exporter does and
// discards it.
type encodingExporter struct {
	enc otlpEncoder
	buf []byte
	n   int
}

func (e *encodingExporter) ExportSpans(_ context.Context, spans []*Span) error {
	e.buf = e.enc.encode(e.buf[:0], spans)
	e.n += len(e.buf)
	return nil
}

func (e *encodingExporter) Shutdown(context.Context) error { return nil }

func benchTracer(b *testing.B, exp SpanExporter) *Tracer {
	ratio := 1.0
	tr, err := NewTracer(config.Tracing{Endpoint: "127.0.0.1:4317", Insecure: true, Sampling: config.TracingSampling{Ratio: &ratio}},
		TracerOptions{Metrics: NewMetrics(), Exporter: exp})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// BenchmarkTracedRequest is the tracing work of one proxied request: the
// server span with the attributes the listener sets, one attempt's client
// span injected into the outbound headers, both ended, and their share of
// the export (encoding, on the exporter goroutine).
func BenchmarkTracedRequest(b *testing.B) {
	exp := &encodingExporter{}
	tr := benchTracer(b, exp)
	exp.enc = newOTLPEncoder(tr.resource)
	in := http.Header{"User-Agent": {"wrk"}}
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		s := tr.StartServer(in, now)
		s.SetName("GET", "")
		s.Set(AttrHTTPMethod, "GET")
		s.Set(AttrURLScheme, "http")
		s.Set(AttrServerAddress, "127.0.0.1")
		s.SetInt64(AttrServerPort, 8080)
		s.Set(AttrNetworkPeerAddress, "127.0.0.1")
		s.Set(AttrNetworkProtocolVersion, "1.1")
		s.Set(AttrUserAgent, "wrk")
		s.SetString("meshgate.request_id", "6f1c2a9d0b3e4f51-1a")
		c := s.StartClient(now)
		c.Inject(out, false)
		c.SetName("GET", "backend")
		c.Set(AttrHTTPMethod, "GET")
		c.Set(AttrURLScheme, "http")
		c.Set(AttrURLPath, "/")
		c.Set(AttrServerAddress, "127.0.0.1")
		c.SetInt64(AttrServerPort, 8081)
		c.Set(AttrUpstream, "backend")
		c.SetInt64(AttrHTTPStatusCode, 200)
		c.End(now)
		s.Set(AttrURLPath, "/")
		s.SetName("GET", "all")
		s.Set(AttrHTTPRoute, "/")
		s.Set(AttrRoute, "all")
		s.Set(AttrUpstream, "backend")
		s.SetInt64(AttrHTTPStatusCode, 200)
		s.End(now)
	}
	b.StopTimer()
	_ = tr.ForceFlush(context.Background())
	b.ReportMetric(float64(exp.n)/float64(b.N)/2, "B/span")
}

// BenchmarkTracedRequestUnsampled is the same for a trace not sampled:
// only the context is carried on.
func BenchmarkTracedRequestUnsampled(b *testing.B) {
	tr := benchTracer(b, &encodingExporter{})
	tr.rootBound = 0
	in := http.Header{}
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		s := tr.StartServer(in, now)
		c := s.StartClient(now)
		c.Inject(out, false)
		c.End(now)
		s.End(now)
	}
}

// BenchmarkOTLPEncode builds a request of 512 ended server spans like the
// proxy's (their encoding was done as they were built).
func BenchmarkOTLPEncode(b *testing.B) {
	tr := benchTracer(b, &encodingExporter{})
	in := http.Header{}
	spans := make([]*Span, 512)
	now := time.Now()
	for i := range spans {
		s := tr.StartServer(in, now)
		s.SetName("GET", "all")
		for _, k := range []string{"http.request.method", "url.scheme", "server.address", "network.peer.address", "network.protocol.version",
			"user_agent.original", "meshgate.request_id", "url.path", "http.route", "meshgate.route", "meshgate.upstream"} {
			s.SetString(k, "some value")
		}
		s.SetInt("server.port", 8080)
		s.SetInt("http.response.status_code", 200)
		s.end = now
		s.buf = putLen(appendSpanTail(s.buf, s), spanHeader, spanHeader-1) // as End does
		spans[i] = s
	}
	enc := newOTLPEncoder(tr.resource)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.encode(buf[:0], spans)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	b.ReportMetric(float64(len(buf))/float64(len(spans)), "B/span")
}
