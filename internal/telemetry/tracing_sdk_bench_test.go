package telemetry

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// marshalClient is an otlptrace.Client that marshals every upload as
// otlptracegrpc does and discards it: the official exporter's work
// without the network, the same share BenchmarkTracedRequest counts.
type marshalClient struct{ n int }

func (c *marshalClient) Start(context.Context) error { return nil }
func (c *marshalClient) Stop(context.Context) error  { return nil }
func (c *marshalClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	for _, r := range rs {
		b, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		c.n += len(b)
	}
	return nil
}

// BenchmarkTracedRequestOTelSDK does what BenchmarkTracedRequest does with
// the OpenTelemetry Go SDK (always-on sampler, batch span processor, the
// otlptrace exporter's transform and proto marshalling). It is here as the
// measured reason the proxy has its own span recorder: compare ns/op and
// allocs/op of the two.
func BenchmarkTracedRequestOTelSDK(b *testing.B) {
	client := &marshalClient{}
	exp, err := otlptrace.New(context.Background(), client)
	if err != nil {
		b.Fatal(err)
	}
	res := sdkresource.NewSchemaless(attribute.String("service.name", "meshgate-edge"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(1<<16), sdktrace.WithBlocking()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := tp.Tracer("meshgate")
	prop := propagation.TraceContext{}
	in := http.Header{"User-Agent": {"wrk"}}
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		ctx := prop.Extract(context.Background(), propagation.HeaderCarrier(in))
		ctx, s := tracer.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", "GET"),
			attribute.String("url.scheme", "http"),
			attribute.String("server.address", "127.0.0.1"),
			attribute.Int64("server.port", 8080),
			attribute.String("network.peer.address", "127.0.0.1"),
			attribute.String("network.protocol.version", "1.1"),
			attribute.String("user_agent.original", "wrk"),
			attribute.String("client.address", "203.0.113.195"),
		))
		cctx, c := tracer.Start(ctx, "GET backend", trace.WithSpanKind(trace.SpanKindClient))
		prop.Inject(cctx, propagation.HeaderCarrier(out))
		c.SetAttributes(
			attribute.String("http.request.method", "GET"),
			attribute.String("url.scheme", "http"),
			attribute.String("url.path", "/"),
			attribute.String("server.address", "127.0.0.1"),
			attribute.Int64("server.port", 8081),
			attribute.String("meshgate.upstream", "backend"),
			attribute.Int64("http.response.status_code", 200),
		)
		c.End()
		s.SetName("GET all")
		s.SetAttributes(
			attribute.String("url.path", "/"),
			attribute.String("http.route", "/"),
			attribute.String("meshgate.route", "all"),
			attribute.String("meshgate.upstream", "backend"),
			attribute.Int64("http.response.status_code", 200),
		)
		s.End()
	}
	b.StopTimer()
	_ = tp.ForceFlush(context.Background())
	b.ReportMetric(float64(client.n)/float64(b.N)/2, "B/span")
}
