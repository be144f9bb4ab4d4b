package telemetry

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// discard is the transport of an OTLP exporter that counts the bytes of
// the requests it is given and drops them: the tracer's whole path, from
// span to request, without the network.
type discard struct{ n atomic.Int64 }

func (d *discard) post(_ context.Context, body []byte) error {
	d.n.Add(int64(len(body)))
	return nil
}

func benchTracer(b *testing.B, post func(context.Context, []byte) error) *Tracer {
	ratio := 1.0
	tr, err := NewTracer(config.Tracing{Endpoint: "127.0.0.1:4317", Insecure: true, Sampling: config.TracingSampling{Ratio: &ratio}},
		TracerOptions{Metrics: NewMetrics(), post: post})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// BenchmarkTracedRequest is the tracing work of one proxied request: the
// server span with the attributes the listener sets, one attempt's client
// span injected into the outbound headers, both ended, and their share of
// the export (the copy into the batch, and the batch's envelope, on the
// exporter goroutine).
func BenchmarkTracedRequest(b *testing.B) {
	d := &discard{}
	tr := benchTracer(b, d.post)
	in := http.Header{"User-Agent": {"wrk"}}
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		s := tr.StartServer(in, now, false)
		s.SetName("GET", "")
		s.Set(AttrHTTPMethod, "GET")
		s.Set(AttrURLScheme, "http")
		s.Set(AttrServerAddress, "127.0.0.1")
		s.SetInt64(AttrServerPort, 8080)
		s.Set(AttrNetworkPeerAddress, "127.0.0.1")
		s.Set(AttrNetworkProtocolVersion, "1.1")
		s.Set(AttrUserAgent, "wrk")
		s.Set(AttrClientAddress, "203.0.113.195")
		c := s.StartClient(now)
		c.Inject(out, s.FromB3())
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
	b.ReportMetric(float64(d.n.Load())/float64(b.N)/2, "B/span")
}

// BenchmarkTracedRequestUnsampled is the same for a trace not sampled:
// only the context is carried on.
func BenchmarkTracedRequestUnsampled(b *testing.B) {
	tr := benchTracer(b, (&discard{}).post)
	tr.rootBound = 0
	in := http.Header{}
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		s := tr.StartServer(in, now, false)
		c := s.StartClient(now)
		c.Inject(out, s.FromB3())
		c.End(now)
		s.End(now)
	}
}

// BenchmarkOTLPEncode builds and sends (to nowhere) a request of 512 ended
// server spans like the proxy's, as the pipeline does: each span's
// encoding (done as it was built) copied into the batch, then the
// envelope.
func BenchmarkOTLPEncode(b *testing.B) {
	d := &discard{}
	tr := benchTracer(b, d.post)
	spans := benchSpans(tr, 512)
	p := tr.pipe
	c := &batch{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.b, c.n = p.enc.begin(c.b), 0
		for _, s := range spans {
			c.add(s.buf)
		}
		if err := p.enc.send(ctx, c.b); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	b.ReportMetric(float64(d.n.Load())/float64(b.N*len(spans)), "B/span")
}
