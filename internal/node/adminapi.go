package node

import (
	"fmt"
	"net"
	"os"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/clusterstats"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
)

// startAdminAPI serves the gRPC admin API over mTLS. The TLS layer admits
// any SVID of the node's trust domain; the API then authorizes each call
// by role, so a caller without one learns why (PERMISSION_DENIED naming
// its ID) instead of seeing a failed handshake. Read at start only.
func (n *Node) startAdminAPI(api *config.AdminAPI) error {
	svid, err := n.identity.GetX509SVID()
	if err != nil {
		return fmt.Errorf("admin.api: identity: %w", err)
	}
	var ops, viewers tlsconfig.Authorizer
	if len(api.Operators) > 0 {
		if ops, err = pki.AllowPatterns(api.Operators...); err != nil {
			return fmt.Errorf("admin.api.operators: %w", err)
		}
	}
	if len(api.Viewers) > 0 {
		if viewers, err = pki.AllowPatterns(api.Viewers...); err != nil {
			return fmt.Errorf("admin.api.viewers: %w", err)
		}
	}
	ln, err := net.Listen("tcp", api.Address)
	if err != nil {
		return fmt.Errorf("admin.api: %w", err)
	}
	n.adminAPI = admin.New(admin.Options{Backend: adminBackend{n}, Logger: n.log, Operators: ops, Viewers: viewers,
		TLS: pki.ServerTLS(n.identity, n.identity, pki.AllowTrustDomain(svid.ID.TrustDomain()))})
	n.adminAPILn = ln
	go func() { _ = n.adminAPI.Serve(ln) }()
	n.log.Info("admin API listening", "address", ln.Addr().String())
	return nil
}

// AdminAPIAddr is the bound address of the admin API, or "".
func (n *Node) AdminAPIAddr() string {
	if n.adminAPILn == nil {
		return ""
	}
	return n.adminAPILn.Addr().String()
}

// adminBackend is the node as the admin API sees it.
type adminBackend struct{ n *Node }

func (b adminBackend) Info() admin.Info {
	n := b.n
	in := admin.Info{Role: n.opts.Role, Version: buildinfo.Version, Ready: n.ready.Load() && !n.draining.Load()}
	if in.Role == "" {
		in.Role = "edge"
	}
	if c := n.Cluster(); c != nil {
		in.Name = c.Name()
	} else {
		in.Name, _ = os.Hostname()
	}
	if n.identity != nil {
		if svid, err := n.identity.GetX509SVID(); err == nil {
			in.SpiffeID = svid.ID.String()
		}
	}
	return in
}

func (b adminBackend) Cluster() *gossip.Cluster { return b.n.Cluster() }

func (b adminBackend) Effective() *config.Config {
	if s := b.n.current.Load(); s != nil {
		return s.Config
	}
	return nil
}

func (b adminBackend) ClusterResources(kind string) []replica.Item {
	if b.n.mesh == nil {
		return nil
	}
	return b.n.mesh.store.List(kind)
}

func (b adminBackend) ApplyResource(kind string, yaml []byte) error {
	return b.n.ApplyResource(kind, yaml)
}
func (b adminBackend) DeleteResource(kind, name string) (bool, error) {
	return b.n.DeleteResource(kind, name)
}
func (b adminBackend) Breakers() *breaker.Registry                   { return b.n.breakers }
func (b adminBackend) Limits() *ratelimit.Limiter                    { return b.n.limits }
func (b adminBackend) Tap() *telemetry.Tap                           { return b.n.tap }
func (b adminBackend) ClusterStats() *clusterstats.Sharer            { return b.n.clusterStats }
func (b adminBackend) PurgeCache(p cache.Purge) (string, int, error) { return b.n.PurgeCache(p) }
func (b adminBackend) CacheStores() *cache.Stores                    { return b.n.caches }
func (b adminBackend) CacheCounts() map[string]telemetry.CacheCounts {
	return b.n.metrics.CacheCounts()
}
