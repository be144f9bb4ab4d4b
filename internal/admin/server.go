// Package admin is the gRPC admin API of a node (meshgate.admin.v1), what
// meshctl talks to. It is served over SPIFFE mTLS; every call is
// authorized by the caller's SPIFFE ID (viewers read, operators also
// change), and refusals and changes are written to the log as audit lines.
//
// Reads describe the node answering; changes go into the cluster's
// replicated state, so a change made through any node reaches every node.
package admin

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/clusterstats"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/telemetry"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// Info describes the node answering.
type Info struct {
	Name, Role, Version, SpiffeID string
	Ready                         bool
}

// Backend is the node as the admin API sees it.
type Backend interface {
	Info() Info
	// Cluster is nil for a standalone node.
	Cluster() *gossip.Cluster
	// Effective is the configuration serving now (file and cluster).
	Effective() *config.Config
	// ClusterResources are the replicated resources of kind, tombstones
	// included.
	ClusterResources(kind string) []replica.Item
	ApplyResource(kind string, yaml []byte) error
	DeleteResource(kind, name string) (bool, error)
	Breakers() *breaker.Registry
	Limits() *ratelimit.Limiter
	Tap() *telemetry.Tap
	// ClusterStats are the node's upstream stats and its peers', as
	// gossiped; nil-safe.
	ClusterStats() *clusterstats.Sharer
	// PurgeCache writes a purge into the cluster, applying it on this node
	// at once; it returns the purge's id and how many entries this node
	// removed.
	PurgeCache(p cache.Purge) (id string, removed int, err error)
	// CacheStores are the node's response stores (what they hold now).
	CacheStores() *cache.Stores
	// CacheCounts are the node's cache counters, as /metrics has them.
	CacheCounts() map[string]telemetry.CacheCounts
}

// Options configure a Server.
type Options struct {
	Backend Backend
	// TLS is the server side of the mTLS (pki.ServerTLS): it should accept
	// any valid SVID of the trust domain, so that a caller who may not use
	// the API gets PERMISSION_DENIED naming its identity rather than a
	// failed handshake.
	TLS       *tls.Config
	Operators tlsconfig.Authorizer
	Viewers   tlsconfig.Authorizer // nil: operators only
	Logger    *slog.Logger
}

// Server is the admin API of one node.
type Server struct {
	adminv1.UnimplementedAdminServer
	b     Backend
	log   *slog.Logger
	authz authorizer
	grpc  *grpc.Server
}

// New builds the server; Serve it on a listener.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{b: o.Backend, log: o.Logger.With("component", "admin-api"),
		authz: authorizer{operators: o.Operators, viewers: o.Viewers}}
	s.authz.log = s.log
	s.grpc = grpc.NewServer(grpc.Creds(credentials.NewTLS(o.TLS)), grpc.MaxRecvMsgSize(maxRecvMsg),
		grpc.ChainUnaryInterceptor(s.authz.unary), grpc.ChainStreamInterceptor(s.authz.stream))
	adminv1.RegisterAdminServer(s.grpc, s)
	return s
}

// Serve answers on ln until Stop.
func (s *Server) Serve(ln net.Listener) error { return s.grpc.Serve(ln) }

// Stop ends open streams (taps) and closes the listener.
func (s *Server) Stop() { s.grpc.Stop() }

// Health implements adminv1.AdminServer.
func (s *Server) Health(context.Context, *adminv1.HealthRequest) (*adminv1.HealthResponse, error) {
	in := s.b.Info()
	r := &adminv1.HealthResponse{Node: in.Name, Role: in.Role, Version: in.Version, Ready: in.Ready, SpiffeId: in.SpiffeID}
	if c := s.b.Cluster(); c != nil {
		r.MembersAlive = int32(c.Peers() + 1)
	} else {
		r.MembersAlive = 1
	}
	return r, nil
}

// ListMembers implements adminv1.AdminServer.
func (s *Server) ListMembers(context.Context, *adminv1.ListMembersRequest) (*adminv1.ListMembersResponse, error) {
	c := s.b.Cluster()
	if c == nil {
		in := s.b.Info()
		return &adminv1.ListMembersResponse{Members: []*adminv1.Member{{Name: in.Name, State: "alive", Role: in.Role,
			SpiffeId: in.SpiffeID, Healthy: true}}}, nil
	}
	var out []*adminv1.Member
	for _, m := range c.Members() {
		out = append(out, &adminv1.Member{Name: m.Name, Address: m.Addr, State: m.State.String(), Role: m.Meta.Role,
			Service: m.Meta.Service, Subset: m.Meta.Subset, Inbound: m.Meta.Inbound, SpiffeId: m.Meta.ID,
			Healthy: m.Meta.Healthy})
	}
	return &adminv1.ListMembersResponse{Members: out}, nil
}
