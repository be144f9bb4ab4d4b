package dataplane

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// CallerHeader carries the caller's SPIFFE ID from an mTLS listener to the
// upstream. Any copy a client sends is removed on every listener: only the
// edge or sidecar that verified the caller's certificate sets it.
const CallerHeader = "X-Meshgate-Caller"

// identityHeaders say who the caller and the consumer are.
var identityHeaders = [...]string{CallerHeader, config.HeaderConsumer, config.HeaderTier}

// stripIdentity removes the identity headers from h in every spelling a
// backend may read as the same field: any case, and "_" for "-" (CGI,
// WSGI, PHP and Rack read X_Meshgate_Caller as HTTP_X_MESHGATE_CALLER).
func stripIdentity(h http.Header) {
	for k := range h {
		if isIdentityName(k) {
			delete(h, k)
		}
	}
}

func isIdentityName(k string) bool {
	if len(k) < len(config.HeaderTier) || len(k) > len(config.HeaderConsumer) || k[0]|0x20 != 'x' {
		return false
	}
	for _, id := range identityHeaders {
		if sameFieldName(k, id) {
			return true
		}
	}
	return false
}

// sameFieldName compares field names as a backend may: ASCII case
// ignored, '_' read as '-'.
func sameFieldName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// trailerFilter strips the identity headers from the request's trailers
// once the body has ended, before whoever reads it sees the end.
type trailerFilter struct {
	io.ReadCloser
	r *http.Request
}

func (f *trailerFilter) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if err == io.EOF {
		stripIdentity(f.r.Trailer)
	}
	return n, err
}

// Caller is the mTLS policy of a listener: who may call.
type Caller struct {
	// Allow: the patterns a caller's SPIFFE ID must match; empty: anyone
	// the TLS handshake accepted (an SVID of the trust domain).
	Allow []pki.Pattern
	// Self returns the node's own SPIFFE ID, for the log line of a denial.
	Self func() string
	// Consumers, when set, is the listener's consumers section: the
	// consumer headers of trusted callers are kept (everyone else's are
	// removed, as on any listener) and required or checked.
	Consumers *Consumers
	// ForwardedFrom: the callers whose forwarding headers are believed;
	// nil with ForwardedAll: every admitted caller.
	ForwardedFrom []pki.Pattern
	ForwardedAll  bool
}

// believesForwarded reports whether id's forwarding headers are believed.
func (c *Caller) believesForwarded(id spiffeid.ID) bool {
	if c.ForwardedAll {
		return true
	}
	for _, p := range c.ForwardedFrom {
		if p.Matches(id) {
			return true
		}
	}
	return false
}

// Entry is the handler of one listener: it resolves the request against the
// current snapshot, hands it to the route's chain, and records the outcome.
type Entry struct {
	listener string
	scheme   string
	caller   *Caller // nil: not an mTLS listener
	current  *atomic.Pointer[Snapshot]
	metrics  *telemetry.Metrics
	log      *telemetry.AccessLog
	tap      *telemetry.Tap
	ups      *telemetry.UpstreamStats
	ids      *proxy.RequestIDs
	logger   *slog.Logger
	tracer   *telemetry.Tracer // nil: tracing off
	// last is the latest snapshot's routes of this listener: a listener
	// being retired by a reload finishes its connections on them. The
	// entry holds that snapshot (its resources stay open) until Close.
	last   atomic.Pointer[listenerRoutes]
	mu     sync.Mutex // changes of the held snapshot
	closed atomic.Bool
}

// EntryOptions are what an Entry needs besides its listener's name.
type EntryOptions struct {
	Scheme string
	// First is the snapshot about to be published with the listener; it
	// must hold the listener.
	First   *Snapshot
	Current *atomic.Pointer[Snapshot]
	Metrics *telemetry.Metrics
	Log     *telemetry.AccessLog
	IDs     *proxy.RequestIDs
	Caller  *Caller
	// Logger receives authorization denials.
	Logger *slog.Logger
	// Tap, when set, receives a summary of every finished request (for
	// `meshctl tap`); it costs an atomic load while nobody listens.
	Tap *telemetry.Tap
	// UpstreamStats, when set, counts every request that reached an
	// upstream, for watching a traffic shift. Requests are timed on the
	// wall clock (ObserveAt): the stats must be on it too.
	UpstreamStats *telemetry.UpstreamStats
	// Tracer, when set, makes a server span of every request (and the
	// forwarders its attempts' client spans); nil costs nothing.
	Tracer *telemetry.Tracer
}

// NewEntry returns the handler of the named listener.
func NewEntry(listener string, o EntryOptions) *Entry {
	e := &Entry{listener: listener, scheme: o.Scheme, caller: o.Caller, current: o.Current,
		metrics: o.Metrics, log: o.Log, tap: o.Tap, ups: o.UpstreamStats, ids: o.IDs, logger: o.Logger, tracer: o.Tracer}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	lr := o.First.listeners[listener]
	lr.snap.hold()
	e.last.Store(lr)
	return e
}

// Close lets go of the snapshot the entry holds for its listener; call it
// once the listener has stopped serving. A connection handed over late (its
// handshake finished during the drain) is still routed on the last routes,
// though their stages' resources may be released by then: stages answer
// such requests with an error of their own rather than fail.
func (e *Entry) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Swap(true) {
		return
	}
	e.last.Load().snap.Release()
}

// routes returns the listener's routes in snap, or, when a reload removed
// the listener, the last ones it had.
func (e *Entry) routes(snap *Snapshot) *listenerRoutes {
	last := e.last.Load()
	lr := snap.listeners[e.listener]
	if lr == nil || last == lr {
		return last
	}
	// A new snapshot (once per reload): hold it instead of the old one.
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return lr // holds nothing any more
	}
	if last = e.last.Load(); last != lr {
		lr.snap.hold()
		e.last.Store(lr)
		last.snap.Release()
	}
	return lr
}

func (e *Entry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := Acquire(e.current)
	defer snap.Release()
	x := &exchange.Exchange{Start: time.Now(), Listener: e.listener, Scheme: e.scheme,
		GRPC: r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")}
	x.ClientIP, x.PeerTrusted = snap.trusted.ClientIP(r.RemoteAddr, r.Header)
	if id := r.Header.Get("X-Request-Id"); proxy.ValidRequestID(id) {
		x.RequestID = id
	} else {
		x.RequestID = e.ids.Next()
	}
	w.Header()["X-Request-Id"] = []string{x.RequestID}
	rw := exchange.Recorder(w, x)
	stats := snap.none
	ctx := r.Context()
	var span *telemetry.Span // nil unless tracing
	if e.tracer != nil {
		span = e.startSpan(r, x)
		ctx = telemetry.ContextWithSpan(ctx, span)
	}
	defer func() { e.finish(r, rw, x, stats, span) }()

	// Identity headers are set by the node that verified them, never
	// taken from a client; a listener with consumers puts a trusted
	// caller's consumer back once the caller is verified.
	var cl claim
	if e.caller != nil && e.caller.Consumers != nil {
		cl = claim{consumer: r.Header[config.HeaderConsumer], tier: r.Header[config.HeaderTier]}
	}
	stripIdentity(r.Header)
	if r.Trailer != nil || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// Trailers follow the header rules: the announced ones now, the
		// ones that arrive when the body ends (into the same map, which
		// the upstream request sends) before its reader sees the end.
		stripIdentity(r.Trailer)
		r.Body = &trailerFilter{ReadCloser: r.Body, r: r}
	}
	if e.caller != nil {
		ok := e.authorize(rw, r, x, span, cl)
		if span != nil {
			authzAttributes(span, x, ok)
		}
		if !ok {
			return
		}
	}

	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		raw = r.URL.EscapedPath() // absolute-form request target
	}
	if !validTarget(raw) || !validTarget(r.URL.RawQuery) {
		// HTTP/1.x targets were checked by the server; an HTTP/2 :path
		// can carry anything, and must not reach an upstream request line.
		e.metrics.Rejected("malformed")
		exchange.Write(rw, x, exchange.BadTarget)
		return
	}
	path, err := route.NormalizePath(raw)
	if err != nil {
		e.metrics.Rejected("bad_path")
		exchange.WriteReason(rw, x, exchange.BadPath, "malformed request path: "+err.Error())
		return
	}
	x.Path = path
	lr := e.routes(snap)
	lr.table.Match(r.Host, r.Method, path, r.Header, r.URL.RawQuery, &x.Match)
	rt := x.Match.Route
	if rt == nil {
		if x.Match.MethodNotAllowed {
			rw.Header()["Allow"] = []string{x.Match.Allow}
			exchange.WriteReason(rw, x, exchange.MethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+x.Match.Allow)
			return
		}
		exchange.WriteReason(rw, x, exchange.NoRoute, "no route for "+r.Method+" "+path)
		return
	}
	stats = lr.stats[rt.Index]
	if !rt.Config.LenientPaths {
		if why := route.SuspiciousPath(raw); why != "" {
			e.metrics.Rejected("suspicious_path")
			exchange.WriteReason(rw, x, exchange.BadPath, "malformed request path: "+why+" (read as traversal by some servers)")
			return
		}
	}
	lr.handlers[rt.Index].ServeHTTP(rw, r.WithContext(exchange.With(ctx, x)))
}

func (e *Entry) finish(r *http.Request, w http.ResponseWriter, x *exchange.Exchange, stats *telemetry.RouteStats, span *telemetry.Span) {
	if x.Status == 0 {
		x.Status = http.StatusOK
	}
	d := time.Since(x.Start)
	name := ""
	if x.Match.Route != nil {
		name = x.Match.Route.Name
	}
	tap := e.tap.Active()
	var traceID, spanID string
	if span != nil {
		end := x.Start.Add(d)
		stats.ObserveSpan(x.Status, d.Seconds(), end, span)
		// The ids are read before End, which hands the span back.
		if e.log != nil || tap {
			traceID = span.TraceIDString()
		}
		if e.log != nil {
			spanID = span.SpanIDString()
		}
		endSpan(span, r, w, x, end)
	} else {
		stats.Observe(x.Status, d.Seconds())
	}
	if x.Tier != "" {
		e.metrics.TierRequest(name, x.Tier, x.Status)
	}
	if e.ups != nil && reachedUpstream(x) {
		e.ups.ObserveAt(x.Start.Add(d), x.Upstream, x.Status, d)
	}
	if tap {
		e.tap.Publish(telemetry.TapEvent{Time: x.Start, Route: name, Method: r.Method, Path: logPath(r, x),
			Status: x.Status, Latency: d, Upstream: x.Upstream, Endpoint: x.Endpoint, Caller: x.Caller, Consumer: x.Consumer,
			TraceID: traceID, RequestID: x.RequestID, ClientIP: x.ClientIP, Fallback: x.Fallback})
	}
	if e.log == nil {
		return
	}
	e.log.Log(&telemetry.Entry{
		Time: x.Start, Listener: x.Listener, Method: r.Method, Host: r.Host, Path: logPath(r, x),
		Route: name, Endpoint: x.Endpoint, Attempts: x.Attempts, Status: x.Status, Duration: d,
		BytesIn: x.BytesIn, BytesOut: x.BytesOut, RequestID: x.RequestID, ClientIP: x.ClientIP,
		Reason: x.Reason, Caller: x.Caller, Consumer: x.Consumer, Tier: x.Tier, TraceID: traceID, SpanID: spanID,
		Fallback: x.Fallback, FallbackReason: x.FallbackReason,
	})
}

// reachedUpstream tells whether the outcome of x belongs to x.Upstream
// (the route's upstream, or its split's pick): a forwarder took the request
// and made an attempt, or answered 5xx for an upstream it could not use
// (overloaded, circuit open, no healthy endpoint). Requests refused before
// an attempt for the client's fault (auth, rate limit, body too large) and
// tunnels (101: their duration is not a latency) are not counted.
func reachedUpstream(x *exchange.Exchange) bool {
	if x.Upstream == "" || x.Status == http.StatusSwitchingProtocols {
		return false
	}
	return x.Attempts > 0 || x.Status >= 500
}

// logPath is the normalized path when there is one, else the raw path.
func logPath(r *http.Request, x *exchange.Exchange) string {
	if x.Path != "" {
		return x.Path
	}
	return r.URL.Path
}

// validTarget accepts the visible ASCII a request target may carry.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// authorize checks the caller of an mTLS listener against its policy and
// passes the caller's ID on, then applies the listener's consumers policy
// (if any) to cl, the consumer headers the request came with; false when
// it answered the request itself. span is the request's server span (nil
// with tracing off), whose trace a denial's log line names.
func (e *Entry) authorize(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, span *telemetry.Span, cl claim) bool {
	if r.TLS == nil {
		exchange.Write(w, x, exchange.CallerRequired)
		return false
	}
	id, err := pki.PeerID(*r.TLS)
	if err != nil {
		exchange.Write(w, x, exchange.CallerRequired)
		return false
	}
	x.Caller = id.String()
	if len(e.caller.Allow) > 0 {
		allowed := false
		for _, p := range e.caller.Allow {
			if p.Matches(id) {
				allowed = true
				break
			}
		}
		if !allowed {
			self := ""
			if e.caller.Self != nil {
				self = e.caller.Self()
			}
			e.metrics.Denied(e.listener)
			args := []any{"listener", e.listener, "caller", x.Caller, "callee", self,
				"method", r.Method, "path", r.URL.Path, "request_id", x.RequestID}
			if span != nil {
				args = append(args, "trace_id", span.TraceIDString())
			}
			e.logger.Warn("caller denied", args...)
			exchange.WriteReason(w, x, exchange.CallerDenied, x.Caller+" may not call "+self)
			return false
		}
	}
	if e.caller.Consumers != nil && !e.admitConsumer(w, r, x, span, id, cl) {
		return false
	}
	r.Header[CallerHeader] = []string{x.Caller}
	if e.caller.believesForwarded(id) {
		// A meshgate peer set these for its own client: the client is the
		// last address it added, and its headers are extended, not replaced.
		x.PeerTrusted = true
		if ip := lastForwardedFor(r.Header["X-Forwarded-For"]); ip != "" {
			x.ClientIP = ip
		}
	}
	return true
}

// lastForwardedFor is the last address of X-Forwarded-For ("" when absent
// or not an IP address).
func lastForwardedFor(xff []string) string {
	if len(xff) == 0 {
		return ""
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	a, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return ""
	}
	return a.Unmap().String()
}
