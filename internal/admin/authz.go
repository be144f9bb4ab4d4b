package admin

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// Authorization is an allow list: every method of the service is a read
// (viewers and operators) or a mutation (operators only), and a method in
// neither is refused to everyone, so a new RPC cannot be served before it
// is classified here (TestEveryRPCIsAReadOrAWrite walks the service).
var reads = map[string]bool{
	"Health":        true,
	"ListMembers":   true,
	"ListResources": true,
	"GetResource":   true,
	"GetTraffic":    true,
	"UpstreamStats": true,
	"ListBreakers":  true,
	"ListLimits":    true,
	"Tap":           true,
	// It runs a route's transform on a sample and changes nothing.
	"TransformTest": true,
	"CacheStats":    true,
}

// mutations are the methods that change state: operators only.
var mutations = map[string]bool{
	"ApplyResource":  true,
	"DeleteResource": true,
	"ShiftTraffic":   true,
	"ResetBreaker":   true,
	"SetLimit":       true,
	"DeleteLimit":    true,
	// It deletes responses on every node: a viewer could otherwise send
	// the whole cache's traffic to the upstreams at will.
	"PurgeCache": true,
}

type authorizer struct {
	operators, viewers tlsconfig.Authorizer
	log                *slog.Logger
}

type callerKey struct{}

// callerOf is the caller's SPIFFE ID, set by the interceptors.
func callerOf(ctx context.Context) string {
	id, _ := ctx.Value(callerKey{}).(spiffeid.ID)
	return id.String()
}

// check authorizes a call by the caller's SPIFFE ID: reads for viewers and
// operators, mutations for operators. A refusal says who was refused and
// what would have been needed, and is audit-logged.
func (a *authorizer) check(ctx context.Context, fullMethod string) (context.Context, error) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	id, err := peerID(ctx)
	if err != nil {
		a.log.Warn("audit: refused", "method", method, "caller", "unauthenticated", "reason", err.Error())
		return ctx, status.Errorf(codes.Unauthenticated, "no client SVID: %v", err)
	}
	return a.checkID(ctx, fullMethod, id)
}

// checkID is check for a caller already identified.
func (a *authorizer) checkID(ctx context.Context, fullMethod string, id spiffeid.ID) (context.Context, error) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	if !reads[method] && !mutations[method] {
		a.log.Warn("audit: refused", "method", method, "caller", id.String(), "reason", "unclassified method")
		return ctx, status.Errorf(codes.PermissionDenied, "%s is neither a read nor a change this node knows; no one may call it", method)
	}
	allowed := a.operators != nil && a.operators(id, nil) == nil
	need := "operator"
	if reads[method] {
		allowed = allowed || a.viewers != nil && a.viewers(id, nil) == nil
		need = "viewer or operator"
	}
	if !allowed {
		a.log.Warn("audit: refused", "method", method, "caller", id.String(), "needs", need)
		return ctx, status.Errorf(codes.PermissionDenied, "%s may not call %s: it needs the %s role on this node (admin.api)", id, method, need)
	}
	return context.WithValue(ctx, callerKey{}, id), nil
}

func peerID(ctx context.Context) (spiffeid.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("not a TLS connection")
	}
	return pki.PeerID(ti.State)
}

func (a *authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := a.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	if method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]; mutations[method] {
		// Every change leaves a trace: who, what, and whether it took.
		result := "ok"
		if err != nil {
			result = err.Error()
		}
		a.log.Info("audit: change", "method", method, "caller", callerOf(ctx), "request", auditRequest(req), "result", result)
	}
	return resp, err
}

// auditRequest is a change as the audit log shows it. A resource's value is
// never written — it may hold a key in clear (refused, but sent), or a
// route's header values (a token for its upstream): the line names the
// kind and name and a digest of the value, which matches what the cluster
// stores. An API key is shown by id and consumer.
func auditRequest(req any) string {
	if p, ok := req.(*adminv1.PurgeCacheRequest); ok {
		// Named fields, as the other lines: a path is no secret (a query,
		// which might hold one, is refused), but the line's form is fixed.
		return fmt.Sprintf("route:%q mode:%q value:%q", p.Route, p.Mode, p.Value)
	}
	r, ok := req.(*adminv1.ApplyResourceRequest)
	if !ok {
		return fmt.Sprint(req)
	}
	if r.Kind == config.KindAPIKey {
		k, err := config.DecodeAPIKey(r.Kind, []byte(r.Yaml))
		if err != nil {
			return `kind:"apikey" (a value that is not an API key hash, not logged)`
		}
		return fmt.Sprintf("kind:%q id:%q consumer:%q", r.Kind, config.KeyID(k.Hash), k.Consumer)
	}
	name, err := config.ResourceName(r.Kind, []byte(r.Yaml))
	if err != nil {
		name = "(unreadable)"
	}
	sum := sha256.Sum256([]byte(r.Yaml))
	return fmt.Sprintf("kind:%q name:%q value:sha256:%x (%d bytes, not logged)", r.Kind, name, sum[:8], len(r.Yaml))
}

func (a *authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := a.check(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &authedStream{ServerStream: ss, ctx: ctx})
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }
