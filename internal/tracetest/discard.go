package tracetest

import (
	"context"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

// DiscardCollector is an OTLP/gRPC trace receiver that reads every export
// and throws it away undecoded: what an exporter costs stays in a
// measurement, a collector's does not. It counts exports and bytes. The
// benchmarks use it; it needs no testing.TB.
type DiscardCollector struct {
	addr           string
	srv            *grpc.Server
	bytes, exports atomic.Int64
}

// StartDiscardCollector serves one on a loopback port until Stop.
func StartDiscardCollector() (*DiscardCollector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &DiscardCollector{addr: ln.Addr().String(), srv: grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))}
	c.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Export",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, err
				}
				c.bytes.Add(int64(len(in)))
				c.exports.Add(1)
				out := []byte{} // an empty ExportTraceServiceResponse
				return &out, nil
			}}},
	}, struct{}{})
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// Addr is the collector's host:port.
func (c *DiscardCollector) Addr() string { return c.addr }

// Bytes is the size of every export received so far; Exports their number.
func (c *DiscardCollector) Bytes() int64   { return c.bytes.Load() }
func (c *DiscardCollector) Exports() int64 { return c.exports.Load() }

// Stop closes the collector.
func (c *DiscardCollector) Stop() { c.srv.Stop() }

// rawCodec passes message bytes through: the collector does not decode.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
