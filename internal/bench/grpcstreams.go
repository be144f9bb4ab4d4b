package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// gRPC streams for the faults suite: bidirectional calls through the edge
// (h2c on its public listener) and a sidecar (HTTP/2 over mTLS, then h2c)
// to the backend, which echoes every message back on the call. The
// messages are raw bytes (rawCodec): no generated code, any method name.

// grpcEchoMethod is the call the streams make; the backend answers any.
const grpcEchoMethod = "/meshgate.bench.Echo/Stream"

// rawCodec passes a message's bytes (a *[]byte) through unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// grpcEcho is the backend's handler of every call: each message it
// receives goes back, until the client ends the call.
func grpcEcho(_ any, st grpc.ServerStream) error {
	var msg []byte
	for {
		if err := st.RecvMsg(&msg); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := st.SendMsg(&msg); err != nil {
			return err
		}
	}
}

// newGRPCEcho is the backend's gRPC server, served through its
// http.Handler (ServeHTTP) on the port that answers HTTP/1.1 too.
func newGRPCEcho() *grpc.Server {
	return grpc.NewServer(grpc.UnknownServiceHandler(grpcEcho), grpc.ForceServerCodec(rawCodec{}))
}

// isGRPC reports whether r is a gRPC call (HTTP/2, Content-Type
// application/grpc…).
func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// grpcStream is one open call, on a connection of its own (as separate
// clients have).
type grpcStream struct {
	conn   *grpc.ClientConn
	st     grpc.ClientStream
	cancel context.CancelFunc
}

// openGRPCStreams opens n calls through the edge at addr (host:port).
func openGRPCStreams(addr string, n int) (*streams, error) {
	return openEchoers(n, func() (echoer, error) { return grpcDial(addr) })
}

func grpcDial(addr string) (*grpcStream, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true},
		grpcEchoMethod, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	g := &grpcStream{conn: conn, st: st, cancel: cancel}
	// The call is up once the first echo is back (NewStream does not wait
	// for the server).
	if err := g.echo("hello"); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

func (g *grpcStream) echo(msg string) error {
	out := []byte(msg)
	late := time.AfterFunc(streamWait, g.cancel) // a call that hangs is dropped
	defer late.Stop()
	if err := g.st.SendMsg(&out); err != nil {
		return err
	}
	var got []byte
	if err := g.st.RecvMsg(&got); err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, sent %q", got, msg)
	}
	return nil
}

func (g *grpcStream) Close() error {
	_ = g.st.CloseSend()
	g.cancel()
	return g.conn.Close()
}
