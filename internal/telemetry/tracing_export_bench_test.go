package telemetry

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/tracetest"
)

// BenchmarkExportBatch is the exporter goroutine's work for one full batch
// of 512 proxy-like server spans sent over OTLP/gRPC to a collector that
// reads and discards them: the envelope, the conversion to the protobuf
// types the OpenTelemetry client takes, its marshalling and compression,
// and the call. ns/span and allocs/span are what tracing costs off the
// request path, on the same cores.
func BenchmarkExportBatch(b *testing.B) {
	for _, compression := range []string{"none", "gzip"} {
		b.Run("compression="+compression, func(b *testing.B) { benchExportBatch(b, compression) })
	}
}

func benchExportBatch(b *testing.B, compression string) {
	col, err := tracetest.StartDiscardCollector()
	if err != nil {
		b.Fatal(err)
	}
	defer col.Stop()
	ratio := 1.0
	cfg := config.Tracing{Endpoint: col.Addr(), Insecure: true, Sampling: config.TracingSampling{Ratio: &ratio}}
	cfg.Compression = compression
	tr, err := NewTracer(cfg, TracerOptions{Metrics: NewMetrics()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
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
	n := float64(b.N * len(spans))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
	b.ReportMetric(float64(col.Bytes())/n, "wireB/span")
}

// benchSpans makes n ended server spans with the proxy's attributes.
func benchSpans(tr *Tracer, n int) []*Span {
	in := http.Header{}
	spans := make([]*Span, n)
	now := time.Now()
	for i := range spans {
		s := tr.StartServer(in, now, false)
		s.SetName("GET", "all")
		for _, a := range []Attr{AttrHTTPMethod, AttrURLScheme, AttrServerAddress, AttrNetworkPeerAddress, AttrNetworkProtocolVersion,
			AttrUserAgent, AttrClientAddress, AttrURLPath, AttrHTTPRoute, AttrRoute, AttrUpstream} {
			s.Set(a, "some value")
		}
		s.SetInt64(AttrServerPort, 8080)
		s.SetInt64(AttrHTTPStatusCode, 200)
		s.end = now
		s.buf = appendWellKnown(s.buf, &s.std)
		s.buf = putLen(appendSpanTail(s.buf, s), spanHeader, spanHeader-1) // as End does
		spans[i] = s
	}
	return spans
}
