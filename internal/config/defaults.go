package config

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Defaults, documented in docs/config.md.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyReadTimeout   = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultDrainTimeout      = 30 * time.Second
	DefaultRouteTimeout      = 15 * time.Second
	DefaultGossipInterval    = 100 * time.Millisecond
	DefaultPushPullInterval  = 15 * time.Second
	// DefaultProbeInterval and DefaultSuspicionMult put a silent host out
	// of discovery in 1.8–2.6 s in a cluster of five (make bench, suite
	// faults: detect_s_*; 1 s and 4 took 5.7–7 s, 500 ms and 3 up to
	// 3.4 s, waiting for a second node to confirm the suspicion), and no
	// healthy member was declared dead with every link at 5 % loss and
	// 20 ms of jitter (false_dead). A multiplier of 3 keeps Lifeguard's
	// confirmation: one node alone cannot declare another dead early.
	DefaultProbeInterval  = 400 * time.Millisecond
	DefaultSuspicionMult  = 3
	DefaultBackoffBase    = 25 * time.Millisecond
	DefaultBackoffMax     = 250 * time.Millisecond
	DefaultDNSRefresh     = 30 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultUpstreamIdle   = 90 * time.Second
	DefaultMaxConnections = 1024
	DefaultMaxPending     = 1024
	DefaultMaxIdle        = 128
	// DefaultTracingRatio samples 1 % of the traces started at this node:
	// with parent-based sampling the edge decides for a whole request
	// path, so at its tens of thousands of requests per second 1 % is
	// still hundreds of traces per second, while span volume (about five
	// spans per traced request through a mesh) and the collector's load
	// stay proportionate. Write 1 to trace every request (development,
	// low traffic).
	DefaultTracingRatio         = 0.01
	DefaultTracingQueueSize     = 2048
	DefaultTracingExportTimeout = 10 * time.Second
	DefaultTracingCompression   = "gzip"

	DefaultClockSkew                = 30 * time.Second
	DefaultConsumerClaim            = "sub"
	DefaultJWKSMinInterval          = time.Minute
	DefaultJWKSMaxInterval          = time.Hour
	DefaultJWKSUnknownKIDInterval   = 10 * time.Second
	DefaultIntrospectionCacheMax    = 5 * time.Minute
	DefaultIntrospectionInactiveTTL = 10 * time.Second
	DefaultIntrospectionTimeout     = 2 * time.Second
	DefaultTierOnIsolation          = "open"
)

func applyDefaults(c *Config) {
	if c.Log.Access == "" {
		c.Log.Access = "stdout"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	s := &c.Server
	setDur(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&s.BodyReadTimeout, DefaultBodyReadTimeout)
	setDur(&s.WriteTimeout, DefaultWriteTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setDur(&s.DrainTimeout, DefaultDrainTimeout)
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Protocol == "" {
			l.Protocol = "http"
			if l.TLS != nil || l.MTLS != nil {
				l.Protocol = "https"
			}
		}
		if l.H2C == nil {
			on := l.Protocol == "http"
			l.H2C = &on
		}
		if l.TLS != nil && l.TLS.MinVersion == "" {
			l.TLS.MinVersion = "1.2"
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Aggregate != nil {
			defaultAggregate(r)
		}
		setDur(&r.Timeout, DefaultRouteTimeout)
		if r.MaxBodyBytes == 0 {
			r.MaxBodyBytes = s.MaxBodyBytes
		}
		if r.Retry == nil && r.Aggregate == nil { // a composite retries per call
			// Retrying a request that never reached the upstream is always
			// safe; so is retrying an idempotent one whose endpoint did not
			// answer within its per-try timeout (a hung host).
			r.Retry = &Retry{Attempts: 2, On: []string{"connect-failure", "per-try-timeout"}}
		}
		if r.Retry != nil {
			DefaultRetry(r.Retry)
		}
		if f := r.Fallback; f != nil {
			if len(f.On) == 0 {
				f.On = slices.Clone(DefaultFallbackOn)
			}
			if f.Response != nil && f.Response.Status == 0 {
				f.Response.Status = http.StatusServiceUnavailable
			}
		}
	}
	if cl := c.Cluster; cl != nil {
		setDur(&cl.GossipInterval, DefaultGossipInterval)
		setDur(&cl.PushPullInterval, DefaultPushPullInterval)
		setDur(&cl.ProbeInterval, DefaultProbeInterval)
		if cl.SuspicionMult == 0 {
			cl.SuspicionMult = DefaultSuspicionMult
		}
	}
	if t := c.Tracing; t != nil {
		if t.Protocol == "" {
			t.Protocol = "grpc"
		}
		if t.Sampling.Ratio == nil {
			r := DefaultTracingRatio
			t.Sampling.Ratio = &r
		}
		setInt(&t.QueueSize, DefaultTracingQueueSize)
		setDur(&t.ExportTimeout, DefaultTracingExportTimeout)
		if t.Compression == "" {
			t.Compression = DefaultTracingCompression
			if loopbackEndpoint(t.Endpoint) {
				// An agent beside the node: compressing only costs the
				// exporter CPU, which it shares with the requests.
				t.Compression = "none"
			}
		}
	}
	for i := range c.Routes {
		if rl := c.Routes[i].RateLimit; rl != nil {
			setDur(&rl.Window, time.Minute)
			if rl.Key == "" {
				rl.Key = "route"
			}
			if rl.OnIsolation == "" {
				rl.OnIsolation = "open"
			}
		}
	}
	applyAuthDefaults(c)
	if c.Cache.MaxBytes == 0 {
		c.Cache.MaxBytes = DefaultCacheMaxBytes
	}
	for i := range c.Routes {
		if r := &c.Routes[i]; r.Cache != nil {
			defaultCache(r.Cache, r.Auth != nil)
		}
	}
	for i := range c.Routes {
		if t := c.Routes[i].Transform; t != nil {
			defaultTransform(t)
		}
	}
	for i := range c.Upstreams {
		DefaultUpstream(&c.Upstreams[i])
	}
}

// DefaultUpstream sets the defaults of one upstream, documented in
// docs/config.md, in place: the one place they are set. Every config
// parsed here (Parse, ParseSidecar, the cluster's resources) has them, and
// upstream.New applies them to its own copy, for configs built in code. It
// is idempotent, and leaves a value already set, valid or not, for
// validation to judge.
func DefaultUpstream(u *Upstream) {
	// Discovered endpoints are sidecars: always mTLS.
	if u.Service != nil && u.TLS == nil {
		u.TLS = &UpstreamTLS{}
	}
	if u.Protocol == "" {
		u.Protocol = "auto"
	}
	if u.Balancer.Policy == "" {
		u.Balancer.Policy = "round_robin"
	}
	for j := range u.Endpoints {
		if u.Endpoints[j].Weight == 0 {
			u.Endpoints[j].Weight = 1
		}
	}
	setDur(&u.DNSRefresh, DefaultDNSRefresh)
	setDur(&u.ConnectTimeout, DefaultConnectTimeout)
	setDur(&u.IdleTimeout, DefaultUpstreamIdle)
	setInt(&u.MaxConnections, DefaultMaxConnections)
	setInt(&u.MaxPending, DefaultMaxPending)
	setInt(&u.MaxIdlePerEndpoint, DefaultMaxIdle)
	if h := u.HealthCheck; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		setDur(&h.Interval, 5*time.Second)
		setDur(&h.Timeout, time.Second)
		setInt(&h.HealthyThreshold, 2)
		setInt(&h.UnhealthyThreshold, 3)
		if h.ExpectedStatus == "" {
			h.ExpectedStatus = "200-399"
		}
	}
	if o := u.Outlier; o != nil {
		setInt(&o.Consecutive5xx, 5)
		setInt(&o.ConsecutiveConnectErrors, 1)
		setDur(&o.BaseEjection, 30*time.Second)
		setDur(&o.MaxEjection, 300*time.Second)
		setInt(&o.MaxEjectedPercent, 50)
	}
	setInt(&u.RetryBudget.Percent, 20)
	setInt(&u.RetryBudget.MinPerSecond, 10)
}

// DefaultRetry sets the defaults of a retry policy that is present, in
// place: a route's, and a composite call's (which the engine applies to the
// resolved call: calls are not defaulted in the file, see defaultAggregate).
func DefaultRetry(rt *Retry) {
	setInt(&rt.Attempts, 2)
	if rt.On == nil {
		rt.On = []string{"connect-failure", "reset", "503", "per-try-timeout"}
	}
	setDur(&rt.BackoffBase, DefaultBackoffBase)
	setDur(&rt.BackoffMax, DefaultBackoffMax)
}

// defaultAggregate sets the defaults of a composite route, documented in
// docs/config.md. Its deadline is the route's timeout when that is set,
// else DefaultAggregateTimeout, and the route's timeout is then the same
// (one deadline, written in either place). The calls are left as written:
// a field set on a call overrides the definition it uses (Resolve), so a
// default there would clobber the definition's value. The engine defaults
// each resolved call with DefaultCall.
func defaultAggregate(r *Route) {
	a := r.Aggregate
	if a.Timeout == 0 {
		a.Timeout = r.Timeout
	}
	setDur(&a.Timeout, DefaultAggregateTimeout.D())
	setDur(&r.Timeout, a.Timeout.D())
	if a.MaxBody == 0 {
		a.MaxBody = DefaultAggregateMaxBody
	}
	setInt(&a.MaxConcurrency, DefaultAggregateConcurrency)
	setStr(&a.Missing, MissingOmit)
	if t := a.Transform; t != nil {
		setStr(&t.From, BodyJSON)
		setStr(&t.To, BodyJSON)
	}
}

// DefaultCall returns a resolved call of a composite (an entry of
// Config.ResolvedCalls) with the defaults documented in docs/config.md:
// method GET, max_body DefaultCallMaxBody, into its name, and a route's
// retry defaults (without retry: connect failures retried once). The
// call's retry is copied, never modified: definitions share it.
func DefaultCall(c AggregateCall) AggregateCall {
	setStr(&c.Method, "GET")
	if c.MaxBody == 0 {
		c.MaxBody = DefaultCallMaxBody
	}
	setStr(&c.Into, c.Name)
	rt := Retry{Attempts: 2, On: []string{"connect-failure"}}
	if c.Retry != nil {
		rt = *c.Retry
	}
	DefaultRetry(&rt)
	c.Retry = &rt
	return c
}

// applyAuthDefaults defaults auth, tiers and routes' auth.
func applyAuthDefaults(c *Config) {
	for i := range c.Auth.JWT {
		j := &c.Auth.JWT[i]
		setDur(&j.ClockSkew, DefaultClockSkew)
		setStr(&j.ConsumerClaim, DefaultConsumerClaim)
		setDur(&j.Refresh.MinInterval, DefaultJWKSMinInterval)
		setDur(&j.Refresh.MaxInterval, DefaultJWKSMaxInterval)
		setDur(&j.Refresh.UnknownKIDInterval, DefaultJWKSUnknownKIDInterval)
	}
	for i := range c.Auth.Introspection {
		in := &c.Auth.Introspection[i]
		setStr(&in.ConsumerClaim, DefaultConsumerClaim)
		setDur(&in.CacheMax, DefaultIntrospectionCacheMax)
		setDur(&in.InactiveTTL, DefaultIntrospectionInactiveTTL)
		setDur(&in.Timeout, DefaultIntrospectionTimeout)
	}
	for i := range c.Tiers {
		setStr(&c.Tiers[i].OnIsolation, DefaultTierOnIsolation)
	}
	for i := range c.Routes {
		if a := c.Routes[i].Auth; a != nil && a.TierLimits == nil {
			on := true
			a.TierLimits = &on
		}
	}
}

func setStr(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

// defaultTransform sets the defaults of a route's transform, documented in
// docs/config.md: max_body 1MiB, on_too_large reject on the request side
// and pass on the response side, bodies from and to JSON.
func defaultTransform(t *Transform) {
	if t.MaxBody == 0 {
		t.MaxBody = DefaultTransformMaxBody
	}
	for _, side := range []struct {
		s          *TransformSide
		onTooLarge string
	}{{t.Request, OnTooLargeReject}, {t.Response, OnTooLargePass}} {
		if side.s == nil {
			continue
		}
		setStr(&side.s.OnTooLarge, side.onTooLarge)
		if b := side.s.Body; b != nil {
			setStr(&b.From, BodyJSON)
			setStr(&b.To, BodyJSON)
		}
	}
}

// loopbackEndpoint reports whether a host:port names this machine
// (localhost or a loopback address).
func loopbackEndpoint(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
