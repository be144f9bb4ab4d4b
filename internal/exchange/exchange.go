// Package exchange is the record of one request and the one way the proxy
// answers a request itself.
//
// An Exchange is one client request and everything learned while serving it:
// route, client IP, request id, the consumer an auth policy identified,
// upstream endpoint, status, byte counts. It travels in the request context,
// so every policy stage, the forwarder, the access log, tap, metrics and
// tracing read and enrich the same record; none of them imports another to
// do so.
//
// Every response the proxy generates (401, 404, 429, 503, …) is written by
// Write from one table of error kinds (Kinds), which docs/config.md's error
// table is checked against.
package exchange

import (
	"context"
	"net/http"
	"time"

	"github.com/meshgate/meshgate/internal/route"
)

// Exchange is one request's record. Fields are written by the goroutine
// serving the request only.
type Exchange struct {
	Start    time.Time
	Listener string
	// Match is the route table's answer: the route and template parameters.
	Match     route.Result
	ClientIP  string
	RequestID string
	// Path is the normalized request path the route matched.
	Path string
	// Scheme the client used (http or https) and whether its peer is a
	// trusted proxy whose forwarding headers are believed.
	Scheme      string
	PeerTrusted bool
	// GRPC marks a gRPC request: errors are answered in gRPC's terms.
	GRPC bool
	// Caller is the SPIFFE ID of the client on an mTLS listener.
	Caller string
	// Consumer is who the request was authenticated as (an auth policy
	// sets it; "" when the route has none), Tier the consumer's tier, and
	// AuthMethod the name of the auth definition that accepted it.
	Consumer   string
	Tier       string
	AuthMethod string
	// Claim returns a claim of the consumer's credential as a string (a
	// JWT's or an introspection answer's), for transforms that template
	// {claim.NAME}; nil when the credential has no claims (API keys,
	// anonymous requests, routes without auth).
	Claim func(name string) (string, bool)
	// Upstream is the name of the upstream the request was forwarded to:
	// the route's, or the one its split picked. Empty until a forwarder
	// took the request.
	Upstream string
	// Endpoint is the upstream address of the last attempt.
	Endpoint string
	Attempts int
	Status   int
	BytesIn  int64
	BytesOut int64
	// Reason explains a response the proxy generated itself (404, 503, …),
	// and Error is its kind (nil for the upstream's responses).
	Reason string
	Error  *Kind
	// Fallback is how a route's fallback answered in the upstream's place
	// ("stale", "upstream" or "response"; empty: it did not), and FallbackReason
	// what called for it (an error name of the table, or "status_503").
	Fallback       string
	FallbackReason string
	// StaleAvailable: the cache stage holds a stored response that may
	// answer in the upstream's place (within its stale-if-error window or
	// the route's fallback.stale). A fallback then stands aside for it:
	// it lets the failure through to the cache and records Fallback
	// FallbackStale.
	StaleAvailable bool

	rec recorder // allocated with the exchange
}

// FallbackStale is Fallback when a stale stored response answered.
const FallbackStale = "stale"

type exchangeKey struct{}

// With returns ctx carrying x.
func With(ctx context.Context, x *Exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

// From returns the exchange of the request, or nil.
func From(ctx context.Context) *Exchange {
	x, _ := ctx.Value(exchangeKey{}).(*Exchange)
	return x
}

// Reset clears x for reuse from a pool.
func (x *Exchange) Reset() { *x = Exchange{} }

// recorder counts what is written to the client and remembers the status.
// It keeps http.Flusher, Hijacker and full duplex reachable through
// http.NewResponseController (Unwrap).
type recorder struct {
	http.ResponseWriter
	x *Exchange
}

func (w *recorder) WriteHeader(code int) {
	if w.x.Status == 0 && code >= 200 {
		w.x.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.x.Status == 0 {
		w.x.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.x.BytesOut += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Recorder wraps w so that the exchange learns the status and bytes written.
// Call it once per exchange.
func Recorder(w http.ResponseWriter, x *Exchange) http.ResponseWriter {
	x.rec = recorder{ResponseWriter: w, x: x}
	return &x.rec
}
