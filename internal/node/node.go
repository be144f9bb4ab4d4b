// Package node is the composition root: it builds a running edge from a
// configuration file and keeps it running through reloads and shutdown. It
// is imported only by the binaries (edge/, sidecar/) and by tests.
//
// A reload is build → bind → swap → stop the old: the new file is loaded and
// validated, clusters are created for new or changed upstreams (unchanged ones
// are kept with their pools and endpoint state), the snapshot is compiled, new
// listeners are bound — and only when all of that succeeded is the snapshot
// published. Listeners and clusters that the new configuration no longer has
// are then drained in the background. Any failure leaves the old
// configuration serving, is logged with its file:line errors, and is counted.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/aggregate"
	"github.com/meshgate/meshgate/internal/auth"
	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/clusterstats"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/dataplane"
	"github.com/meshgate/meshgate/internal/fallback"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/listen"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/transform"
	"github.com/meshgate/meshgate/internal/upstream"
	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Options configure a node.
type Options struct {
	// ConfigPath is the YAML file loaded at start and on every reload.
	ConfigPath string
	// Load reads ConfigPath; nil: config.Load (an edge file). The sidecar
	// passes config.LoadSidecar.
	Load   func(path string) (*config.Config, error)
	Logger *slog.Logger
	// AccessLog overrides the file's log.access (tests).
	AccessLog *telemetry.AccessLog
	// Clock for upstream state and the HTTP cache; nil: the real clock.
	Clock clock.Clock
	// OnCacheSize (may be nil) is told, after every configuration that
	// applied, the cache.max_bytes the node's routes may fill (0: no route
	// caches): the binaries size the process's memory limit with it.
	OnCacheSize func(maxBytes int64)
	// Identity overrides the file's identity section (tests).
	Identity Identity
	// Role is what the node is ("edge" or "sidecar"), as the admin API
	// reports it; default "edge".
	Role string
	// TraceExporter replaces the OTLP exporter of the file's tracing
	// section (tests: an in-memory exporter). Tracing is still on only
	// with a tracing section.
	TraceExporter telemetry.SpanExporter
	// TraceBatchInterval is how long a finished span may wait for export
	// (default 1s; tests shorten it).
	TraceBatchInterval time.Duration
}

// Node is a running edge.
type Node struct {
	// watching is closed once Run watches the config file and SIGHUP
	// (tests wait on it instead of sleeping).
	watching     chan struct{}
	watchingOnce sync.Once
	opts         Options
	log          *slog.Logger
	metrics      *telemetry.Metrics
	tunnels      *proxy.Tunnels
	ids          *proxy.RequestIDs
	current      atomic.Pointer[dataplane.Snapshot]

	mu            sync.Mutex // serializes reloads and shutdown
	listeners     map[string]*listen.Listener
	sockets       map[string]*listen.Socket // by socketKey
	clusters      map[string]*clusterRef
	access        *telemetry.AccessLog
	ownAccess     bool
	admin         *http.Server
	adminLn       net.Listener
	identity      Identity
	closeIdentity func() error
	applyMu       sync.Mutex // serializes file reloads and cluster rebuilds (each reads fileCfg, then applies)
	mesh          *mesh      // nil: not in a cluster
	tap           *telemetry.Tap
	upstats       *telemetry.UpstreamStats
	clusterStats  *clusterstats.Sharer // upstats and the peers', shared
	tracer        *telemetry.Tracer    // nil: tracing off
	adminAPI      *admin.Server
	adminAPILn    net.Listener
	breakers      *breaker.Registry
	limits        *ratelimit.Limiter
	// policyRes keeps policy resources (verifiers, caches) across reloads
	// that leave their config unchanged.
	policyRes *policy.Shared
	// Token caches seen at the last scrape, and the evictions of the ones
	// closed since (tokenCacheView): the evictions metric is a counter.
	tokenCacheMu   sync.Mutex
	tokenCacheLive map[any]tokenCacheSeen
	tokenEvicted   map[[2]string]uint64
	// caches are the response stores of routes[].cache, held through
	// policyRes (one per cache.max_bytes in use).
	caches *cache.Stores
	// purges applies the cluster's cache purges to caches.
	purges *purger
	// policies build every route's stages; set at start.
	policies   []policy.Builder
	stopShared func()
	fileCfg    *config.Config // the file's config last applied (the cluster's base)
	// The sections read only at start, as they were then.
	startedCluster *config.Cluster
	startedTracing *config.Tracing
	ready          atomic.Bool
	draining       atomic.Bool
	retiring       sync.WaitGroup // listeners draining after a reload
}

type clusterRef struct {
	cfg     config.Upstream
	cluster *proxy.Cluster
}

// New loads the configuration and starts the node: listeners serve when New
// returns. Stop it with Shutdown.
func New(opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Load == nil {
		opts.Load = config.Load
	}
	n := &Node{
		watching:  make(chan struct{}),
		opts:      opts,
		log:       opts.Logger,
		metrics:   telemetry.NewMetrics(),
		tunnels:   proxy.NewTunnels(),
		ids:       proxy.NewRequestIDs(),
		listeners: map[string]*listen.Listener{},
		sockets:   map[string]*listen.Socket{},
		clusters:  map[string]*clusterRef{},
		tap:       telemetry.NewTap(),
		upstats:   telemetry.NewUpstreamStats(),
	}
	cfg, err := opts.Load(opts.ConfigPath)
	if err != nil {
		n.metrics.Reload(false)
		return nil, err
	}
	n.identity = opts.Identity
	if n.identity == nil && cfg.Identity != nil {
		if n.identity, n.closeIdentity, err = openIdentity(cfg.Identity, n.log); err != nil {
			return nil, err
		}
	}
	if opts.AccessLog != nil {
		n.access = opts.AccessLog
	} else if n.access, err = telemetry.OpenAccessLog(cfg.Log.Access); err != nil {
		return nil, err
	} else {
		n.ownAccess = true
	}
	n.startedCluster, n.startedTracing = cfg.Cluster, cfg.Tracing
	// The stores and their purger come before the cluster, whose store
	// applies the purges it receives.
	n.caches = cache.NewStores(n.metrics.CacheEviction, opts.Clock.Now)
	n.metrics.CacheBytesFrom(n.caches.Bytes)
	n.purges = newPurger(n.caches, n.log, time.Now)
	if cfg.Cluster != nil {
		if err := n.joinCluster(cfg); err != nil {
			n.closeAll()
			return nil, err
		}
		n.watchCluster()
	}
	if err := n.startSharedState(cfg); err != nil {
		n.closeAll()
		return nil, err
	}
	n.policyRes = policy.NewShared()
	n.metrics.WatchTokenCaches(n.tokenCacheView)
	if n.mesh != nil {
		n.mesh.cluster.Start() // every owner is registered
		if len(cfg.Cluster.Join) > 0 {
			n.awaitJoin(joinWarmup)
		}
	}
	if cfg.Tracing != nil {
		if err := n.startTracing(*cfg.Tracing); err != nil {
			n.closeAll()
			return nil, err
		}
	}
	if err := n.applyFile(cfg); err != nil {
		n.metrics.Reload(false)
		n.closeAll()
		return nil, err
	}
	n.metrics.Reload(true)
	if n.mesh != nil {
		n.mesh.offerBoundInbound(n.Addr(config.SidecarInbound))
	}
	if cfg.Admin.Address != "" {
		if err := n.startAdmin(cfg.Admin); err != nil {
			n.closeAll()
			return nil, err
		}
	}
	if cfg.Admin.API != nil {
		if err := n.startAdminAPI(cfg.Admin.API); err != nil {
			n.closeAll()
			return nil, err
		}
	}
	n.ready.Store(true)
	return n, nil
}

// joinWarmup bounds how long a node with cluster.join waits, before it
// opens its listeners, for its first join: the join brings the cluster's
// state (members and their discovery entries, routes, breakers), so
// without the wait a restarted edge answered its first requests "no
// healthy upstream endpoint" for every service it finds through the
// cluster (the faults suite's fleet scenario: 7–12 of them per restart at
// 1,000 req/s). Envoy warms listeners on its first discovery fetch the
// same way. When no member answers in time the node serves without.
const joinWarmup = 5 * time.Second

// awaitJoin waits until the node has a peer, at most within.
func (n *Node) awaitJoin(within time.Duration) {
	c := n.mesh.cluster
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	start := time.Now()
	for {
		changed := c.Watch()
		if c.Peers() > 0 {
			n.log.Info("joined the cluster; opening the listeners", "waited", time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			n.log.Warn("no cluster member answered yet; opening the listeners without the cluster's state", "waited", within)
			return
		}
	}
}

// Metrics returns the node's instruments.
func (n *Node) Metrics() *telemetry.Metrics { return n.metrics }

// Tracer returns the node's tracer; nil when tracing is off.
func (n *Node) Tracer() *telemetry.Tracer { return n.tracer }

// startTracing creates the tracer the listeners and forwarders record
// into. It lives as long as the node: the tracing section is read at start.
func (n *Node) startTracing(cfg config.Tracing) error {
	name := ""
	if n.mesh != nil {
		name = n.mesh.cluster.Name()
	}
	t, err := telemetry.NewTracer(cfg, telemetry.TracerOptions{NodeName: name, Metrics: n.metrics,
		Logger: n.log, Exporter: n.opts.TraceExporter, BatchInterval: n.opts.TraceBatchInterval})
	if err != nil {
		return err
	}
	n.tracer = t
	return nil
}

// Addr returns the bound address of a listener (useful with port 0), or "".
func (n *Node) Addr(listener string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.listeners[listener]; l != nil {
		return l.Socket().Addr().String()
	}
	return ""
}

// AdminAddr returns the bound admin address, or "".
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// Reload loads the configuration file again and applies it. On any error
// the running configuration stays in place.
func (n *Node) Reload() error {
	cfg, err := n.opts.Load(n.opts.ConfigPath)
	// Both sections are read once, at start: compare with what runs, not
	// with the last file (which may have changed them already).
	if err == nil && !reflect.DeepEqual(cfg.Cluster, n.startedCluster) {
		n.log.Warn("the cluster section changed; it takes effect at the next restart")
	}
	if err == nil && !reflect.DeepEqual(cfg.Tracing, n.startedTracing) {
		n.log.Warn("the tracing section changed; it takes effect at the next restart")
	}
	if err == nil {
		err = n.applyFile(cfg)
	}
	n.metrics.Reload(err == nil)
	if err != nil {
		n.log.Error("configuration rejected; the previous one keeps serving", "file", n.opts.ConfigPath, "errors", err.Error())
		return err
	}
	n.log.Info("configuration reloaded", "file", n.opts.ConfigPath)
	return nil
}

// applyFile applies a config read from the file, with the cluster's
// resources over it, and remembers it as the cluster's base.
func (n *Node) applyFile(cfg *config.Config) error {
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	eff, err := n.withCluster(cfg)
	if err != nil {
		// The file is fine but some cluster resources do not fit it: serve
		// the file with the others.
		n.log.Error("cluster resources do not apply over this file; serving without them", "errors", err.Error())
		n.metrics.ClusterApply(false)
		if eff == nil {
			eff = cfg
		}
	}
	if err := n.apply(eff); err != nil {
		return err
	}
	n.mu.Lock()
	n.fileCfg = cfg
	n.mu.Unlock()
	if n.opts.OnCacheSize != nil {
		n.opts.OnCacheSize(cacheBytes(eff))
	}
	return nil
}

// cacheBytes is the store size cfg's routes may fill: cache.max_bytes when
// a route caches, else 0.
func cacheBytes(cfg *config.Config) int64 {
	for i := range cfg.Routes {
		if cfg.Routes[i].Cache != nil {
			return int64(cfg.Cache.MaxBytes)
		}
	}
	return 0
}

// apply builds, binds, swaps and then retires what the old config had.
func (n *Node) apply(cfg *config.Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining.Load() {
		return errors.New("node is shutting down")
	}

	// Clusters: keep unchanged ones, create the rest.
	clusters := make(map[string]*clusterRef, len(cfg.Upstreams))
	var created []*clusterRef
	fail := func(err error) error {
		for _, c := range created {
			c.cluster.Close()
		}
		// The limiter's policies follow the config that keeps serving.
		if prev := n.current.Load(); prev != nil {
			_ = n.limits.SetPolicies(dataplane.RateLimitPolicies(prev.Config))
		}
		return err
	}
	if err := n.limits.SetPolicies(dataplane.RateLimitPolicies(cfg)); err != nil {
		return fail(fmt.Errorf("rate limits: %w", err))
	}
	for _, u := range cfg.Upstreams {
		if old := n.clusters[u.Name]; old != nil && reflect.DeepEqual(old.cfg, u) {
			clusters[u.Name] = old
			continue
		}
		var src upstream.Source
		var discovered *gossip.ServiceSource
		if u.Service != nil {
			if n.mesh == nil {
				return fail(fmt.Errorf("upstream %q: service discovery needs a cluster, which is joined at start only", u.Name))
			}
			discovered = n.mesh.cluster.Service(u.Service.Name, u.Service.Subset)
			src = discovered
		}
		var ctls *proxy.ClientTLS
		if u.TLS != nil {
			if n.identity == nil {
				return fail(fmt.Errorf("upstream %q: tls needs the node's identity, which is set at start only", u.Name))
			}
			var expect tlsconfig.Authorizer
			if len(u.TLS.SpiffeIDs) == 0 && discovered != nil {
				expect = serviceAuthorizer(discovered)
			} else {
				var err error
				if expect, err = pki.AllowPatterns(u.TLS.SpiffeIDs...); err != nil {
					return fail(fmt.Errorf("upstream %q: %w", u.Name, err))
				}
			}
			ctls = proxy.NewClientTLS(pki.ClientTLS(n.identity, n.identity, expect), u.ConnectTimeout.D())
		}
		up, err := upstream.New(u, upstream.Options{Clock: n.opts.Clock, Logger: n.log, // it names itself in its lines
			Observer: n.metrics, HealthTransport: ctls.HealthTransport(), Source: src, Breakers: n.breakers})
		if err != nil {
			return fail(fmt.Errorf("upstream %q: %w", u.Name, err))
		}
		ref := &clusterRef{cfg: u, cluster: proxy.NewCluster(u, up, ctls)}
		clusters[u.Name] = ref
		created = append(created, ref)
	}
	byName := make(map[string]*proxy.Cluster, len(clusters))
	for name, c := range clusters {
		byName[name] = c.cluster
	}
	snap, err := dataplane.Build(cfg, dataplane.Deps{
		Clusters: byName, Metrics: n.metrics, Tunnels: n.tunnels, Logger: n.log,
		Policies: n.policiesFor(cfg), Shared: n.policyRes, Tracer: n.tracer,
	})
	if err != nil {
		return fail(err)
	}

	// Listeners: keep those that can stay; prepare the others, on the
	// socket of their address if one is open, else on a newly bound one.
	keep := map[string]*listen.Listener{}
	keptCerts := map[string]*listen.CertSet{}
	var prepared []*listen.Listener
	sockets := map[string]*listen.Socket{}
	var opened []*listen.Socket
	failListeners := func(err error) error {
		for _, s := range opened {
			s.Close()
		}
		for _, l := range prepared {
			l.Handler().Close()
		}
		snap.Retire() // never published: its stages' resources go now
		return fail(err)
	}
	for _, lc := range cfg.Listeners {
		if old := n.listeners[lc.Name]; old != nil && old.CanKeep(lc, cfg.Server) {
			cs, err := listen.LoadNewCerts(lc)
			if err != nil {
				return failListeners(err)
			}
			keptCerts[lc.Name] = cs
			keep[lc.Name] = old
			sockets[socketKey(lc)] = old.Socket()
			continue
		}
		sock := n.sockets[socketKey(lc)]
		if sock == nil {
			var err error
			if sock, err = listen.Open(lc.Address); err != nil {
				return failListeners(fmt.Errorf("listener %q: %w", lc.Name, err))
			}
			opened = append(opened, sock)
		}
		sockets[socketKey(lc)] = sock
		caller, err := n.callerPolicy(lc)
		if err != nil {
			return failListeners(err)
		}
		entry := dataplane.NewEntry(lc.Name, dataplane.EntryOptions{Scheme: scheme(lc), First: snap, Current: &n.current,
			Metrics: n.metrics, Log: n.access, IDs: n.ids, Caller: caller, Logger: n.log, Tap: n.tap, UpstreamStats: n.upstats,
			Tracer: n.tracer})
		l, err := listen.New(lc, cfg.Server, sock, entry, n.metrics, n.log, n.identity)
		if err != nil {
			entry.Close()
			return failListeners(err)
		}
		prepared = append(prepared, l)
	}

	// Commit.
	old := n.current.Swap(snap)
	if old != nil {
		// Its stages' resources are released when its last request ends.
		old.Retire()
	}
	for _, lc := range cfg.Listeners {
		if l := keep[lc.Name]; l != nil {
			l.CommitCerts(lc, keptCerts[lc.Name])
		}
	}
	for _, l := range prepared {
		l.Serve()
	}
	drain := cfg.Server.DrainTimeout.D()
	for name, l := range n.listeners {
		if _, ok := keep[name]; !ok {
			delete(n.listeners, name)
			n.retiring.Add(1)
			go n.retire(l, drain)
		}
	}
	for _, l := range prepared {
		n.listeners[l.Config().Name] = l
	}
	for addr, s := range n.sockets {
		if sockets[addr] != s {
			s.Close()
		}
	}
	n.sockets = sockets
	for name, c := range n.clusters {
		if clusters[name] != c {
			// Requests in flight keep their connections; only idle
			// connections and background checks stop.
			c.cluster.Close()
			n.forgetEndpoints(name, c, clusters[name])
		}
	}
	n.clusters = clusters
	if old != nil {
		for _, r := range old.Config.Routes {
			if !hasRoute(cfg, r.Name) {
				n.metrics.ForgetRoute(r.Name)
			}
		}
	}
	return nil
}

// socketKey names the socket a listener config needs: its address, so that a
// renamed or reconfigured listener takes over the same socket — except for
// port 0, where each listener has its own ephemeral port.
func socketKey(l config.Listener) string {
	if strings.HasSuffix(l.Address, ":0") {
		return l.Name + "@" + l.Address
	}
	return l.Address
}

func (n *Node) retire(l *listen.Listener, drain time.Duration) {
	defer n.retiring.Done()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	l.Shutdown(ctx)
	n.log.Info("listener removed", "listener", l.Config().Name, "address", l.Config().Address)
}

// forgetEndpoints drops the endpoint series of a replaced (or removed)
// upstream's endpoints that its replacement does not have: those it has
// are reported by the replacement already.
func (n *Node) forgetEndpoints(name string, old, replacement *clusterRef) {
	kept := map[string]bool{}
	if replacement != nil {
		for _, e := range replacement.cluster.Upstream.Endpoints() {
			kept[e.Addr] = true
		}
	}
	for _, e := range old.cluster.Upstream.Endpoints() {
		if !kept[e.Addr] {
			n.metrics.EndpointRemoved(name, e.Addr)
		}
	}
}

func hasRoute(cfg *config.Config, name string) bool {
	for _, r := range cfg.Routes {
		if r.Name == name {
			return true
		}
	}
	return false
}

// callerPolicy compiles an mTLS listener's allow list and consumers
// section (nil for others).
func (n *Node) callerPolicy(lc config.Listener) (*dataplane.Caller, error) {
	if lc.MTLS == nil {
		return nil, nil
	}
	if n.identity == nil {
		return nil, fmt.Errorf("listener %q: mtls needs the node's identity, which is set at start only", lc.Name)
	}
	c := &dataplane.Caller{Self: func() string {
		if svid, err := n.identity.GetX509SVID(); err == nil {
			return svid.ID.String()
		}
		return ""
	}}
	for _, a := range lc.MTLS.Allow {
		p, err := pki.ParsePattern(a)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
		}
		c.Allow = append(c.Allow, p)
	}
	consumers, err := dataplane.NewConsumers(lc.Consumers)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	c.Consumers = consumers
	c.ForwardedAll = lc.MTLS.ForwardedFrom == nil
	for _, a := range lc.MTLS.ForwardedFrom {
		p, err := pki.ParsePattern(a)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
		}
		c.ForwardedFrom = append(c.ForwardedFrom, p)
	}
	return c, nil
}

func scheme(l config.Listener) string {
	if l.TLS != nil || l.MTLS != nil {
		return "https"
	}
	return "http"
}

func (n *Node) startAdmin(cfg config.Admin) error {
	mux := http.NewServeMux()
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", n.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.ready.Load() || n.draining.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	n.adminLn = ln
	n.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = n.admin.Serve(ln) }()
	n.log.Info("admin listening", "address", ln.Addr().String())
	return nil
}

// Shutdown drains: readiness turns false, listeners stop accepting and wait
// for requests in flight up to the configured drain timeout (or ctx), then
// tunnels and pools are closed.
func (n *Node) Shutdown(ctx context.Context) error {
	n.draining.Store(true)
	if n.mesh != nil {
		// Leave first: peers stop sending new requests here while the
		// listeners drain the ones in flight.
		n.mesh.leave()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	snap := n.current.Load()
	if snap != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, snap.Config.Server.DrainTimeout.D())
		defer cancel()
	}
	for _, s := range n.sockets {
		s.Close() // stop accepting first
	}
	var wg sync.WaitGroup
	for _, l := range n.listeners {
		wg.Add(1)
		go func() { defer wg.Done(); l.Shutdown(ctx) }()
	}
	wg.Wait()
	// Listeners retired by earlier reloads finish too (their own drain
	// timeouts bound them).
	retired := make(chan struct{})
	go func() { n.retiring.Wait(); close(retired) }()
	select {
	case <-retired:
	case <-ctx.Done():
	}
	n.tunnels.CloseAll()
	n.closeAllLocked()
	return nil
}

// policiesFor returns the policies that build cfg's route stages (in
// policy.Order whatever the order here). The limiter's policies must
// already be cfg's.
func (n *Node) policiesFor(cfg *config.Config) []policy.Builder {
	return []policy.Builder{
		auth.Policy(auth.Deps{Auth: cfg.Auth, Consumers: cfg.Consumers, Tiers: cfg.Tiers, Metrics: n.metrics, Logger: n.log}),
		dataplane.TierLimit(n.limits, cfg.Tiers),
		dataplane.RateLimit(n.limits),
		cache.Policy(cache.Deps{Stores: n.caches, MaxBytes: int64(cfg.Cache.MaxBytes), Metrics: n.metrics, Now: n.opts.Clock.Now}),
		transform.Policy(transform.Deps{Metrics: n.metrics, Logger: n.log}),
		fallback.Policy(fallback.Deps{Metrics: n.metrics, Logger: n.log}),
		aggregate.Policy(aggregate.Deps{Calls: cfg.Calls, Metrics: n.metrics, Logger: n.log}),
	}
}

// retireSnapshot retires the serving snapshot at shutdown.
func (n *Node) retireSnapshot() {
	if snap := n.current.Swap(nil); snap != nil {
		snap.Retire()
	}
}

func (n *Node) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closeAllLocked()
}

func (n *Node) closeAllLocked() {
	for _, l := range n.listeners {
		l.Close()
	}
	n.retireSnapshot()
	n.listeners = map[string]*listen.Listener{}
	for _, s := range n.sockets {
		s.Close()
	}
	n.sockets = map[string]*listen.Socket{}
	for _, c := range n.clusters {
		c.cluster.Close()
	}
	n.clusters = map[string]*clusterRef{}
	if n.admin != nil {
		n.admin.Close()
	}
	if n.adminAPI != nil {
		n.adminAPI.Stop()
		n.adminAPI = nil
	}
	if n.mesh != nil {
		n.mesh.stop()
	}
	if n.stopShared != nil {
		n.stopShared()
		n.stopShared = nil
	}
	if n.closeIdentity != nil {
		_ = n.closeIdentity()
		n.closeIdentity = nil
	}
	if n.tracer != nil {
		// The listeners are closed: export the last spans, within a bound
		// that a black-holed collector cannot stretch.
		ctx, cancel := context.WithTimeout(context.Background(), tracerShutdownTimeout)
		if err := n.tracer.Shutdown(ctx); err != nil {
			n.log.Warn("tracing: shutdown", "err", err)
		}
		cancel()
	}
	if n.ownAccess {
		n.access.Close()
	} else if n.access != nil {
		n.access.Flush()
	}
}

// tracerShutdownTimeout bounds the export of the last spans at shutdown.
const tracerShutdownTimeout = 5 * time.Second
