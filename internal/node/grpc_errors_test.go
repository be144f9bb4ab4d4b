package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// Errors the edge generates reach gRPC clients as gRPC statuses, never as
// an HTTP error with a JSON body the client cannot read.
func TestGRPCErrorsAreGRPCStatuses(t *testing.T) {
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: dead
    match: {path: {prefix: /grpc.testing.TestService/UnaryCall}}
    upstream: dead
upstreams: [{name: dead, protocol: h2c, endpoints: [{address: %q}]}]
`, deadAddr(t)))
	client := grpcDial(t, strings.TrimPrefix(e.url("public"), "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.UnaryCall(ctx, &pb.SimpleRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "upstream connect failed") {
		t.Errorf("dead upstream: %v, want Unavailable with the reason", err)
	}
	_, err = client.EmptyCall(ctx, &pb.Empty{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "no route") {
		t.Errorf("no route: %v, want Unimplemented", err)
	}
}
