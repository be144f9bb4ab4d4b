package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcBackend is a grpc-go TestService on plain h2c, recording what it saw.
type grpcBackend struct {
	pb.UnimplementedTestServiceServer
	name string
	addr string
	// entered receives one value when a "block" call starts; canceled the
	// context error it ended with.
	entered  chan struct{}
	canceled chan error
	calls    atomic.Int64
	// unavailable makes every unary call fail with Unavailable.
	unavailable atomic.Bool
}

func startGRPCBackend(t *testing.T, name string) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{name: name, addr: ln.Addr().String(), entered: make(chan struct{}, 16), canceled: make(chan error, 16)}
	srv := grpc.NewServer()
	pb.RegisterTestServiceServer(srv, b)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return b
}

// UnaryCall:
//   - body "block": waits for the context to end and reports it;
//   - ResponseStatus set: fails with that code, message and a Payload detail
//     (after sending headers when the body is "headers-first");
//   - otherwise echoes the body, reports incoming metadata in Username and
//     sets response header and trailer metadata.
func (b *grpcBackend) UnaryCall(ctx context.Context, req *pb.SimpleRequest) (*pb.SimpleResponse, error) {
	b.calls.Add(1)
	if b.unavailable.Load() {
		return nil, status.Error(codes.Unavailable, "backend "+b.name+" is draining")
	}
	body := string(req.GetPayload().GetBody())
	if body == "block" {
		b.entered <- struct{}{}
		<-ctx.Done()
		b.canceled <- ctx.Err()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if rs := req.GetResponseStatus(); rs != nil {
		if body == "headers-first" {
			if err := grpc.SendHeader(ctx, metadata.Pairs("x-early", "1")); err != nil {
				return nil, err
			}
		}
		st, err := status.New(codes.Code(rs.Code), rs.Message).WithDetails(&pb.Payload{Body: []byte("detail-" + b.name)})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	md, _ := metadata.FromIncomingContext(ctx)
	reqBin := ""
	if v := md.Get("x-req-bin"); len(v) == 1 {
		reqBin = fmt.Sprintf("%x", v[0])
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-resp-header", "h-"+b.name, "x-resp-bin", string([]byte{0, 1, 0xfe, 0xff})))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-resp-trailer", "t-"+b.name, "x-trailer-bin", string([]byte{9, 8, 7})))
	seenMD := fmt.Sprintf("x-req=%s;x-req-bin=%s;xff=%s;request-id=%s",
		strings.Join(md.Get("x-req"), ","), reqBin, strings.Join(md.Get("x-forwarded-for"), ","), strings.Join(md.Get("x-request-id"), ","))
	return &pb.SimpleResponse{Payload: &pb.Payload{Body: []byte("echo:" + body)}, Username: seenMD, ServerId: b.name}, nil
}

// StreamingOutputCall sends one message per ResponseParameters, of that
// size, numbered, then ends with ResponseStatus if set.
func (b *grpcBackend) StreamingOutputCall(req *pb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[pb.StreamingOutputCallResponse]) error {
	b.calls.Add(1)
	for i, p := range req.GetResponseParameters() {
		if err := s.Send(&pb.StreamingOutputCallResponse{Payload: &pb.Payload{Body: numbered(i, int(p.GetSize()))}}); err != nil {
			return err
		}
	}
	if rs := req.GetResponseStatus(); rs != nil {
		return status.Error(codes.Code(rs.Code), rs.Message)
	}
	return nil
}

// StreamingInputCall checks that message i is numbered i and returns the
// total payload size; out of order → FailedPrecondition.
func (b *grpcBackend) StreamingInputCall(s grpc.ClientStreamingServer[pb.StreamingInputCallRequest, pb.StreamingInputCallResponse]) error {
	b.calls.Add(1)
	total := 0
	for i := 0; ; i++ {
		m, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&pb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		body := m.GetPayload().GetBody()
		if want := numbered(i, len(body)); !bytes.Equal(body, want) {
			return status.Errorf(codes.FailedPrecondition, "message %d out of order: %.12q", i, body)
		}
		total += len(body)
	}
}

// FullDuplexCall answers each message at once with "<name>:<body>".
func (b *grpcBackend) FullDuplexCall(s grpc.BidiStreamingServer[pb.StreamingOutputCallRequest, pb.StreamingOutputCallResponse]) error {
	b.calls.Add(1)
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		reply := b.name + ":" + string(m.GetPayload().GetBody())
		if err := s.Send(&pb.StreamingOutputCallResponse{Payload: &pb.Payload{Body: []byte(reply)}}); err != nil {
			return err
		}
	}
}

// numbered is a payload of size bytes (at least the prefix) starting with i.
func numbered(i, size int) []byte {
	p := []byte(fmt.Sprintf("msg-%05d|", i))
	for len(p) < size {
		p = append(p, byte('a'+(len(p)+i)%26))
	}
	return p
}

func grpcEdgeConfig(protocol, backend string) string {
	return fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: grpc
    match: {path: {prefix: /grpc.testing.TestService}}
    upstream: g
upstreams:
  - {name: g, protocol: %s, endpoints: [{address: %q}]}
`, protocol, backend)
}

// grpcDial returns a TestService client of the edge's public listener.
func grpcDial(t *testing.T, target string, opts ...grpc.DialOption) pb.TestServiceClient {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient("passthrough:///"+target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewTestServiceClient(cc)
}

func TestGRPCThroughEdge(t *testing.T) {
	for _, protocol := range []string{"h2c", "auto"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			be := startGRPCBackend(t, "g1")
			e := startEdge(t, grpcEdgeConfig(protocol, be.addr))
			client := grpcDial(t, e.node.Addr("public"))
			t.Run("unary-metadata", func(t *testing.T) { grpcUnaryMetadata(t, client) })
			t.Run("status-details", func(t *testing.T) { grpcStatusDetails(t, client) })
			t.Run("server-streaming", func(t *testing.T) { grpcServerStreaming(t, client) })
			t.Run("client-streaming", func(t *testing.T) { grpcClientStreaming(t, client) })
			t.Run("bidi-ping-pong", func(t *testing.T) { grpcPingPong(t, client, "g1", 50) })
			t.Run("deadline", func(t *testing.T) { grpcDeadline(t, client, be) })
			t.Run("cancel", func(t *testing.T) { grpcCancel(t, client, be) })
		})
	}
}

func grpcUnaryMetadata(t *testing.T, client pb.TestServiceClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-req", "hello", "x-req-bin", string([]byte{0, 0xff, 0x10}))
	var hdr, trl metadata.MD
	resp, err := client.UnaryCall(ctx, &pb.SimpleRequest{Payload: &pb.Payload{Body: []byte("ping")}}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatalf("UnaryCall: %v", err)
	}
	if got := string(resp.GetPayload().GetBody()); got != "echo:ping" || resp.GetServerId() != "g1" {
		t.Errorf("response %q from %q", got, resp.GetServerId())
	}
	// Request metadata, text and binary, reached the server, and the edge
	// added its forwarding headers (proof the call went through it; a
	// sidecar between extends them: 127.0.0.1, 127.0.0.1).
	seenMD := resp.GetUsername()
	for _, want := range []string{"x-req=hello;", "x-req-bin=00ff10;", "xff=127.0.0.1"} {
		if !strings.Contains(seenMD, want) {
			t.Errorf("server saw metadata %q, want it to contain %q", seenMD, want)
		}
	}
	if id := hdr.Get("x-request-id"); len(id) != 1 || !strings.Contains(seenMD, "request-id="+id[0]) {
		t.Errorf("x-request-id: client header %v, server saw %q", id, seenMD)
	}
	if got := hdr.Get("x-resp-header"); len(got) != 1 || got[0] != "h-g1" {
		t.Errorf("response header metadata x-resp-header = %v (all: %v)", got, hdr)
	}
	if got := hdr.Get("x-resp-bin"); len(got) != 1 || got[0] != string([]byte{0, 1, 0xfe, 0xff}) {
		t.Errorf("response header metadata x-resp-bin = %q", got)
	}
	if got := trl.Get("x-resp-trailer"); len(got) != 1 || got[0] != "t-g1" {
		t.Errorf("trailer metadata x-resp-trailer = %v (all: %v)", got, trl)
	}
	if got := trl.Get("x-trailer-bin"); len(got) != 1 || got[0] != string([]byte{9, 8, 7}) {
		t.Errorf("trailer metadata x-trailer-bin = %q", got)
	}
}

func grpcStatusDetails(t *testing.T, client pb.TestServiceClient) {
	// Trailers-only (no header sent before the error), and an error after
	// response headers went out: the status travels in the trailers.
	for _, body := range []string{"trailers-only", "headers-first"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var hdr metadata.MD
		_, err := client.UnaryCall(ctx, &pb.SimpleRequest{
			Payload:        &pb.Payload{Body: []byte(body)},
			ResponseStatus: &pb.EchoStatus{Code: int32(codes.NotFound), Message: "no such item: 42 ünïcødé %"},
		}, grpc.Header(&hdr))
		cancel()
		st, ok := status.FromError(err)
		if !ok || st.Code() != codes.NotFound || st.Message() != "no such item: 42 ünïcødé %" {
			t.Errorf("%s: got %v, want NotFound with the message", body, err)
			continue
		}
		details := st.Details()
		if len(details) != 1 {
			t.Errorf("%s: details %v", body, details)
			continue
		}
		if p, ok := details[0].(*pb.Payload); !ok || string(p.GetBody()) != "detail-g1" {
			t.Errorf("%s: detail %#v", body, details[0])
		}
		if body == "headers-first" && len(hdr.Get("x-early")) != 1 {
			t.Errorf("%s: header metadata sent before the error lost: %v", body, hdr)
		}
	}
	// A status after some messages of a server stream.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := client.StreamingOutputCall(ctx, &pb.StreamingOutputCallRequest{
		ResponseParameters: []*pb.ResponseParameters{{Size: 10}, {Size: 10}, {Size: 10}},
		ResponseStatus:     &pb.EchoStatus{Code: int32(codes.ResourceExhausted), Message: "quota"},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := stream.Recv()
		if err != nil {
			if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted || st.Message() != "quota" || n != 3 {
				t.Errorf("stream ended after %d messages with %v, want 3 then ResourceExhausted", n, err)
			}
			break
		}
		n++
	}
}

func grpcServerStreaming(t *testing.T, client pb.TestServiceClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const count = 300
	params := make([]*pb.ResponseParameters, count)
	for i := range params {
		params[i] = &pb.ResponseParameters{Size: int32(16 + (i%40)*256)} // up to ~10 KiB, ~1.5 MiB in all
	}
	stream, err := client.StreamingOutputCall(ctx, &pb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < count; i++ {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := numbered(i, int(params[i].Size)); !bytes.Equal(m.GetPayload().GetBody(), want) {
			t.Fatalf("message %d: got %d bytes %.12q, want %.12q", i, len(m.GetPayload().GetBody()), m.GetPayload().GetBody(), want)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after %d messages: %v, want io.EOF (status OK)", count, err)
	}
}

func grpcClientStreaming(t *testing.T, client pb.TestServiceClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := client.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := 0; i < 200; i++ {
		body := numbered(i, 16+(i%20)*1000)
		total += len(body)
		if err := stream.Send(&pb.StreamingInputCallRequest{Payload: &pb.Payload{Body: body}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CloseAndRecv: %v", err)
	}
	if int(resp.GetAggregatedPayloadSize()) != total {
		t.Fatalf("server counted %d bytes, sent %d", resp.GetAggregatedPayloadSize(), total)
	}
}

// grpcPingPong sends one message at a time and waits for its reply before
// the next: it hangs (and fails on the deadline) if anything buffers.
func grpcPingPong(t *testing.T, client pb.TestServiceClient, backend string, rounds int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rounds; i++ {
		grpcExchange(t, stream, backend, fmt.Sprintf("ping-%d", i))
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want io.EOF", err)
	}
}

func grpcExchange(t *testing.T, stream grpc.BidiStreamingClient[pb.StreamingOutputCallRequest, pb.StreamingOutputCallResponse], backend, msg string) {
	t.Helper()
	if err := stream.Send(&pb.StreamingOutputCallRequest{Payload: &pb.Payload{Body: []byte(msg)}}); err != nil {
		t.Fatalf("send %q: %v", msg, err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	if got, want := string(m.GetPayload().GetBody()), backend+":"+msg; got != want {
		t.Fatalf("reply %q, want %q", got, want)
	}
}

func grpcDeadline(t *testing.T, client pb.TestServiceClient, be *grpcBackend) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.UnaryCall(ctx, &pb.SimpleRequest{Payload: &pb.Payload{Body: []byte("block")}})
	took := time.Since(start)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	if took > time.Second {
		t.Errorf("deadline of 200ms took %v", took)
	}
	grpcWaitCanceled(t, be)
}

// grpcCancel cancels a call without a deadline (no grpc-timeout reaches the
// server): only the edge passing on the client's RST_STREAM ends it there.
func grpcCancel(t *testing.T, client pb.TestServiceClient, be *grpcBackend) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(ctx, &pb.SimpleRequest{Payload: &pb.Payload{Body: []byte("block")}})
		errc <- err
	}()
	select {
	case <-be.entered:
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("the call did not reach the server")
	}
	cancel()
	select {
	case err := <-errc:
		if status.Code(err) != codes.Canceled {
			t.Errorf("got %v, want Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("canceled call did not return")
	}
	grpcWaitCanceled(t, be)
}

func grpcWaitCanceled(t *testing.T, be *grpcBackend) {
	t.Helper()
	select {
	case err := <-be.canceled:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("server context ended with %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the server's context was not canceled")
	}
	// The call's "entered" (sent before "canceled") must not be mistaken
	// for the next call's.
	select {
	case <-be.entered:
	default:
	}
}

func TestGRPCStreamSurvivesReload(t *testing.T) {
	be := startGRPCBackend(t, "g1")
	other := echoBackend(t, "other")
	base := grpcEdgeConfig("h2c", be.addr)
	e := startEdge(t, base)
	addr0 := e.node.Addr("public")
	client := grpcDial(t, addr0)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	grpcExchange(t, stream, "g1", "before")

	// 1: a new route and upstream; 2: an unrelated server setting changes;
	// 3: the gRPC upstream's own settings change, so its cluster (and pool)
	// is replaced under the open stream.
	reloads := []string{
		base + fmt.Sprintf(`  - {name: other, endpoints: [{address: %q}]}
`, addr(other)),
		strings.Replace(base, "log: {access: \"off\"}", "log: {access: \"off\"}\nserver: {trusted_proxies: [10.0.0.0/8]}", 1) +
			fmt.Sprintf("  - {name: other, endpoints: [{address: %q}]}\n", addr(other)),
		strings.Replace(base, "protocol: h2c,", "protocol: h2c, idle_timeout: 30s, max_idle_per_endpoint: 7,", 1),
	}
	reloads[0] = strings.Replace(reloads[0], "upstreams:", "  - name: other\n    match: {path: {prefix: /other}}\n    upstream: other\nupstreams:", 1)
	reloads[1] = strings.Replace(reloads[1], "upstreams:", "  - name: other\n    match: {path: {prefix: /other}}\n    upstream: other\nupstreams:", 1)
	if !strings.Contains(reloads[2], "idle_timeout: 30s") {
		t.Fatalf("config edit did not apply:\n%s", reloads[2])
	}
	for i, cfg := range reloads {
		e.write(cfg)
		if err := e.node.Reload(); err != nil {
			t.Fatalf("reload %d: %v\n%s", i+1, err, cfg)
		}
		if got := e.node.Addr("public"); got != addr0 {
			t.Fatalf("reload %d moved the listener from %s to %s", i+1, addr0, got)
		}
		grpcExchange(t, stream, "g1", fmt.Sprintf("after-reload-%d", i+1))
		if i == 0 {
			// The added route serves.
			status, _, body := get(t, nil, "GET", e.url("public")+"/other/x", nil)
			if status != 200 || decode(t, body).Name != "other" {
				t.Fatalf("new route: %d %s", status, body)
			}
		}
	}
	for i := 0; i < 10; i++ {
		grpcExchange(t, stream, "g1", fmt.Sprintf("still-%d", i))
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("old stream ended with %v, want io.EOF", err)
	}
	// New streams and calls after the reloads work, on the same client
	// connection and on a new one.
	grpcPingPong(t, client, "g1", 5)
	grpcPingPong(t, grpcDial(t, e.node.Addr("public")), "g1", 5)
	grpcUnaryMetadata(t, client)
}

// TestGRPCRetryOnUnavailable: a route that retries on grpc-unavailable
// (config.Retry.On) sends a failed unary call to the other endpoint. A gRPC
// request always has a body (the length-prefixed message), which the
// upstream has read before it can answer.
func TestGRPCRetryOnUnavailable(t *testing.T) {
	bad, good := startGRPCBackend(t, "bad"), startGRPCBackend(t, "good")
	bad.unavailable.Store(true)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: grpc
    match: {path: {prefix: /grpc.testing.TestService}}
    upstream: g
    retry: {attempts: 3, on: [grpc-unavailable], non_idempotent: true, backoff_base: 1ms, backoff_max: 2ms}
upstreams:
  - {name: g, protocol: h2c, endpoints: [{address: %q}, {address: %q}]}
`, bad.addr, good.addr))
	client := grpcDial(t, e.node.Addr("public"))
	failed := 0
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.UnaryCall(ctx, &pb.SimpleRequest{Payload: &pb.Payload{Body: []byte("x")}})
		cancel()
		if err != nil {
			failed++
			if status.Code(err) != codes.Unavailable {
				t.Errorf("call %d: %v", i, err)
			}
			continue
		}
		if resp.GetServerId() != "good" {
			t.Errorf("call %d answered by %q", i, resp.GetServerId())
		}
	}
	if failed > 0 {
		t.Errorf("%d of 10 calls failed with Unavailable (bad backend got %d calls, good %d): not retried", failed, bad.calls.Load(), good.calls.Load())
	}
}
