package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/gossip/transport"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/sharedstate"
	"github.com/meshgate/meshgate/pki"
)

// The gossip suite's cluster: real memberlist nodes in this process, each on
// its own mTLS transport on a loopback port, each with the three state
// owners a meshgate node registers (replica 'r', breaker 'b', ratelimit
// 'l'). Only the intervals of gossip.Config's defaults apply (gossip 100ms,
// probe 1s, push/pull 15s), so what is measured is what a deployment gets.

const gossipTrustDomain = "bench.example"

// svidSource serves one fixed SVID and the CA's bundle: the transport reads
// them per handshake, and a benchmark never rotates them.
type svidSource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (s *svidSource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }
func (s *svidSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle.GetX509BundleForTrustDomain(td)
}

// logCounter counts the warnings and errors of the whole cluster (memberlist
// complaining about probes or push/pulls explains a slow convergence), and
// forwards them to next when set.
type logCounter struct {
	n    atomic.Int64
	next slog.Handler // nil: count only
}

func (h *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *logCounter) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	if h.next != nil {
		return h.next.Handle(ctx, r)
	}
	return nil
}
func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	if h.next == nil {
		return h
	}
	return &logChild{h, h.next.WithAttrs(as)}
}
func (h *logCounter) WithGroup(g string) slog.Handler {
	if h.next == nil {
		return h
	}
	return &logChild{h, h.next.WithGroup(g)}
}

// logChild is a logCounter's handler with attributes: it counts into its
// parent.
type logChild struct {
	root *logCounter
	next slog.Handler
}

func (h *logChild) Enabled(ctx context.Context, l slog.Level) bool { return h.root.Enabled(ctx, l) }
func (h *logChild) Handle(ctx context.Context, r slog.Record) error {
	h.root.n.Add(1)
	return h.next.Handle(ctx, r)
}
func (h *logChild) WithAttrs(as []slog.Attr) slog.Handler {
	return &logChild{h.root, h.next.WithAttrs(as)}
}
func (h *logChild) WithGroup(g string) slog.Handler { return &logChild{h.root, h.next.WithGroup(g)} }

// gnode is one cluster member with its owners. The hooks let a measurement
// observe the owners without rebuilding the node: they are read on every
// callback, so a measurement installs its own and removes it after.
type gnode struct {
	name  string
	tr    *transport.Transport
	c     *gossip.Cluster
	store *replica.Store
	brk   *breaker.Registry
	rl    *ratelimit.Limiter

	storeHook   atomic.Pointer[func()]
	breakerHook atomic.Pointer[func(endpoint string, to breaker.State)]

	stop func() // the shared state's
	down atomic.Bool
}

// gcluster is a set of nodes sharing a CA.
type gcluster struct {
	ca   *pki.CA
	log  *slog.Logger
	logs *logCounter
	// wrap, when set, wraps each node's transport (meshtest's fault
	// injection); addr is the node's advertise address.
	wrap func(addr string, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// tune, when set, changes a node's cluster settings from the node's
	// defaults (a measurement of other timings).
	tune  func(*gossip.Config)
	nodes []*gnode
}

func newGCluster(verbose io.Writer) (*gcluster, error) {
	ca, err := pki.NewCA(spiffeid.RequireTrustDomainFromString(gossipTrustDomain), pki.InitOptions{})
	if err != nil {
		return nil, err
	}
	lc := &logCounter{}
	if verbose != nil {
		lc.next = slog.NewTextHandler(verbose, &slog.HandlerOptions{Level: slog.LevelWarn})
	}
	return &gcluster{ca: ca, logs: lc, log: slog.New(lc)}, nil
}

// add creates, registers and starts one node that joins through join (none
// for the first). It does not wait for the join.
func (g *gcluster) add(name string, join ...string) (*gnode, error) {
	td := g.ca.TrustDomain()
	id, err := spiffeid.FromPath(td, "/gossip/"+name)
	if err != nil {
		return nil, err
	}
	svid, err := g.ca.IssueX509SVID(id, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	src := &svidSource{svid: svid, bundle: g.ca.Bundle()}
	log := g.log.With("node", name)
	tr, err := transport.New(transport.Options{BindAddr: "127.0.0.1:0", SVIDs: src, Bundles: src,
		Authorize: pki.AllowTrustDomain(td), Logger: log})
	if err != nil {
		return nil, err
	}
	var mt memberlist.NodeAwareTransport = tr
	if g.wrap != nil {
		mt = g.wrap(tr.AdvertiseAddr(), tr)
	}
	n := &gnode{name: name, tr: tr}
	// The cluster settings a node gets from an empty config section.
	cfg := gossip.Config{Name: name, Transport: mt, Meta: gossip.Meta{Role: "edge", ID: id.String()},
		Join: join, Logger: log, GossipInterval: config.DefaultGossipInterval,
		PushPullInterval: config.DefaultPushPullInterval, ProbeInterval: config.DefaultProbeInterval,
		SuspicionMult: config.DefaultSuspicionMult}
	if g.tune != nil {
		g.tune(&cfg)
	}
	c, err := gossip.New(cfg)
	if err != nil {
		tr.Shutdown()
		return nil, err
	}
	n.c = c
	n.store = replica.New(replica.Options{Node: name, Send: c.Sender('r'), OnChange: func() {
		if f := n.storeHook.Load(); f != nil {
			(*f)()
		}
	}})
	c.Register(n.store)
	// The breakers and the limiter as every node wires them.
	shared, err := sharedstate.Start(sharedstate.Options{Cluster: c, ExpectPeers: len(join) > 0, Logger: log,
		OnBreakerChange: func(endpoint string, _, to breaker.State, _ string) {
			if f := n.breakerHook.Load(); f != nil {
				(*f)(endpoint, to)
			}
		}})
	if err != nil {
		c.Shutdown()
		return nil, err
	}
	n.brk, n.rl, n.stop = shared.Breakers, shared.Limits, shared.Stop
	c.Start()
	g.nodes = append(g.nodes, n)
	return n, nil
}

// start adds n nodes named prefix-0 … all joining through the first, and
// waits until each sees all the others alive.
func (g *gcluster) start(ctx context.Context, prefix string, n int, timeout time.Duration) error {
	first := len(g.nodes)
	var seed string
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{seed}
		}
		nd, err := g.add(fmt.Sprintf("%s-%d", prefix, i), join...)
		if err != nil {
			return fmt.Errorf("node %d: %v", i, err)
		}
		if i == 0 {
			seed = nd.c.Addr()
		}
	}
	err := waitUntil(ctx, timeout, fmt.Sprintf("all %d nodes see each other", n), func() bool {
		for _, nd := range g.nodes[first:] {
			if nd.c.Peers() != n-1 {
				return false
			}
		}
		return true
	})
	if err != nil && ctx.Err() == nil {
		// Say how far it got: a few stragglers and a cluster that never
		// formed are different problems.
		hist := map[int]int{}
		for _, nd := range g.nodes[first:] {
			hist[nd.c.Peers()]++
		}
		err = fmt.Errorf("%v (nodes by peers seen: %v; %d cluster warnings; load %s)", err, hist, g.logs.n.Load(), loadAvg())
	}
	return err
}

// loadAvg is the 1-minute load average, for the log: the nodes share the
// machine's cores with whatever else runs.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// live returns the nodes not killed.
func (g *gcluster) live() []*gnode {
	var out []*gnode
	for _, n := range g.nodes {
		if !n.down.Load() {
			out = append(out, n)
		}
	}
	return out
}

// kill stops a node without leaving: to the others it crashed.
func (n *gnode) kill() {
	if n.down.Swap(true) {
		return
	}
	// Membership first: the limiter's final flush (on stop) must not reach
	// anyone, as a crashed node's would not.
	_ = n.c.Shutdown() // memberlist shuts the transport down
	n.stop()
}

// close stops every node, in parallel (each Shutdown waits for memberlist's
// goroutines).
func (g *gcluster) close() {
	var wg sync.WaitGroup
	for _, n := range g.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.kill() }()
	}
	wg.Wait()
	g.nodes = nil
}

// waitUntil polls ok every 5 ms until it holds, ctx ends or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting until %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
