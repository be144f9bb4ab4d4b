package workload

import (
	"bytes"
	"context"
	"net"

	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// securityHeader is the metadata key every Workload API call must carry with
// the value "true".
const securityHeader = "workload.spiffe.io"

// api implements the Workload API for one socket. The JWT-SVID and WIT-SVID
// methods are left to the embedded Unimplemented server.
type api struct {
	workloadpb.UnimplementedSpiffeWorkloadAPIServer
	wl *workload
}

// errRemoved ends streams when their socket is removed or the server closes.
var errRemoved = status.Error(codes.Unavailable, "workload API socket closed")

func (a *api) FetchX509SVID(_ *workloadpb.X509SVIDRequest, stream grpc.ServerStreamingServer[workloadpb.X509SVIDResponse]) error {
	var sent *svidSet
	for {
		cur, changed := a.wl.watch()
		if cur != sent {
			if err := stream.Send(cur.svid); err != nil {
				return err
			}
			sent = cur
		}
		select {
		case <-changed:
		case <-a.wl.done:
			return errRemoved
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		}
	}
}

func (a *api) FetchX509Bundles(_ *workloadpb.X509BundlesRequest, stream grpc.ServerStreamingServer[workloadpb.X509BundlesResponse]) error {
	var sent []byte
	for {
		cur, changed := a.wl.watch()
		if sent == nil || !bytes.Equal(cur.bundleDER, sent) {
			if err := stream.Send(cur.bundles); err != nil {
				return err
			}
			sent = cur.bundleDER
		}
		select {
		case <-changed:
		case <-a.wl.done:
			return errRemoved
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		}
	}
}

func (w *workload) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := w.admit(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (w *workload) streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := w.admit(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// admit enforces the security header and, when the workload names a uid,
// the caller's kernel-reported uid.
func (w *workload) admit(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(securityHeader); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	if w.spec.UID == nil {
		return nil
	}
	var info peerInfo
	if p, ok := peer.FromContext(ctx); ok {
		info, _ = p.AuthInfo.(peerInfo)
	}
	if info.err != nil || !info.known || info.uid != *w.spec.UID {
		w.srv.log.Warn("workload API caller rejected: unexpected peer uid",
			"socket", w.path, "id", w.spec.ID.String(), "method", method,
			"want_uid", *w.spec.UID, "peer_uid", info.uid, "peer_known", info.known, "err", info.err)
		return status.Error(codes.PermissionDenied, "no identity issued to this caller")
	}
	return nil
}

// peerCreds are transport credentials that add no security of their own: on
// accepting a connection they read the peer's credentials from the kernel
// and attach them as AuthInfo, for admit.
type peerCreds struct{}

type peerInfo struct {
	credentials.CommonAuthInfo
	uid   int
	known bool
	err   error
}

func (peerInfo) AuthType() string { return "peercred" }

func (peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
	info.uid, info.err = peerUID(conn)
	info.known = info.err == nil
	return conn, info, nil
}

func (peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (peerCreds) Clone() credentials.TransportCredentials { return peerCreds{} }

func (peerCreds) OverrideServerName(string) error { return nil }
