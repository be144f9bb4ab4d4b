package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/gossip/transport"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/replica/itemsig"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// mesh is the node's membership of the cluster and the state it shares.
// It lives as long as the node: the cluster section is read at start.
type mesh struct {
	cluster   *gossip.Cluster
	transport *transport.Transport
	store     *replica.Store
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	rebuild   chan struct{}
	// sidecar: the node offers a service. It has no auth, so it applies
	// routes and upstreams only, not consumers, tiers and API keys.
	sidecar bool
	// writers is cluster.writers: whose signed items the node applies.
	writers itemsig.Writers
	// unsigned counts peers' unsigned items applied under
	// cluster.accept_unsigned.
	unsigned atomic.Uint64
}

// canWrite refuses a write through a node that is not a writer itself
// (FAILED_PRECONDITION through the admin API): the item would be stored
// here and refused everywhere else, a change that looks made and is not.
func (n *Node) canWrite(kind string) error {
	svid, err := n.identity.GetX509SVID()
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := n.mesh.writers(kind, svid.ID); err != nil {
		return errNotWriter(svid.ID, kind, err)
	}
	return nil
}

// kinds are the kinds of cluster resources the node applies.
func (m *mesh) kinds() []string {
	if m.sidecar {
		return []string{config.KindUpstream, config.KindRoute}
	}
	return config.Kinds
}

// appHealthInterval is how often a sidecar checks its app for discovery.
const appHealthInterval = 2 * time.Second

// joinCluster creates the node's gossip transport and cluster and starts
// joining. Cluster changes to resources trigger a rebuild of the snapshot.
func (n *Node) joinCluster(cfg *config.Config) error {
	cl := cfg.Cluster
	svid, err := n.identity.GetX509SVID()
	if err != nil {
		return fmt.Errorf("cluster: identity: %w", err)
	}
	writers, err := writersPolicy(cl.Writers, cl.KindWriters)
	if err != nil {
		return err
	}
	authorize, err := joinAuthorizer(cfg, svid.ID.TrustDomain(), writers)
	if err != nil {
		return err
	}
	tr, err := transport.New(transport.Options{BindAddr: cl.Bind, AdvertiseAddr: cl.Advertise,
		SVIDs: n.identity, Bundles: n.identity, Authorize: authorize, Logger: n.log.With("component", "gossip-transport")})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	name := cl.Name
	if name == "" {
		host, _ := os.Hostname()
		name = host + "-" + strconv.Itoa(tr.Addr().(*net.TCPAddr).Port)
	}
	meta := gossip.Meta{Role: "edge", ID: svid.ID.String()}
	if o := cl.Offer; o != nil {
		meta = gossip.Meta{Role: "sidecar", Service: o.Service, Subset: o.Subset, Inbound: o.Inbound,
			ID: svid.ID.String(), Healthy: appHealthy(o.App)}
	}
	m := &mesh{rebuild: make(chan struct{}, 1), sidecar: cl.Offer != nil, writers: writers}
	c, err := gossip.New(gossip.Config{Name: name, Transport: tr, Meta: meta, Join: cl.Join, Logger: n.log,
		GossipInterval: cl.GossipInterval.D(), PushPullInterval: cl.PushPullInterval.D(), ProbeInterval: cl.ProbeInterval.D(),
		SuspicionMult: cl.SuspicionMult})
	if err != nil {
		tr.Shutdown()
		return err
	}
	m.cluster, m.transport = c, tr
	// Cache purges are events among the resources (purge.go): applied as
	// they arrive, expired by their own time, and no cause for a rebuild.
	// Every item this node writes is signed with its SVID, and a peer's is
	// applied only when a writer signed it (writers.go, package itemsig).
	verifier := itemsig.NewVerifier(itemsig.VerifierOptions{Bundles: n.identity, Writers: writers})
	verify := verifier.Verify
	if cl.AcceptUnsigned {
		verify = m.acceptUnsigned(verify, n.log)
	}
	m.store = replica.New(replica.Options{Node: name, Send: c.Sender('r'), Expired: purgeExpired(time.Now),
		Sign: itemsig.Signer(n.identity, nil), Verify: verify,
		OnApplied: func(items []replica.Item) {
			if n.purges.onApplied(items) {
				m.changed()
			}
		}})
	c.Register(m.store) // the breakers and limits register in startSharedState, then New starts the cluster
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	n.mesh = m
	m.wg.Add(1)
	go func() { defer m.wg.Done(); n.rebuildLoop(ctx) }()
	if o := cl.Offer; o != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.watchApp(ctx, o.App) }()
	}
	n.log.Info("cluster started", "node", name, "gossip", c.Addr(), "join", cl.Join, "role", meta.Role)
	return nil
}

// acceptUnsigned wraps verify to apply unsigned items (cluster.accept_unsigned):
// during an upgrade from a release without signatures, the resources that
// release's nodes wrote (and still write) keep applying, counted and logged
// at most once a minute. A signed item is verified as always.
func (m *mesh) acceptUnsigned(verify func(replica.Item) error, log *slog.Logger) func(replica.Item) error {
	var lastLog atomic.Int64
	return func(it replica.Item) error {
		err := verify(it)
		if !errors.Is(err, itemsig.ErrUnsigned) {
			return err
		}
		m.unsigned.Add(1)
		now := time.Now().UnixNano()
		if last := lastLog.Load(); now-last > int64(time.Minute) && lastLog.CompareAndSwap(last, now) {
			log.Warn("applied an unsigned cluster item (cluster.accept_unsigned): turn it off once every node signs",
				"kind", it.Kind, "name", it.Name, "unsigned_total", m.unsigned.Load())
		}
		return nil
	}
}

// offerBoundInbound corrects the offered inbound address when the listener
// was bound to port 0 (tests, and hosts that let the kernel pick).
func (m *mesh) offerBoundInbound(bound string) {
	meta := m.cluster.Meta()
	if meta.Role != "sidecar" || bound == "" || !strings.HasSuffix(meta.Inbound, ":0") {
		return
	}
	host, _, _ := net.SplitHostPort(meta.Inbound)
	_, port, _ := net.SplitHostPort(bound)
	meta.Inbound = net.JoinHostPort(host, port)
	_ = m.cluster.SetMeta(meta)
}

// changed is the store's OnChange: coalesce into one pending rebuild.
func (m *mesh) changed() {
	select {
	case m.rebuild <- struct{}{}:
	default:
	}
}

// rebuildLoop applies the cluster's resources over the file's config after
// each change. An invalid result is logged and counted and the running
// snapshot keeps serving.
func (n *Node) rebuildLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.mesh.rebuild:
		}
		n.applyMu.Lock()
		n.mu.Lock()
		base := n.fileCfg
		n.mu.Unlock()
		if base == nil {
			n.applyMu.Unlock()
			continue
		}
		cfg, err := n.withCluster(base)
		if err != nil {
			n.log.Error("cluster resources rejected; the others apply", "errors", err.Error())
		}
		if cfg != nil {
			if aerr := n.apply(cfg); aerr != nil {
				n.log.Error("cluster resources rejected; the current routes keep serving", "errors", aerr.Error())
				err = aerr
			}
		}
		n.applyMu.Unlock()
		n.metrics.ClusterApply(err == nil)
	}
}

// withCluster is base with the cluster's resources of the kinds the node
// applies (m.kinds) over it (base when the node is not in a cluster). The rebuild loop calls it on
// any change of the store: a revoked API key or a consumer's new tier
// reaches the auth and tier_limit stages with the next snapshot.
func (n *Node) withCluster(base *config.Config) (*config.Config, error) {
	if n.mesh == nil {
		return base, nil
	}
	var res []config.Resource
	for _, kind := range n.mesh.kinds() {
		for _, it := range n.mesh.store.List(kind) {
			res = append(res, config.Resource{Kind: it.Kind, Name: it.Name, Value: it.Value, Deleted: it.Deleted})
		}
	}
	if len(res) == 0 {
		return base, nil
	}
	return config.Overlay(base, res)
}

// ApplyResource validates a resource of kind (the YAML of a routes[],
// upstreams[], tiers[] or consumers[] entry, or of an API key as its hash:
// config.APIKey) against this node's configuration and writes it to the
// cluster, which spreads it to every node.
func (n *Node) ApplyResource(kind string, value []byte) error {
	if n.mesh == nil {
		return fmt.Errorf("this node is not in a cluster")
	}
	name, err := config.ResourceName(kind, value)
	if err != nil {
		return err
	}
	if err := n.canWrite(kind); err != nil {
		return err
	}
	if !slices.Contains(n.mesh.kinds(), kind) {
		// Not for this node (a sidecar and a consumer): decoded, and
		// checked by the edges that apply it.
		_, err = n.mesh.store.Put(kind, name, value)
		return err
	}
	cfg := n.effectiveForChange()
	if _, err := config.Overlay(cfg, []config.Resource{{Kind: kind, Name: name, Value: value}}); err != nil {
		return err
	}
	_, err = n.mesh.store.Put(kind, name, value)
	return err
}

// effectiveForChange is the file's config with the cluster's resources as
// the store holds them now (resources already rejected stay so).
func (n *Node) effectiveForChange() *config.Config {
	n.mu.Lock()
	base := n.fileCfg
	n.mu.Unlock()
	cfg, _ := n.withCluster(base)
	if cfg == nil {
		cfg = base
	}
	return cfg
}

// DeleteResource writes a tombstone. A tier is deleted only when nothing
// uses it any more (a consumer, a token definition's default_tier): every
// node would otherwise keep it, reporting the tombstone as not fitting.
func (n *Node) DeleteResource(kind, name string) (bool, error) {
	if n.mesh == nil {
		return false, fmt.Errorf("this node is not in a cluster")
	}
	if err := n.canWrite(kind); err != nil {
		return false, err
	}
	if kind == config.KindTier && slices.Contains(n.mesh.kinds(), kind) {
		if _, err := config.Overlay(n.effectiveForChange(), []config.Resource{{Kind: kind, Name: name, Deleted: true}}); err != nil {
			return false, fmt.Errorf("tier %q is still in use: %w", name, err)
		}
	}
	_, ok, err := n.mesh.store.Delete(kind, name)
	return ok, err
}

// Cluster is the node's cluster membership, nil when standalone.
func (n *Node) Cluster() *gossip.Cluster {
	if n.mesh == nil {
		return nil
	}
	return n.mesh.cluster
}

// serviceAuthorizer accepts a server whose SPIFFE ID one of the service's
// live sidecars advertises (a discovered upstream without pinned IDs).
func serviceAuthorizer(src *gossip.ServiceSource) tlsconfig.Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if slices.Contains(src.IDs(), id.String()) {
			return nil
		}
		return fmt.Errorf("%s is not a live sidecar of the service", id)
	}
}

// watchApp health-checks the local app (a TCP connect) and tells the
// cluster when the verdict changes, so discovery stops offering a sidecar
// whose app is down.
func (m *mesh) watchApp(ctx context.Context, app string) {
	t := time.NewTicker(appHealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok := appHealthy(app)
		if meta := m.cluster.Meta(); meta.Healthy != ok && !meta.Leaving {
			meta.Healthy = ok
			_ = m.cluster.SetMeta(meta)
		}
	}
}

func appHealthy(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// leave takes the node out of the cluster: peers stop routing to it before
// its listeners drain.
func (m *mesh) leave() {
	m.cancel()
	m.wg.Wait()
	_ = m.cluster.Leave(time.Second)
}

// stop ends the node's membership without a goodbye (after leave, or when
// the node failed to start); safe to call twice.
func (m *mesh) stop() {
	m.cancel()
	m.wg.Wait()
	_ = m.cluster.Shutdown()
}

// watchCluster exports the cluster's state as metrics.
func (n *Node) watchCluster() {
	c, tr := n.mesh.cluster, n.mesh.transport
	n.metrics.WatchCluster(func() telemetry.ClusterStats {
		st, ts := c.Stats(), tr.Stats()
		out := telemetry.ClusterStats{Members: map[string]int{}, MessagesIn: st.MessagesIn, Relayed: st.Relayed,
			BadMessages: st.BadMessages, StatesIn: st.StatesIn, BadStates: st.BadStates, UnknownKind: st.UnknownKind,
			Queued: st.Queued, Rejected: ts.Rejected, RefusedItems: n.mesh.store.Stats().Refused,
			UnsignedItems: n.mesh.unsigned.Load()}
		for _, m := range c.Members() {
			state := m.State.String()
			if state == "suspect" {
				state = "alive"
			}
			out.Members[state]++
		}
		return out
	})
}
