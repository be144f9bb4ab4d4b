// Package upstream owns the state of one upstream: a named set of endpoints.
// It discovers endpoints (a Source), picks one per attempt (round robin,
// least request or consistent hash), checks their health actively, ejects
// outliers passively from live outcomes, admits requests under connection
// and pending limits, and keeps the retry budget.
//
// It does no forwarding: the proxy calls, per request,
//
//	release, err := u.Acquire(ctx)      // ErrOverloaded → 503
//	defer release()
//	key, _ := u.HashKey(r, clientIP)    // consistent_hash only
//	e, err := u.Pick(key, tried)        // per attempt
//	e.Begin(); …; e.Done(latency, outcome)
//	if retry: u.RetryAllowed() … u.RetryDone()
//
// The request path takes no upstream-wide lock except round robin's tiny
// mutex; endpoint sets are immutable snapshots swapped atomically.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

// Errors returned to the proxy, which maps both to 503.
var (
	// ErrNoEndpoint: the upstream has no endpoint at all (none configured,
	// resolved or discovered).
	ErrNoEndpoint = errors.New("upstream: no endpoint available")
	// ErrOverloaded: the in-flight and pending limits are both full.
	ErrOverloaded = errors.New("upstream: overloaded")
	// ErrCircuitOpen: every endpoint's circuit breaker is open.
	ErrCircuitOpen = errors.New("upstream: circuit open for every endpoint")
)

// Options are the dependencies of an Upstream. Every field is optional.
type Options struct {
	Clock    clock.Clock   // nil: clock.Real()
	Logger   *slog.Logger  // nil: discard
	Resolver *net.Resolver // nil: net.DefaultResolver
	Observer Observer      // nil: none
	// Source replaces the static source built from the config's endpoints
	// (for example gossip discovery).
	Source Source
	// HealthTransport carries the active health checks (for example with
	// mTLS). nil: a private plain-HTTP transport, closed by Close.
	HealthTransport http.RoundTripper
	// Breakers holds the node's circuit breakers (shared with the cluster);
	// used when the config has a breaker section. nil: none.
	Breakers *breaker.Registry
}

// Observer receives state changes, for metrics. Calls must not block; they
// may come from any goroutine, including one holding internal locks of this
// package, so an Observer must not call back into the Upstream.
type Observer interface {
	EndpointHealth(upstream, addr string, healthy bool)
	EndpointEjected(upstream, addr string, ejected bool)
	// EndpointRemoved: the endpoint left the upstream (discovery); its
	// state is no longer reported.
	EndpointRemoved(upstream, addr string)
}

type policy uint8

const (
	roundRobin policy = iota
	leastRequest
	consistentHash
)

// Upstream is the state owner of one upstream. It is safe for concurrent use.
type Upstream struct {
	name   string
	cfg    config.Upstream // a copy, with defaults applied
	policy policy
	clk    clock.Clock
	log    *slog.Logger
	obs    Observer
	src    Source
	brks   *breaker.Registry
	brkSet breaker.Settings

	set   atomic.Pointer[endpointSet]
	setMu sync.Mutex // serializes set swaps (writers only)

	ejectMu sync.Mutex // serializes ejection decisions (the percent cap)

	health       *http.Client
	ownTransport *http.Transport
	statusLo     int
	statusHi     int

	lim       limiter
	releaseFn func()
	budget    retryBudget

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
}

// New builds the upstream, starts endpoint discovery (waiting up to
// ConnectTimeout for the source's first set) and, when configured, active
// health checking. Close stops them.
func New(cfg config.Upstream, opts Options) (*Upstream, error) {
	if cfg.Name == "" {
		return nil, errors.New("upstream: name is required")
	}
	applyDefaults(&cfg)
	u := &Upstream{name: cfg.Name, cfg: cfg, clk: opts.Clock, log: opts.Logger, obs: opts.Observer, src: opts.Source}
	if b := cfg.Breaker; b != nil && opts.Breakers != nil {
		u.brks = opts.Breakers
		u.brkSet = breaker.Settings{ConsecutiveFailures: uint32(b.ConsecutiveFailures), FailureRatio: b.FailureRatio,
			MinRequests: uint32(b.MinRequests), Interval: b.Interval.D(), OpenTimeout: b.OpenTimeout.D(),
			MaxProbes: uint32(b.MaxProbes), Quorum: b.Quorum}
		if err := u.brkSet.Validate(); err != nil {
			return nil, fmt.Errorf("breaker: %w", err)
		}
	}
	switch cfg.Balancer.Policy {
	case "round_robin":
		u.policy = roundRobin
	case "least_request":
		u.policy = leastRequest
	case "consistent_hash":
		u.policy = consistentHash
		if cfg.Balancer.HashOn == nil {
			return nil, fmt.Errorf("upstream %q: consistent_hash needs hash_on", cfg.Name)
		}
	default:
		return nil, fmt.Errorf("upstream %q: unknown balancer policy %q", cfg.Name, cfg.Balancer.Policy)
	}
	if u.clk == nil {
		u.clk = clock.Real()
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.log = u.log.With("upstream", cfg.Name)
	if u.obs == nil {
		u.obs = nopObserver{}
	}
	if hc := cfg.HealthCheck; hc != nil {
		lo, hi, err := config.ParseStatusRange(hc.ExpectedStatus)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: health_check: %w", cfg.Name, err)
		}
		u.statusLo, u.statusHi = lo, hi
		rt := opts.HealthTransport
		if rt == nil {
			u.ownTransport = newHealthTransport(cfg)
			rt = u.ownTransport
		}
		u.health = &http.Client{
			Transport: rt,
			// A redirect is an answer: judge its status, do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if u.src == nil {
		u.src = NewStaticSource(cfg, opts)
	}
	u.lim.maxPending = int64(cfg.MaxPending)
	u.releaseFn = u.release
	u.budget.init(cfg.RetryBudget, u.clk)
	u.set.Store(u.buildSet(nil, nil))

	u.ctx, u.cancel = context.WithCancel(context.Background())
	first := make(chan struct{})
	var once sync.Once
	u.wg.Go(func() {
		u.src.Run(u.ctx, func(addrs []Address) {
			u.setAddresses(addrs)
			once.Do(func() { close(first) })
		})
	})
	wait := time.NewTimer(cfg.ConnectTimeout.D())
	select {
	case <-first:
	case <-wait.C:
		u.log.Warn("no endpoints yet from the source; starting without", "waited", cfg.ConnectTimeout.D())
	}
	wait.Stop()
	if cfg.HealthCheck != nil {
		u.wg.Go(u.healthLoop)
	}
	return u, nil
}

// Close stops discovery, health checking and pending ejection timers, and
// closes the health checker's idle connections. It is idempotent. Endpoints
// stay pickable (with frozen state) for requests still holding the Upstream.
func (u *Upstream) Close() {
	u.closeOnce.Do(func() {
		u.closed.Store(true)
		u.cancel()
		u.wg.Wait()
		for _, e := range u.set.Load().eps {
			e.stopEjectionTimer()
		}
		if u.ownTransport != nil {
			u.ownTransport.CloseIdleConnections()
		}
	})
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.name }

// Endpoints returns the current endpoints. The slice is shared and must not
// be modified; it is replaced, never changed, when the set changes.
func (u *Upstream) Endpoints() []*Endpoint { return u.set.Load().eps }

// breakerFor is the endpoint's circuit breaker, nil without one. Breakers
// are the registry's, keyed by address: the same endpoint has one breaker
// on this node whatever upstreams list it, and the same key on every node.
func (u *Upstream) breakerFor(addr string) *breaker.Breaker {
	if u.brks == nil {
		return nil
	}
	return u.brks.Breaker(addr, u.brkSet)
}

// applyDefaults fills in the defaults, config.DefaultUpstream's, of a
// config built in code; one that config parsed has them already. The
// endpoints, health check and outlier sections are copied first: the
// caller's config is never written.
func applyDefaults(c *config.Upstream) {
	c.Endpoints = slices.Clone(c.Endpoints)
	if h := c.HealthCheck; h != nil {
		hc := *h
		c.HealthCheck = &hc
	}
	if o := c.Outlier; o != nil {
		oc := *o
		c.Outlier = &oc
	} else {
		// Without an outlier section a connect failure still ejects the
		// endpoint: nothing listens there (a killed instance), and every
		// request sent to it until discovery or health checks notice would
		// fail or need a retry. 5xx answers do not eject.
		c.Outlier = &config.Outlier{ConsecutiveConnectErrors: 1, Consecutive5xx: math.MaxInt32,
			BaseEjection: config.Duration(DefaultConnectEjection), MaxEjection: config.Duration(12 * DefaultConnectEjection)}
	}
	config.DefaultUpstream(c)
}

// DefaultConnectEjection is how long a connect failure ejects an endpoint of
// an upstream without an outlier section (the n-th time in a row: n times
// as long, up to 12×): short, since a restarted instance comes back soon.
const DefaultConnectEjection = 5 * time.Second

type nopObserver struct{}

func (nopObserver) EndpointHealth(string, string, bool)  {}
func (nopObserver) EndpointRemoved(string, string)       {}
func (nopObserver) EndpointEjected(string, string, bool) {}
