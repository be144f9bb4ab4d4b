package tracetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// newProvider returns a tracer provider of service that batches into exp,
// shut down when t ends.
func newProvider(t *testing.T, exp sdktrace.SpanExporter, service string) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", service),
			attribute.String("service.version", "1.2.3"),
		)),
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			t.Errorf("tracer provider shutdown: %v", err)
		}
	})
	return tp
}

// A parent and a child span, exported over OTLP gRPC by the SDK, come back
// from the real Jaeger's query API linked, named and tagged as sent.
func TestJaegerOTLPGRPC(t *testing.T) {
	j := StartJaeger(t)
	ctx := t.Context()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(j.OTLPEndpoint()))
	if err != nil {
		t.Fatal(err)
	}
	const service = "tracetest-grpc"
	tp := newProvider(t, exp, service)
	tracer := tp.Tracer("github.com/meshgate/meshgate/internal/tracetest")

	pctx, parent := tracer.Start(ctx, "GET /orders/{id}", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.route", "/orders/{id}"),
			attribute.Int64("big", 1<<60), // beyond float64's exact integers
			attribute.Bool("cached", false),
			attribute.Float64("ratio", 0.25),
		))
	_, child := tracer.Start(pctx, "inventory.Reserve", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("peer.service", "inventory")))
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	child.End()
	parent.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	traceID := parent.SpanContext().TraceID().String()
	tr := j.WaitTrace(t, traceID, func(tr *Trace) bool { return len(tr.Spans) == 2 }, 30*time.Second)

	p, c := tr.SpanByName("GET /orders/{id}"), tr.SpanByName("inventory.Reserve")
	if p == nil || c == nil {
		t.Fatalf("spans missing:\n%s", tr)
	}
	if p.SpanID != parent.SpanContext().SpanID().String() || c.SpanID != child.SpanContext().SpanID().String() {
		t.Errorf("span IDs: parent %s child %s, sent %s and %s", p.SpanID, c.SpanID,
			parent.SpanContext().SpanID(), child.SpanContext().SpanID())
	}
	if p.ParentSpanID != "" || c.ParentSpanID != p.SpanID || tr.Parent(c) != p {
		t.Errorf("parent links wrong:\n%s", tr)
	}
	if kids := tr.Children(p); len(kids) != 1 || kids[0] != c {
		t.Errorf("Children(parent) = %v, want the child", kids)
	}
	if roots := tr.Roots(); len(roots) != 1 || roots[0] != p {
		t.Errorf("Roots() = %v, want the parent", roots)
	}
	for _, s := range tr.Spans {
		if s.Service != service || s.TraceID != traceID {
			t.Errorf("span %s: service %q trace %s, want %q %s", s.OperationName, s.Service, s.TraceID, service, traceID)
		}
		if s.ProcessTags["service.version"] != "1.2.3" {
			t.Errorf("span %s: process tags %v, want service.version=1.2.3", s.OperationName, s.ProcessTags)
		}
	}
	for k, want := range map[string]any{
		"http.route": "/orders/{id}",
		"big":        int64(1 << 60),
		"cached":     false,
		"ratio":      0.25,
		"span.kind":  "server",
	} {
		if got, ok := p.Tags[k]; !ok || got != want {
			t.Errorf("parent tag %s = %#v (present %v), want %#v", k, got, ok, want)
		}
	}
	if c.Tags["peer.service"] != "inventory" || c.Tags["span.kind"] != "client" {
		t.Errorf("child tags = %v", c.Tags)
	}
	if len(c.Logs) != 1 || c.Logs[0].Fields["event"] != "retry" || c.Logs[0].Fields["attempt"] != int64(2) {
		t.Errorf("child logs = %+v, want the retry event with attempt=2", c.Logs)
	}
	if c.Start.Before(p.Start) || p.Duration <= 0 || time.Since(p.Start) > time.Minute {
		t.Errorf("times: parent %v+%v child %v+%v", p.Start, p.Duration, c.Start, c.Duration)
	}

	services, err := j.Services(ctx)
	if err != nil || !slices.Contains(services, service) {
		t.Errorf("Services() = %v, %v; want %s among them", services, err, service)
	}
	traces, err := j.Traces(ctx, service)
	if err != nil || len(traces) != 1 || traces[0].TraceID != traceID {
		t.Errorf("Traces(%s) = %d traces, %v; want just %s", service, len(traces), err, traceID)
	}
	if _, err := j.Trace(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Trace(unknown) = %v, want ErrNotFound", err)
	}
}

// The OTLP HTTP receiver works too.
func TestJaegerOTLPHTTP(t *testing.T) {
	j := StartJaeger(t)
	ctx := t.Context()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithInsecure(), otlptracehttp.WithEndpoint(j.OTLPHTTPEndpoint()))
	if err != nil {
		t.Fatal(err)
	}
	tp := newProvider(t, exp, "tracetest-http")
	_, span := tp.Tracer("tracetest").Start(ctx, "one")
	span.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	tr := j.WaitTrace(t, span.SpanContext().TraceID().String(), nil, 30*time.Second)
	if s := tr.SpanByName("one"); s == nil || s.Service != "tracetest-http" {
		t.Errorf("got:\n%s", tr)
	}
}
