package tracetest

import (
	"context"
	"net"
	"sync"
	"testing"

	collpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Collector is an in-process OTLP/gRPC trace receiver for tests: the
// OpenTelemetry collector service, decoded with the official proto types.
// It keeps every export request with its metadata.
type Collector struct {
	collpb.UnimplementedTraceServiceServer
	addr string

	mu      sync.Mutex
	reqs    []*collpb.ExportTraceServiceRequest
	md      []metadata.MD
	partial int64
}

// StartCollector serves a Collector on a loopback port until the test
// ends; opts configure the server (grpc.Creds for TLS).
func StartCollector(t testing.TB, opts ...grpc.ServerOption) *Collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{addr: ln.Addr().String()}
	srv := grpc.NewServer(opts...)
	collpb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return c
}

// Addr is the collector's host:port.
func (c *Collector) Addr() string { return c.addr }

// Export takes a request; with SetPartial it reports spans rejected.
func (c *Collector) Export(ctx context.Context, req *collpb.ExportTraceServiceRequest) (*collpb.ExportTraceServiceResponse, error) {
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

// SetPartial makes later exports answer that n of their spans were rejected.
func (c *Collector) SetPartial(n int64) {
	c.mu.Lock()
	c.partial = n
	c.mu.Unlock()
}

// Metadata returns the gRPC metadata of each export so far.
func (c *Collector) Metadata() []metadata.MD {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]metadata.MD(nil), c.md...)
}

// Spans returns every span received so far, each with the attributes of
// its resource.
func (c *Collector) Spans() (spans []*tracepb.Span, resources [][]*commonpb.KeyValue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reqs {
		for _, rs := range r.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
				for range ss.Spans {
					resources = append(resources, rs.Resource.GetAttributes())
				}
			}
		}
	}
	return spans, resources
}

// Count is the number of spans received so far.
func (c *Collector) Count() int {
	s, _ := c.Spans()
	return len(s)
}
