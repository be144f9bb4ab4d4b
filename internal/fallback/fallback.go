// Package fallback is the policy stage that answers in the upstream's
// place when it fails (routes[].fallback): when the route's cache holds a
// response that may stand in (fallback.stale, or the response's
// stale-if-error) the cache answers with it; else the request goes to
// another upstream, then, if that fails too or cannot be tried, a static
// response is sent; without any, the failure goes out as it came.
//
// The stage sits right around the forwarder (policy.Order), so what it
// answers passes through the route's response transform and the cache
// like the upstream's own answer. It watches the status line the
// forwarder writes: a failure the route names (the proxy's own errors by
// kind, the upstream's 5xx by status) is held back — at most maxHeld
// bytes of it; a larger one goes out as it comes — and nothing of it
// reaches the client unless every fallback fails. A 4xx is the upstream's
// answer and is never replaced; gRPC and upgrade requests are left alone
// (their clients cannot read a static JSON answer).
package fallback

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// maxHeld bounds a failure response held while a fallback is tried.
const maxHeld = 64 << 10

// Ways a fallback answered (exchange.Fallback, the metric's via label).
const (
	ViaUpstream = "upstream"
	ViaResponse = "response"
	// ViaStale: the route's cache answered with a stored response.
	ViaStale = exchange.FallbackStale
	viaNone  = "none" // every fallback failed: the failure went out
)

// Counter counts fallbacks (telemetry.Metrics in a node).
type Counter interface {
	Fallback(route, reason, via string)
}

// Deps are what the stages of one snapshot share.
type Deps struct {
	// Metrics counts fallbacks (meshgate_fallbacks_total); nil: not counted.
	Metrics Counter
	Logger  *slog.Logger
}

type nopCounter struct{}

func (nopCounter) Fallback(string, string, string) {}

// Policy returns the builder of fallback stages.
func Policy(d Deps) policy.Builder {
	if d.Metrics == nil {
		d.Metrics = nopCounter{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return policy.Of("fallback", func(r *config.Route) *config.Fallback { return r.Fallback },
		func(c *config.Fallback, env policy.Env, next http.Handler) (http.Handler, error) {
			return build(c, env, next, d)
		})
}

// stage is one route's fallback.
type stage struct {
	route    string
	next     http.Handler
	backup   http.Handler // the route's forwarding to the fallback upstream; nil: none
	response *static      // nil: none
	kinds    map[*exchange.Kind]bool
	statuses [100]bool // 500..599
	count    Counter
	log      *slog.Logger
}

func build(c *config.Fallback, env policy.Env, next http.Handler, d Deps) (http.Handler, error) {
	s := &stage{route: env.Route, next: next, kinds: map[*exchange.Kind]bool{}, count: d.Metrics, log: d.Logger}
	for _, on := range c.On {
		switch on {
		case config.FallbackCircuitOpen:
			s.kinds[exchange.CircuitOpen] = true
		case config.FallbackNoEndpoint:
			s.kinds[exchange.NoHealthyEndpoint] = true
		case config.FallbackConnectFailure:
			s.kinds[exchange.ConnectFailed] = true
		case config.FallbackReset:
			s.kinds[exchange.ConnectionReset] = true
		case config.FallbackTimeout:
			s.kinds[exchange.UpstreamTimeout] = true
			s.kinds[exchange.PendingTimeout] = true
		case config.FallbackOverloaded:
			s.kinds[exchange.Overloaded] = true
		case config.Fallback5xx:
			for i := range s.statuses {
				s.statuses[i] = true
			}
		default: // a status 500..599 (validated)
			if code, err := strconv.Atoi(on); err == nil && code >= 500 && code < 600 {
				s.statuses[code-500] = true
			}
		}
	}
	if c.Upstream != "" {
		if env.Reroute == nil {
			return nil, errNoReroute
		}
		h, err := env.Reroute(c.Upstream)
		if err != nil {
			return nil, err
		}
		s.backup = h
	}
	if c.Response != nil {
		s.response = newStatic(c.Response)
	}
	return s, nil
}

var errNoReroute = errors.New("a fallback upstream needs a node that forwards (no reroute here)")

// reason names the failure a status line shows, if the route falls back
// on it ("": it does not).
func (s *stage) reason(code int, x *exchange.Exchange) string {
	if x.Error != nil {
		if s.kinds[x.Error] {
			return x.Error.Name
		}
		return ""
	}
	if code >= 500 && code < 600 && s.statuses[code-500] {
		return statusReasons[code-500]
	}
	return ""
}

// statusReasons are the reasons of upstream statuses: status_500 … status_599.
var statusReasons = func() (r [100]string) {
	for i := range r {
		r[i] = "status_" + strconv.Itoa(500+i)
	}
	return r
}()

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange.From(r.Context())
	if x == nil || x.GRPC || r.Header.Get("Upgrade") != "" {
		s.next.ServeHTTP(w, r)
		return
	}
	var guard *bodyGuard
	if r.Body != nil && r.Body != http.NoBody {
		guard = &bodyGuard{ReadCloser: r.Body}
		r.Body = guard
	}
	first := getWatcher(w, x, s, true)
	defer first.release()
	s.next.ServeHTTP(first, r)
	if first.held == nil || first.held.Spilled() {
		return // answered, or a failure too large to hold went out
	}
	reason := first.failure
	span := telemetry.SpanFromContext(r.Context())
	if x.StaleAvailable {
		// The cache around this stage holds a response that may answer
		// (routes[].fallback.stale, or its stale-if-error): a real, if
		// stale, answer comes before every other fallback. The failure
		// goes on to the cache, which keeps it from the client.
		x.Fallback, x.FallbackReason = ViaStale, reason
		_ = first.held.Send()
		s.observe(span, x, reason, ViaStale)
		return
	}
	// The failure's record, should every fallback fail.
	failedErr, failedReason, failedUp, failedEP, failedAttempts := x.Error, x.Reason, x.Upstream, x.Endpoint, x.Attempts
	// The forwarder may have held a small body whole (proxy.BufferedBody):
	// that one can be sent again.
	replayable := false
	if rb, ok := r.Body.(interface{ Replayable() bool }); ok {
		replayable = rb.Replayable()
	}
	if s.backup != nil && (guard == nil || !guard.read || replayable) {
		if guard != nil && !replayable {
			r.Body = guard.ReadCloser
		}
		x.Error, x.Reason, x.Attempts, x.Endpoint = nil, "", 0, ""
		x.Fallback, x.FallbackReason = ViaUpstream, reason
		second := getWatcher(w, x, s, s.response != nil)
		s.backup.ServeHTTP(second, r)
		held, failedToo := second.held != nil && !second.held.Spilled(), second.failure != ""
		second.release()
		if !failedToo {
			s.observe(span, x, reason, ViaUpstream)
			return
		}
		if !held { // its failure went out: there is no static response
			x.Fallback, x.FallbackReason = "", ""
			s.observe(span, x, reason, viaNone)
			return
		}
	}
	if s.response != nil {
		x.Error, x.Reason = nil, failedReason
		x.Fallback, x.FallbackReason = ViaResponse, reason
		s.response.write(w, x)
		s.observe(span, x, reason, ViaResponse)
		return
	}
	// Nothing stood in: the first failure goes out, as it came.
	x.Error, x.Reason, x.Upstream, x.Endpoint, x.Attempts = failedErr, failedReason, failedUp, failedEP, failedAttempts
	x.Fallback, x.FallbackReason = "", ""
	_ = first.held.Send()
	s.observe(span, x, reason, viaNone)
}

func (s *stage) observe(span *telemetry.Span, x *exchange.Exchange, reason, via string) {
	s.count.Fallback(s.route, reason, via)
	if via == viaNone {
		s.log.Debug("fallback failed too", "route", s.route, "reason", reason, "request_id", x.RequestID)
	}
	if span.Recording() {
		span.AddEvent("meshgate.fallback", time.Now(), "meshgate.reason", reason, "meshgate.fallback.via", via)
	}
}

// bodyGuard tells whether anything read the request body: one that was
// read cannot be sent to the fallback upstream.
type bodyGuard struct {
	io.ReadCloser
	read bool
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.read = true
	return g.ReadCloser.Read(p)
}

// static is a fallback response, its body split around {request_id}.
type static struct {
	status int
	header http.Header
	parts  []string // the body between {request_id}s
}

func newStatic(c *config.FallbackResponse) *static {
	st := &static{status: c.Status, header: http.Header{}, parts: strings.Split(c.Body, "{request_id}")}
	st.header.Set("Content-Type", "application/json")
	st.header.Set("Cache-Control", "no-store")
	for k, v := range c.Headers {
		st.header.Set(k, v)
	}
	return st
}

func (st *static) write(w http.ResponseWriter, x *exchange.Exchange) {
	body := st.parts[0]
	if len(st.parts) > 1 {
		body = strings.Join(st.parts, x.RequestID)
	}
	h := w.Header()
	for k, v := range st.header {
		h[k] = v
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(st.status)
	_, _ = io.WriteString(w, body)
}

// watcher is the writer the forwarder gets: it passes a response through,
// or holds a failure the route falls back on (when hold), or lets it
// through and remembers it (failure) when it may not hold it.
type watcher struct {
	w       http.ResponseWriter
	x       *exchange.Exchange
	s       *stage
	hold    bool
	header  http.Header // until the status line is decided
	decided bool
	failure string           // the reason of a failure seen
	held    *policy.Buffered // the held failure
}

var watchers = sync.Pool{New: func() any { return &watcher{header: http.Header{}} }}

func getWatcher(w http.ResponseWriter, x *exchange.Exchange, s *stage, hold bool) *watcher {
	ww := watchers.Get().(*watcher)
	ww.w, ww.x, ww.s, ww.hold = w, x, s, hold
	return ww
}

func (ww *watcher) release() {
	clear(ww.header)
	*ww = watcher{header: ww.header}
	watchers.Put(ww)
}

func (ww *watcher) Header() http.Header {
	switch {
	case ww.held != nil:
		return ww.held.Header()
	case ww.decided:
		return ww.w.Header()
	}
	return ww.header
}

func (ww *watcher) WriteHeader(code int) {
	if ww.decided {
		if ww.held != nil {
			ww.held.WriteHeader(code)
		} else {
			ww.w.WriteHeader(code)
		}
		return
	}
	if code < 200 { // 1xx: informational, not the answer
		ww.w.WriteHeader(code)
		return
	}
	ww.decided = true
	ww.failure = ww.s.reason(code, ww.x)
	var h http.Header
	if ww.failure != "" && ww.hold {
		ww.held = policy.Buffer(ww.w, maxHeld)
		h = ww.held.Header()
	} else {
		h = ww.w.Header()
	}
	for k, v := range ww.header {
		h[k] = v
	}
	if ww.held != nil {
		ww.held.WriteHeader(code)
		return
	}
	ww.w.WriteHeader(code)
}

func (ww *watcher) Write(p []byte) (int, error) {
	if !ww.decided {
		ww.WriteHeader(http.StatusOK)
	}
	if ww.held != nil {
		return ww.held.Write(p)
	}
	return ww.w.Write(p)
}

// Flush passes on, except while a failure is held (it would spill it).
func (ww *watcher) Flush() {
	if !ww.decided {
		ww.WriteHeader(http.StatusOK)
	}
	if ww.held != nil {
		return
	}
	if f, ok := ww.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (ww *watcher) Unwrap() http.ResponseWriter { return ww.w }
