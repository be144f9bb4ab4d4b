package cache

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/httpcache"
	"github.com/meshgate/meshgate/internal/policy"
)

// Name is the cache's name in Cache-Status (RFC 9211).
const Name = "meshgate"

// Results of a request, the result label of meshgate_cache_requests_total.
const (
	ResultHit       = "hit"       // answered from the store, fresh
	ResultCollapsed = "collapsed" // answered with a concurrent miss's response
	// ResultMiss: nothing usable stored: forwarded (or 504 to a request
	// with only-if-cached).
	ResultMiss = "miss"
	// ResultStale: stored but stale or to validate, and forwarded, a new
	// response came; or answered stale, in its stale-while-revalidate
	// window or because the upstream failed within its stale-if-error one.
	ResultStale = "stale"
	// ResultRevalidated: stale, the upstream answered 304, answered from
	// the store; also each background revalidation (stale-while-revalidate).
	ResultRevalidated = "revalidated"
	ResultBypass      = "bypass" // not a request the cache takes (ranges, upgrades, gRPC)
)

// Counter counts cache results (telemetry.Metrics in a node).
type Counter interface {
	CacheRequest(route, result string)
}

type nopCounter struct{}

func (nopCounter) CacheRequest(string, string) {}

// Deps are what the cache stages of one snapshot share.
type Deps struct {
	// Stores are the node's stores; MaxBytes (cache.max_bytes) picks one.
	Stores   *Stores
	MaxBytes int64
	// Metrics counts results (meshgate_cache_requests_total); nil: not counted.
	Metrics Counter
	// Now is the stages' clock (nil: the real one); the stores have their own.
	Now func() time.Time
}

// Policy returns the builder of cache stages.
func Policy(d Deps) policy.Builder {
	if d.Stores == nil {
		d.Stores = NewStores(nil, d.Now)
	}
	if d.MaxBytes <= 0 { // a config built in code, without defaults
		d.MaxBytes = config.DefaultCacheMaxBytes
	}
	return builder{d}
}

// builder builds cache stages; unlike policy.Of it sees the whole route,
// whose timeout bounds background revalidations.
type builder struct{ d Deps }

func (builder) Name() string { return "cache" }

func (b builder) Build(rt *config.Route, env policy.Env, next http.Handler) (http.Handler, error) {
	c := rt.Cache
	if c == nil {
		return next, nil
	}
	scope := env.Scope
	if scope == nil {
		scope = policy.NewScope(nil)
	}
	st, err := b.d.Stores.Acquire(scope, b.d.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	o := Options{Route: env.Route, Store: st, Metrics: b.d.Metrics, Now: b.d.Now, Timeout: rt.Timeout.D()}
	if rt.Fallback != nil {
		o.FallbackStale = rt.Fallback.Stale.D()
	}
	return New(c, o, next), nil
}

// Options are a stage's surroundings.
type Options struct {
	Route   string
	Store   *cachestore.Store
	Metrics Counter          // nil: not counted
	Now     func() time.Time // nil: time.Now
	// Timeout bounds a background revalidation (the route's timeout; 0:
	// config.DefaultRouteTimeout).
	Timeout time.Duration
	// FallbackStale is the route's fallback.stale: how long past its
	// freshness a stored response may stand in for an upstream failure
	// the route's fallback names.
	FallbackStale time.Duration
}

// stage is one route's cache.
type stage struct {
	route       string
	next        http.Handler
	store       *cachestore.Store
	collapse    cachestore.Collapser
	count       Counter
	now         func() time.Time
	ttl         time.Duration
	maxBody     int64
	perConsumer bool
	setCookie   bool
	wait        time.Duration
	// staleIfError: the route's stale_if_error, for responses stating none.
	staleIfError time.Duration
	// fallbackStale: the route's fallback.stale (Options.FallbackStale).
	fallbackStale time.Duration
	// timeout bounds a background revalidation.
	timeout time.Duration
	// bg counts the background revalidations in flight (tests wait on it).
	bg sync.WaitGroup
	// dates holds the Date value of the last second one was added in.
	dates atomic.Pointer[dateLine]
	// lastDate is the last Date value a response came with, parsed.
	lastDate atomic.Pointer[parsedDate]
}

// New returns the cache stage of c (defaults applied) around next.
func New(c *config.Cache, o Options, next http.Handler) http.Handler {
	s := &stage{route: o.Route, next: next, store: o.Store, count: o.Metrics, now: o.Now,
		ttl: c.TTL.D(), maxBody: int64(c.MaxBody), perConsumer: c.PerConsumer(),
		setCookie: c.StoreSetCookie, wait: c.CollapseWait.D(), staleIfError: c.StaleIfError.D(), timeout: o.Timeout,
		fallbackStale: o.FallbackStale}
	if s.timeout <= 0 {
		s.timeout = config.DefaultRouteTimeout
	}
	if s.count == nil {
		s.count = nopCounter{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if lim := s.store.MaxEntryBytes(); s.maxBody <= 0 || s.maxBody > lim {
		s.maxBody = lim
	}
	return s
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange.From(r.Context())
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions, http.MethodTrace, http.MethodConnect:
		s.next.ServeHTTP(w, r)
		return
	default:
		s.unsafe(w, r, x)
		return
	}
	if (x != nil && x.GRPC) || r.Header.Get("Upgrade") != "" || r.Header.Get("Range") != "" {
		// A range or an upgrade is not a whole response to store or serve;
		// gRPC is not HTTP caching's.
		s.count.CacheRequest(s.route, ResultBypass)
		s.next.ServeHTTP(w, r)
		return
	}
	q := s.newRequest(r, x)
	e := s.lookup(q)
	if e == nil {
		if len(r.Header["Cache-Control"]) > 0 && httpcache.RequestDirectives(r.Header).OnlyIfCached {
			s.notCached(w)
			return
		}
		fwd := httpcache.FwdURIMiss
		if _, stored := s.store.Lookup(q.key, nil); stored {
			fwd = httpcache.FwdVaryMiss
		}
		s.miss(w, q, fwd)
		return
	}
	now := s.now()
	f := factsOf(e)
	age, life := ageOf(e, f, now), s.lifetime(f)
	reqDir := httpcache.RequestDirectives(r.Header)
	validate := f.NoCache // httpcache.RequiresValidation
	if !validate && httpcache.UsableFresh(reqDir, age, life) {
		s.count.CacheRequest(s.route, ResultHit)
		s.serve(w, r, e, age, httpcache.CacheStatus{Hit: true, TTL: life - age})
		return
	}
	resp := s.staleDirectives(f)
	if reqDir.OnlyIfCached {
		// The client wants no request upstream (RFC 9111 §5.2.1.7): a
		// stored response its own max-stale accepts, else 504.
		if httpcache.ServeStale(resp, reqDir, age, life, httpcache.StaleRequested) {
			s.count.CacheRequest(s.route, ResultStale)
			s.serve(w, r, e, age, httpcache.CacheStatus{Hit: true, TTL: life - age})
			return
		}
		s.notCached(w)
		return
	}
	if life <= age && httpcache.ServeStale(resp, reqDir, age, life, httpcache.StaleRevalidating) {
		// Within stale-while-revalidate (or the request's max-stale):
		// answered now, refreshed behind the client's back. A stale hit
		// is a hit with a negative ttl (RFC 9211 §2.4).
		s.count.CacheRequest(s.route, ResultStale)
		s.refresh(q, e)
		s.serve(w, r, e, age, httpcache.CacheStatus{Hit: true, TTL: life - age})
		return
	}
	fwd := httpcache.FwdStale
	if !validate && life > age {
		fwd = httpcache.FwdRequest // fresh, but not for this request (no-cache, max-age, min-fresh)
	}
	// The entry answers instead of an upstream failure when stale-if-error
	// or the route's fallback allows it; only then is a failure held back
	// from the client.
	var sb *standby
	if when := s.mayStandIn(resp, reqDir, age, life); when != never {
		sb = &standby{e: e, when: when}
	}
	if f.HasValidator {
		s.revalidate(w, q, e, fwd, sb)
		return
	}
	s.count.CacheRequest(s.route, ResultStale)
	s.forwardOr(w, q, fwd, sb)
}

// notCached answers a request with only-if-cached that nothing stored may
// answer: 504 (RFC 9111 §5.2.1.7), without going upstream.
func (s *stage) notCached(w http.ResponseWriter) {
	s.count.CacheRequest(s.route, ResultMiss)
	h := w.Header()
	h.Set("Cache-Status", httpcache.CacheStatus{Detail: "only-if-cached"}.String(Name))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusGatewayTimeout)
	_, _ = io.WriteString(w, "not in the cache (only-if-cached)\n")
}

// request is one cacheable request and what the stage derived from it.
type request struct {
	r   *http.Request
	key string
	// getKey is the GET key of a HEAD request (a stored GET answers it).
	getKey string
	path   string
	// authorized: RFC 9111 §3.5 applies (the request carried credentials
	// and the route shares entries across consumers).
	authorized bool
	start      time.Time
}

func (s *stage) newRequest(r *http.Request, x *exchange.Exchange) *request {
	target := httpcache.RequestTarget(r.URL)
	consumer := ""
	if x != nil {
		consumer = x.Consumer
	}
	scope := ""
	authorized := r.Header.Get("Authorization") != "" || consumer != ""
	if s.perConsumer && consumer != "" {
		// Keyed per consumer: entries are that consumer's own, so the
		// credentials it came with do not make them shared.
		scope, authorized = consumer, false
	}
	q := &request{r: r, key: s.key(r.Method, r.Host, target, scope), authorized: authorized, start: s.now()}
	if r.Method == http.MethodHead {
		q.getKey = s.key(http.MethodGet, r.Host, target, scope)
	}
	q.path, _, _ = strings.Cut(target, "?")
	return q
}

// key is a primary key: route, method, host, target and the consumer of a
// route keyed per consumer, NUL-separated (none of them holds a NUL).
func (s *stage) key(method, host, target, consumer string) string {
	k := s.route + "\x00" + method + "\x00" + strings.ToLower(host) + target
	if consumer != "" {
		k += "\x00" + consumer
	}
	return k
}

// lookup returns the stored response that may answer q (fresh or not),
// or nil.
func (s *stage) lookup(q *request) *cachestore.Entry {
	match := func(e *cachestore.Entry) bool {
		k, ok := httpcache.VaryKey(e.Vary, q.r.Header)
		return ok && k == e.Secondary && (!q.authorized || sharable(factsOf(e)))
	}
	if e, ok := s.store.Lookup(q.key, match); ok {
		return e
	}
	if q.getKey != "" {
		if e, ok := s.store.Lookup(q.getKey, match); ok {
			return e
		}
	}
	return nil
}

// sharable reports whether a response (f its facts) may answer a request
// with credentials from a shared cache (RFC 9111 §3.5).
func sharable(f httpcache.Facts) bool {
	return f.Public || f.HasSMaxAge || f.MustRevalidate
}
