package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/h1server"
	"github.com/meshgate/meshgate/internal/rewrite"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/upstream"
)

// Hooks receive events for metrics. Each must be cheap and never block.
type Hooks struct {
	Retry           func(route string)
	BudgetExhausted func(route string)
}

// Forwarder sends a route's requests to its cluster: admission, endpoint
// choice, per-try and total timeouts, retries within the upstream's budget,
// and streaming of the response back.
type Forwarder struct {
	name    string         // the route's, or the policy call's
	rw      *rewrite.Rules // the route's; nil for a policy's calls: no rewrites
	cluster *Cluster
	timeout time.Duration
	perTry  time.Duration
	// idempotentTry is the per-try timeout of an idempotent request when
	// perTry is not set and the route retries per-try-timeout: a third
	// of the route's timeout, so that a request sent to a hung endpoint
	// (its host stopped, its connection open) is retried on another in
	// time, instead of waiting out the whole timeout and failing.
	idempotentTry time.Duration
	maxBody       int64
	retry         retryPolicy
	hooks         Hooks
	tunnels       *Tunnels
	log           *slog.Logger
	tracing       bool
	caller        bool // a policy's calls (NewCaller): their spans carry meshgate.call
}

// ForwarderOptions are what a Forwarder needs besides its route.
type ForwarderOptions struct {
	Cluster *Cluster
	Hooks   Hooks
	Tunnels *Tunnels
	Logger  *slog.Logger
	// Tracing: the node traces, so each attempt gets a client span under
	// the request's server span (telemetry.SpanFromContext). Off, the
	// forwarder does not look for one.
	Tracing bool
}

// NewForwarder compiles a route's forwarding policy.
func NewForwarder(r *route.Route, o ForwarderOptions) *Forwarder {
	c := r.Config
	f := newForwarder(r.Name, c.Timeout.D(), c.PerTryTimeout.D(), c.Retry, o)
	f.rw = r.Rewrite()
	f.maxBody = c.MaxBodyBytes.Bytes()
	return f
}

// NewCaller returns a forwarder for a policy's own calls to the cluster
// (aggregation, say), used through RoundTrip: the same admission, endpoint
// choice, breakers, retries and client spans as forwarded requests, without
// a route's rewrites. timeout bounds a call until its response headers.
func NewCaller(name string, timeout time.Duration, retry *config.Retry, o ForwarderOptions) *Forwarder {
	f := newForwarder(name, timeout, 0, retry, o)
	f.caller = true
	return f
}

func newForwarder(name string, timeout, perTry time.Duration, retry *config.Retry, o ForwarderOptions) *Forwarder {
	f := &Forwarder{
		name:    name,
		cluster: o.Cluster,
		timeout: timeout,
		perTry:  perTry,
		retry:   compileRetry(retry),
		hooks:   o.Hooks,
		tunnels: o.Tunnels,
		log:     o.Logger,
		tracing: o.Tracing,
	}
	if f.hooks.Retry == nil {
		f.hooks.Retry = func(string) {}
	}
	if perTry == 0 && f.retry.perTryTimeout && f.retry.attempts > 1 {
		f.idempotentTry = timeout / DefaultPerTryDivisor
	}
	if f.hooks.BudgetExhausted == nil {
		f.hooks.BudgetExhausted = func(string) {}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	return f
}

type retryPolicy struct {
	attempts       int
	connectFailure bool
	reset          bool
	timeout        bool // per-try timeout counts as 504
	perTryTimeout  bool // on: per-try-timeout (also sets the default per-try timeout)
	statuses       [600]bool
	grpcCodes      map[string]bool
	nonIdempotent  bool
	base, max      time.Duration
	// afterResponse: some condition looks at a response, so a small body
	// is kept for replay.
	afterResponse bool
}

var grpcCodeNames = map[string]string{
	"grpc-cancelled": "1", "grpc-deadline-exceeded": "4", "grpc-resource-exhausted": "8",
	"grpc-internal": "13", "grpc-unavailable": "14",
}

func compileRetry(c *config.Retry) retryPolicy {
	p := retryPolicy{attempts: 1}
	if c == nil {
		return p
	}
	p.attempts = c.Attempts
	p.nonIdempotent = c.NonIdempotent
	p.base, p.max = c.BackoffBase.D(), c.BackoffMax.D()
	p.grpcCodes = map[string]bool{}
	for _, on := range c.On {
		switch on {
		case "connect-failure":
			p.connectFailure = true
		case "reset":
			p.reset = true
		case "5xx":
			for s := 500; s < 600; s++ {
				p.statuses[s] = true
			}
			p.timeout = true
		case "502", "503":
			p.statuses[500+int(on[2]-'0')] = true
		case "504":
			p.statuses[504] = true
			p.timeout = true
		case "per-try-timeout":
			p.perTryTimeout = true
		default:
			if code, ok := grpcCodeNames[on]; ok {
				p.grpcCodes[code] = true
			}
		}
	}
	if p.attempts > 1 && len(p.grpcCodes) > 0 {
		p.afterResponse = true
	}
	for _, st := range p.statuses {
		if st && p.attempts > 1 {
			p.afterResponse = true
		}
	}
	return p
}

// backoff is exponential with full jitter, capped.
func (p *retryPolicy) backoff(retry int) time.Duration {
	d := p.base << (retry - 1)
	if d > p.max || d <= 0 {
		d = p.max
	}
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func classify(err error, perTryExpired bool) upstream.Outcome {
	if perTryExpired {
		return upstream.Timeout
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return upstream.ConnectError
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return upstream.ConnectError
	}
	return upstream.Reset
}

// ServeHTTP forwards one request. The exchange must be in the context.
//
// The route timeout bounds the exchange until the response headers (retries
// and backoff included); the body then streams for as long as both sides
// keep it moving, so long downloads and gRPC streams live. Each attempt gets
// a deadline: the route's, or per_try_timeout from its start if sooner.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange.From(r.Context())
	if x != nil {
		x.Upstream = f.cluster.Upstream.Name()
	}
	hasBody := r.Body != nil && r.Body != http.NoBody
	bb, buffered := r.Body.(*BufferedBody) // read whole by an earlier forwarder (fallback)
	if f.maxBody > 0 {
		if r.ContentLength > f.maxBody || buffered && int64(bb.Len()) > f.maxBody {
			exchange.Write(w, x, exchange.BodyTooLarge)
			return
		}
		if hasBody && !buffered {
			r.Body = http.MaxBytesReader(w, r.Body, f.maxBody)
		}
	}
	var parent *telemetry.Span // the server span, when tracing
	if f.tracing {
		parent = telemetry.SpanFromContext(r.Context())
	}
	if isUpgrade(r) {
		f.serveUpgrade(w, r, x, parent)
		return
	}
	// A body is read up to RequestBufferBytes before the upstream is
	// contacted, so that a malformed one never reaches it; gRPC streams.
	if hasBody && !buffered && !(x != nil && x.GRPC) && !isGRPC(r) {
		pre, fail := bufferBody(r, x)
		if fail != nil {
			f.answer(w, x, fail)
			return
		}
		if pre != nil {
			defer pre.release() // after finish: the attempts are over
		}
	}
	resp, finish, fail := f.forward(w, r, x, parent, false)
	if fail != nil {
		f.answer(w, x, fail)
		return
	}
	defer finish()
	f.copyResponse(w, r, resp, x)
}

// RoundTrip makes a policy's call: req goes to the cluster as a forwarded
// request would (its URL's path and query as the target, its Host as the
// Host header), under the span and on behalf of the client of the exchange
// in req's context, if any. A failure the proxy would have answered by
// itself is a *CallError naming the error kind. The response's body must be
// closed; that releases the admission slot.
func (f *Forwarder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := &exchange.Exchange{Start: time.Now(), Path: req.URL.EscapedPath(), Upstream: f.cluster.Upstream.Name()}
	if parent := exchange.From(req.Context()); parent != nil {
		// On behalf of the client: the upstream sees the client's address,
		// never forwarding headers the policy's request may carry.
		x.ClientIP, x.RequestID, x.Scheme = parent.ClientIP, parent.RequestID, parent.Scheme
		if req.RemoteAddr == "" {
			req.RemoteAddr = parent.ClientIP
		}
	}
	if x.Path == "" {
		x.Path = "/"
	}
	if req.Host == "" {
		req.Host = req.URL.Host
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	var span *telemetry.Span
	if f.tracing {
		span = telemetry.SpanFromContext(req.Context())
	}
	// Detached: a policy may make several calls at once under the one
	// server span, so each attempt's span ends by itself.
	resp, finish, fail := f.forward(nil, req, x, span, true)
	if fail != nil {
		return nil, &CallError{Kind: fail, Endpoint: x.Endpoint}
	}
	removeHopHeaders(resp.Header)
	resp.Body = &finishingBody{ReadCloser: resp.Body, finish: finish}
	return resp, nil
}

// CallError is a policy call that got no response from the upstream.
type CallError struct {
	Kind     *exchange.Kind // what the proxy would have answered
	Endpoint string         // the last endpoint tried, if any
}

func (e *CallError) Error() string { return e.Kind.Text }

// finishingBody runs finish once, when the body is closed.
type finishingBody struct {
	io.ReadCloser
	finish func()
	once   sync.Once
}

func (b *finishingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.finish)
	return err
}

// answer writes a failure of forward to the client.
func (f *Forwarder) answer(w http.ResponseWriter, x *exchange.Exchange, fail *exchange.Kind) {
	switch fail {
	case clientClosed:
		x.Status, x.Reason = 499, "client closed request" // nothing to answer
		return
	case exchange.BadBody:
		// The rest of the body cannot be trusted to frame the next
		// request: close the connection.
		w.Header()["Connection"] = []string{"close"}
	}
	exchange.Write(w, x, fail)
}

// clientClosed is forward's failure when the client went away: there is
// nobody to answer (status 499 in the log).
var clientClosed = &exchange.Kind{Status: 499, Name: "client_closed", Text: "client closed request"}

// forward takes an admission slot and makes the attempts, retrying within
// the budget, until a response to pass on or a failure. finish, called
// once the response's body is done with, releases the slot and the
// attempt's resources. detached: the attempts' client spans end when their
// response headers (or failure) arrive, not with the parent span (a
// policy's calls, several of which may run at once under it). w is the
// client's writer (nil for a policy's call): a client that leaves while the
// request waits for a slot or an upstream ends it (see watchClient).
func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, parent *telemetry.Span, detached bool) (resp *http.Response, finish func(), fail *exchange.Kind) {
	c := call{f: f, w: w, r: r, x: x, parent: parent, detached: detached, up: f.cluster.Upstream, start: time.Now()}
	if f.timeout > 0 {
		c.deadline = c.start.Add(f.timeout)
	}
	if c.release, fail = c.admitRequest(); fail != nil {
		return nil, nil, fail
	}
	// Outside c: a pointer into c from c itself would move c to the heap.
	var triedBuf [4]*upstream.Endpoint
	c.tried = triedBuf[:0]
	c.prepare()
	for n := 1; ; n++ {
		resp, finish, fail, again := c.attempt(n)
		if !again {
			return resp, finish, fail
		}
	}
}

// call is the state of one forwarded request across its attempts. It lives
// on forward's stack: nothing may keep a pointer to it.
type call struct {
	f      *Forwarder
	w      http.ResponseWriter // the client's; nil for a policy's call
	r      *http.Request
	x      *exchange.Exchange
	parent *telemetry.Span // the server span, when tracing
	up     *upstream.Upstream
	start  time.Time

	deadline     time.Time // the route's; zero: none
	grpcDeadline time.Time // the client's grpc-timeout; zero: none
	release      func()    // of the admission slot
	out          http.Header
	body         *replayGuard
	hashKey      uint64
	tried        []*upstream.Endpoint
	path         string // rewritten
	fast         bool   // the fast HTTP/1.1 pool takes the request

	// watched is r's context canceled when the client leaves, once
	// watchClient has started watching; nil before.
	watched context.Context

	retrying bool // the budget's RetryAllowed was granted for this attempt
	// retryConnect: the retry granted retries a connect failure, under
	// ConnectRetryAllowed's bound rather than the budget.
	retryConnect bool
	live         *telemetry.Span // the client span of the attempt under way
	detached     bool            // live ends by itself, not with parent (see forward)
}

// prepare computes what every attempt shares: headers, body, hash key,
// rewritten path, pool and gRPC deadline.
func (c *call) prepare() {
	f, r, x := c.f, c.r, c.x
	c.out = f.outboundHeader(r, x)
	c.body = newReplayGuard(r.Body, f.retry.afterResponse)
	if bb, ok := r.Body.(*BufferedBody); ok {
		// Held whole: every attempt sends it from its start.
		c.body.kept, c.body.complete = bb.data, true
		c.body.n.Store(int64(len(bb.data)))
	}
	c.hashKey, _ = c.up.HashKey(r, x.ClientIP)
	c.path = f.rw.Path(x.Path, &x.Match.Params)
	// A policy's calls (detached) must end with their context (a
	// composite's deadline, its client gone, a sibling call failed); the
	// fast pool honours deadlines only.
	c.fast = !c.detached && f.cluster.fastFor(r)
	if x.GRPC {
		if d, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout")); ok {
			c.grpcDeadline = c.start.Add(d)
		}
	}
}

// attempt makes attempt n: it picks an endpoint, sends the request and
// accounts for the outcome. again: a retry is due, its backoff slept; else
// the request is over with a response (and its finish) or a failure.
func (c *call) attempt(n int) (resp *http.Response, finish func(), fail *exchange.Kind, again bool) {
	ep, ticket, err := admit(c.up, c.hashKey, &c.tried)
	if err != nil {
		if c.retrying {
			c.retryOver()
		}
		c.end()
		return nil, nil, pickKind(err), false
	}
	c.x.Attempts = n
	c.x.Endpoint = ep.Addr
	outreq := c.outboundRequest(ep)
	start := time.Now()
	if c.parent != nil {
		c.startSpan(outreq, ep, n, start)
	}
	ep.Begin()
	resp, err, expired, done := c.send(outreq, c.attemptDeadline(n, start))
	outcome := c.record(ep, ticket, start, resp, err, expired)
	if err != nil {
		if k := c.f.clientFault(c.r, err, c.body, c.watched); k != nil {
			done()
			c.end()
			return nil, nil, k, false
		}
	}
	routeExpired := !c.deadline.IsZero() && !time.Now().Before(c.deadline)
	if wait, ok := c.retryDue(n, resp, err, outcome, routeExpired); ok {
		if !c.backOff(resp, done, wait) {
			return nil, nil, clientClosed, false
		}
		return nil, nil, nil, true
	}
	if err != nil {
		done()
		c.end()
		if routeExpired {
			outcome = upstream.Timeout
		}
		c.f.log.Debug("upstream attempt failed", "route", c.f.name, "endpoint", c.x.Endpoint, "err", err)
		return nil, nil, failureKind(outcome), false
	}
	return resp, c.finisher(done), nil, false
}

// outboundRequest is the request of one attempt to ep.
func (c *call) outboundRequest(ep *upstream.Endpoint) *http.Request {
	r := c.r
	outreq := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Scheme: "http", Host: ep.Addr, Opaque: c.path, RawQuery: r.URL.RawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        c.out,
		Body:          c.body.reader(),
		ContentLength: r.ContentLength,
		Host:          r.Host,
	}
	if len(r.Trailer) > 0 {
		outreq.Trailer = r.Trailer
	}
	return outreq
}

// startSpan starts the client span of attempt n under the server span.
func (c *call) startSpan(outreq *http.Request, ep *upstream.Endpoint, n int, start time.Time) {
	if n > 1 {
		// The attempt writes its own traceparent into the headers, and
		// a transport may still read the last attempt's after giving
		// it up (an HTTP/2 stream cancelled mid-encoding): a copy.
		c.out = c.out.Clone()
		outreq.Header = c.out
	}
	c.live = c.f.startAttempt(c.parent, c.r, c.x, c.out, ep, c.path, n, start)
	if !c.detached {
		// The attempt that answers the client ends with the request
		// (after its response streamed, or the handler aborted).
		c.parent.EndWithParent(c.live, start)
	}
}

// DefaultPerTryDivisor: an idempotent request's default per-try timeout is
// the route's timeout divided by it (Forwarder.idempotentTry).
const DefaultPerTryDivisor = 3

// attemptDeadline is the route's deadline, or per_try_timeout from the
// attempt's start if sooner (for attempt n of an idempotent request without
// one, the default per-try timeout when a retry on another endpoint can
// follow).
func (c *call) attemptDeadline(n int, start time.Time) time.Time {
	d := c.deadline
	perTry := c.f.perTry
	if perTry == 0 && c.f.idempotentTry > 0 && n < c.f.retry.attempts && idempotent(c.r.Method) &&
		len(c.up.Endpoints()) > len(c.tried) && c.up.RetryLikely() {
		// Only when this attempt can be retried, on another endpoint: a
		// cut with no retry after it would turn a slow answer into a 504
		// (the last attempt, the retry budget spent), and a retry on the
		// same endpoint would just split the wait (a one-endpoint
		// upstream would see two timeouts per request, and its breaker
		// open twice as fast).
		perTry = c.f.idempotentTry
	}
	if perTry > 0 {
		if t := start.Add(perTry); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// send makes one attempt's round trip: on the fast pool, or through an
// http.Transport. done releases the attempt's resources once its response
// body is finished.
func (c *call) send(outreq *http.Request, deadline time.Time) (resp *http.Response, err error, expired bool, done func()) {
	if c.fast {
		// The fast pool watches the client itself, only if the head is
		// slow to come.
		resp, err = c.f.cluster.fast.roundTripWatching(outreq, deadline, c.w)
		return resp, err, errors.Is(err, os.ErrDeadlineExceeded), func() {}
	}
	return c.f.roundTripStd(c.watchClient(), outreq, deadline, c.grpcDeadline)
}

// watchClient returns r's context, canceled as soon as the client leaves:
// h1server.WatchClient for an HTTP/1.x client (one goroutine and one read
// of its connection for the rest of the request; HTTP/2's server cancels
// r.Context() by itself). Without it the standard transport's request and
// body, and a wait for an admission slot, outlived their client until the
// route's timeout, holding the slot.
func (c *call) watchClient() context.Context {
	if c.watched == nil {
		c.watched = c.r.Context()
		if c.w != nil {
			c.watched, _ = h1server.WatchClient(c.w, c.watched)
		}
	}
	return c.watched
}

// record accounts for an attempt's outcome: the endpoint's latency and
// outcome, the client span, the breaker's verdict and the retry budget.
func (c *call) record(ep *upstream.Endpoint, ticket breaker.Ticket, start time.Time, resp *http.Response, err error, expired bool) upstream.Outcome {
	var outcome upstream.Outcome
	if err != nil {
		outcome = classify(err, expired)
	} else {
		outcome = upstream.StatusOutcome(resp.StatusCode)
	}
	end := time.Now()
	ep.Done(end.Sub(start), outcome)
	if c.live != nil {
		attemptResult(c.live, resp, err, outcome, end)
		if c.detached {
			c.live.End(end)
			c.live = nil
		}
	}
	if err != nil && (c.r.Context().Err() != nil || clientGone(err, c.watched)) {
		ticket.Skip() // the client left: no verdict on the endpoint
	} else {
		upstream.Finish(ticket, outcome)
	}
	if c.retrying {
		// A retry counts against the budget until its attempt is over.
		c.retryOver()
		c.retrying = false
	}
	return outcome
}

// retryDue decides whether attempt n is retried, and after which backoff:
// the route's policy must allow it, the retry must be able to start before
// the route deadline, and the upstream's retry budget must have room.
func (c *call) retryDue(n int, resp *http.Response, err error, outcome upstream.Outcome, routeExpired bool) (wait time.Duration, ok bool) {
	f := c.f
	wait = f.retry.backoff(n)
	// A retry that cannot start before the route deadline is not made:
	// the client gets this attempt's own answer instead.
	fits := c.deadline.IsZero() || time.Until(c.deadline) > wait
	if routeExpired || !fits || !f.shouldRetry(n, c.r, resp, err, outcome, c.body) {
		return 0, false
	}
	// A connect failure reached no upstream: its retry has its own bound
	// instead of the budget (upstream.ConnectRetryAllowed).
	c.retryConnect = outcome == upstream.ConnectError
	allowed := false
	if c.retryConnect {
		allowed = c.up.ConnectRetryAllowed()
	} else {
		allowed = c.up.RetryAllowed()
	}
	if !allowed {
		f.hooks.BudgetExhausted(f.name)
		return 0, false
	}
	return wait, true
}

// retryOver ends the retry granted for this attempt.
func (c *call) retryOver() {
	if c.retryConnect {
		c.up.ConnectRetryDone()
	} else {
		c.up.RetryDone()
	}
}

// backOff gives up the attempt (its response, if any, and resources) and
// waits before the retry; false: the client left meanwhile, and the call
// is over.
func (c *call) backOff(resp *http.Response, done func(), wait time.Duration) bool {
	if resp != nil {
		drainAndClose(resp.Body)
	}
	done()
	c.f.hooks.Retry(c.f.name)
	if c.live != nil {
		c.parent.EndWithParent(nil, time.Now()) // ends this attempt
		c.live = nil
	}
	if !sleepCtx(c.r.Context(), wait) {
		c.retryOver()
		c.end()
		return false
	}
	c.retrying = true
	return true
}

// end accounts for the request's body and releases the admission slot.
func (c *call) end() {
	c.x.BytesIn = c.body.n.Load()
	c.release()
}

// finisher is the finish of a response passed on: done, then end. It
// captures what it needs, not c, which stays on the stack.
func (c *call) finisher(done func()) func() {
	x, body, release := c.x, c.body, c.release
	return func() {
		done()
		x.BytesIn = body.n.Load()
		release()
	}
}

// admitRequest takes one of the upstream's admission slots, waiting in its
// pending queue within the deadline when all are taken (and while the
// client stays).
func (c *call) admitRequest() (release func(), fail *exchange.Kind) {
	release, ok := c.up.TryAcquire()
	if ok {
		return release, nil
	}
	// The common case above builds no context.
	ctx, cancel := c.watchClient(), context.CancelFunc(func() {})
	if !c.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, c.deadline)
	}
	defer cancel()
	release, err := c.up.Acquire(ctx)
	switch {
	case errors.Is(err, upstream.ErrOverloaded):
		return nil, exchange.Overloaded
	case err != nil && c.watched.Err() != nil:
		return nil, clientClosed
	case err != nil:
		return nil, exchange.PendingTimeout
	}
	return release, nil
}

// sleepCtx waits d unless ctx ends first (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pickKind names the error of an upstream with no endpoint to take a request.
func pickKind(err error) *exchange.Kind {
	if errors.Is(err, upstream.ErrCircuitOpen) {
		return exchange.CircuitOpen
	}
	return exchange.NoHealthyEndpoint
}

// failureKind is the answer to a last attempt that got no response.
func failureKind(outcome upstream.Outcome) *exchange.Kind {
	switch outcome {
	case upstream.Timeout:
		return exchange.UpstreamTimeout
	case upstream.ConnectError:
		return exchange.ConnectFailed
	default:
		return exchange.ConnectionReset
	}
}

// admit picks an endpoint for the next attempt and takes its breaker's
// ticket. An endpoint whose breaker refuses (half-open with its probes
// taken, or opening right now) is treated like one already tried, and the
// next is picked; the bound keeps a flapping set from looping.
func admit(up *upstream.Upstream, hashKey uint64, tried *[]*upstream.Endpoint) (*upstream.Endpoint, breaker.Ticket, error) {
	for i := 0; ; i++ {
		ep, err := up.Pick(hashKey, *tried)
		if err != nil {
			return nil, breaker.Ticket{}, err
		}
		*tried = append(*tried, ep)
		ticket, err := ep.Admit()
		if err == nil {
			return ep, ticket, nil
		}
		if i >= len(up.Endpoints()) {
			return nil, breaker.Ticket{}, upstream.ErrCircuitOpen
		}
	}
}

// roundTripStd sends one attempt through an http.Transport (HTTP/2, and
// HTTP/1.1 requests with a body). The attempt's context is canceled at its
// deadline unless the response headers came first; done releases it once
// the response body is finished.
func (f *Forwarder) roundTripStd(parent context.Context, outreq *http.Request, attemptDeadline, grpcDeadline time.Time) (resp *http.Response, err error, expired bool, done func()) {
	ctx, cancel := context.WithCancel(parent)
	var timer *time.Timer
	if !attemptDeadline.IsZero() {
		timer = time.AfterFunc(time.Until(attemptDeadline), cancel)
	}
	resp, err = f.cluster.transportFor(outreq).RoundTrip(outreq.WithContext(ctx))
	// Stop fails only when the timer fired; whatever came back raced with
	// its cancel and is treated as a timeout.
	expired = timer != nil && !timer.Stop()
	if expired && err == nil {
		resp.Body.Close()
		resp, err = nil, context.DeadlineExceeded
	}
	// The upstream resets a gRPC stream whose grpc-timeout passed.
	if err != nil && !grpcDeadline.IsZero() && time.Until(grpcDeadline) < 10*time.Millisecond {
		expired = true
	}
	return resp, err, expired, func() { cancel() }
}

// clientFault tells errors caused by the client rather than the upstream: a
// body over the limit, a malformed body, a client gone away (nil: the
// upstream's fault).
func (f *Forwarder) clientFault(r *http.Request, err error, body *replayGuard, watched context.Context) *exchange.Kind {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return exchange.BodyTooLarge
	}
	if r.Context().Err() != nil || clientGone(err, watched) {
		return clientClosed
	}
	if rerr := body.readErr.Load(); rerr != nil {
		return bodyFault(r, *rerr)
	}
	return nil
}

// clientGone reports whether err ended an attempt because the client left:
// the fast pool says so (h1server.ErrClientGone), the standard transport by
// its context, watched (nil: not watched).
func clientGone(err error, watched context.Context) bool {
	return errors.Is(err, h1server.ErrClientGone) || watched != nil && watched.Err() != nil
}

func (f *Forwarder) shouldRetry(attempt int, r *http.Request, resp *http.Response, err error, outcome upstream.Outcome, body *replayGuard) bool {
	p := &f.retry
	if attempt >= p.attempts || body.consumed() {
		return false
	}
	if err != nil {
		switch outcome {
		case upstream.ConnectError:
			// Nothing reached the upstream: safe for any method.
			return p.connectFailure
		case upstream.Timeout:
			return (p.timeout || p.perTryTimeout) && (idempotent(r.Method) || p.nonIdempotent)
		default:
			return p.reset && (idempotent(r.Method) || p.nonIdempotent)
		}
	}
	if !idempotent(r.Method) && !p.nonIdempotent {
		return false
	}
	if resp.StatusCode < len(p.statuses) && p.statuses[resp.StatusCode] {
		return true
	}
	if len(p.grpcCodes) > 0 {
		if code := resp.Header.Get("Grpc-Status"); code != "" && p.grpcCodes[code] {
			return true
		}
	}
	return false
}

// outboundHeader builds the headers sent upstream: the client's minus
// hop-by-hop, plus forwarding and request id headers, plus the route's ops.
func (f *Forwarder) outboundHeader(r *http.Request, x *exchange.Exchange) http.Header {
	out := make(http.Header, len(r.Header)+6)
	for k, v := range r.Header {
		out[k] = v
	}
	removeHopHeaders(out)
	vals := make([]string, 6) // backing store of every value set below
	setForwarded(out, r, x.PeerTrusted, x.Scheme, vals[:4])
	vals[4] = x.RequestID
	out["X-Request-Id"] = vals[4:5:5]
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = vals[5:6:6] // "": do not let a transport add Go's
	}
	f.rw.Request(out)
	return out
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (f *Forwarder) copyResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, x *exchange.Exchange) {
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	f.rw.Response(h)
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	// Stream without delay when the length is unknown (SSE, gRPC, chunked
	// progress); otherwise let the server's buffer coalesce writes.
	flush := resp.ContentLength < 0 || isGRPCResponse(resp)
	if hb, ok := resp.Body.(*h1Body); ok && flush {
		// A stream may idle for long (SSE): a client that leaves must end
		// it now, not at the next event's failed write. (The standard
		// transport's body ends with the watched context it was sent
		// under.)
		ctx, _ := h1server.WatchClient(w, r.Context()) // HTTP/2: r.Context() ends with the stream
		defer context.AfterFunc(ctx, hb.interrupt)()
	}
	rc := http.NewResponseController(w)
	bp := copyBufs.Get().(*[]byte)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				f.log.Debug("upstream body ended early", "route", f.name, "endpoint", x.Endpoint, "err", rerr)
				// Abort the client stream so it sees a truncated response,
				// not a complete one.
				copyBufs.Put(bp)
				panic(http.ErrAbortHandler)
			}
			break
		}
	}
	copyBufs.Put(bp)
	for k, v := range resp.Trailer {
		h[http.TrailerPrefix+k] = v
	}
}

func isGRPCResponse(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc")
}

func drainAndClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	rc.Close()
}

// replayGuard lets a request be retried only while its body is untouched:
// a body larger than RequestBufferBytes is streamed, so once consumed it
// cannot be replayed (one held whole, a *BufferedBody, always can).
// It also keeps the transport from closing the client's body between
// attempts.
//
// Each attempt reads through its own attemptReader. A transport may read the
// body on its own goroutine even after RoundTrip returned, so "no byte read
// yet" is not enough to retry: the previous attempt's reader is revoked
// first, which succeeds only if that attempt never began a Read — and then
// it never will.
//
// Exception: on routes whose retries can fire after a response (on a status
// or a gRPC code), a body of at most maxReplayBody is kept as it streams, and
// once read to its end it can be sent again. gRPC calls, whose status comes
// only after the request message was read, are retried this way.
type replayGuard struct {
	rc      io.ReadCloser
	keep    bool
	n       atomic.Int64
	current *attemptReader
	// readErr is the first error reading the client's body other than EOF:
	// a malformed chunked body or a client that went away mid-body.
	readErr atomic.Pointer[error]

	mu       sync.Mutex
	kept     []byte // the body so far, while it fits in maxReplayBody
	complete bool   // kept holds the whole body
}

// maxReplayBody is the largest body kept to be sent again on a retry.
const maxReplayBody = 64 << 10

// attemptReader states.
const (
	untouched int32 = iota
	reading
	revoked
)

var errRevoked = errors.New("request body handed to a retry")

func newReplayGuard(rc io.ReadCloser, keep bool) *replayGuard {
	return &replayGuard{rc: rc, keep: keep}
}

// reader returns the body for the next attempt (nil for no body).
func (g *replayGuard) reader() io.ReadCloser {
	if g.rc == nil || g.rc == http.NoBody {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.complete {
		return io.NopCloser(bytes.NewReader(g.kept))
	}
	g.current = &attemptReader{g: g}
	return g.current
}

// consumed reports whether the body is gone for a retry. When it is not, the
// last attempt's reader is revoked: the body now belongs to the next attempt.
func (g *replayGuard) consumed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.complete || g.current == nil {
		return false
	}
	return !g.current.state.CompareAndSwap(untouched, revoked) && g.current.state.Load() != revoked
}

type attemptReader struct {
	g     *replayGuard
	state atomic.Int32
}

func (r *attemptReader) Read(p []byte) (int, error) {
	if !r.state.CompareAndSwap(untouched, reading) && r.state.Load() != reading {
		return 0, errRevoked
	}
	g := r.g
	n, err := g.rc.Read(p)
	if g.keep {
		g.mu.Lock()
		if n > 0 {
			if g.n.Add(int64(n)) <= maxReplayBody {
				g.kept = append(g.kept, p[:n]...)
			} else {
				g.kept = nil
			}
		}
		if err == io.EOF && g.n.Load() <= maxReplayBody {
			g.complete = true
		}
		g.mu.Unlock()
	} else if n > 0 {
		g.n.Add(int64(n))
	}
	if err != nil && err != io.EOF {
		g.readErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (r *attemptReader) Close() error { return nil }

// parseGRPCTimeout reads a grpc-timeout header: up to 8 digits and a unit
// (H, M, S, m, u, n).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}
