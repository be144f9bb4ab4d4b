package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

// discardCollector is an OTLP/gRPC trace receiver that reads each export
// and throws it away without decoding it (the cost of a collector stays
// out of the measurement, the exporter's is real). It counts the bytes.
type discardCollector struct {
	addr  string
	bytes atomic.Int64
}

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func startDiscardCollector(tb testing.TB) *discardCollector {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &discardCollector{addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Export", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			c.bytes.Add(int64(len(in)))
			out := []byte{}
			return &out, nil
		}}},
	}, struct{}{})
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(srv.Stop)
	return c
}

// BenchmarkEdgeProxyTraced is BenchmarkEdgeProxy with tracing on: every
// request sampled and exported over OTLP/gRPC to a collector that discards
// (sampled), or none sampled (ratio 0: the context is still propagated).
func BenchmarkEdgeProxyTraced(b *testing.B) {
	for _, mode := range []struct {
		name  string
		ratio string
	}{{"sampled", "1"}, {"unsampled", "0"}} {
		b.Run(mode.name, func(b *testing.B) {
			col := startDiscardCollector(b)
			body := strings.Repeat("x", 1024)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1024")
				_, _ = io.WriteString(w, body)
			}))
			defer backend.Close()
			t := &testing.T{}
			e := startNode(b, t, fmt.Sprintf(`
tracing: {endpoint: %q, insecure: true, sampling: {ratio: %s}}
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: u}
upstreams:
  - {name: u, protocol: http1, endpoints: [{address: %q}]}
`, col.addr, mode.ratio, addr(backend)), Options{})
			benchGets(b, e)
			b.StopTimer()
			if mode.ratio == "1" {
				_ = e.node.Tracer().ForceFlush(context.Background())
				if col.bytes.Load() == 0 {
					b.Fatal("nothing exported")
				}
			}
		})
	}
}
