package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/upstream"
)

// Client spans: one per attempt to an upstream, the child of the request's
// server span, so that retries show as siblings. The attempt's request
// carries the client span's context (traceparent, tracestate) in place of
// whatever the client sent, so the upstream's spans hang under it. Its
// name is "METHOD upstream"; attributes, after OpenTelemetry's HTTP client
// conventions:
//
//	http.request.method, url.scheme, url.path (as sent, after rewrite)
//	server.address, server.port   the endpoint (an IP address)
//	http.request.resend_count   attempts before this one (retries only)
//	http.response.status_code   the upstream's status
//	error.type                  the status for 4xx/5xx, or connect_error,
//	                            timeout, reset when no response came
//	meshgate.upstream
//
// Status Error for 4xx and 5xx answers and for failed attempts, which
// also get an "exception" event with the error.

// startAttempt begins the client span of an attempt and puts its context
// on the outbound headers.
func (f *Forwarder) startAttempt(parent *telemetry.Span, r *http.Request, x *exchange.Exchange, out http.Header, ep *upstream.Endpoint, path string, attempt int, start time.Time) *telemetry.Span {
	s := parent.StartClient(start)
	s.Inject(out, parent.FromB3())
	if !s.Recording() {
		return s
	}
	method := r.Method
	s.SetName(method, f.cluster.Upstream.Name())
	s.Set(telemetry.AttrHTTPMethod, method)
	s.Set(telemetry.AttrURLScheme, f.cluster.scheme())
	s.Set(telemetry.AttrURLPath, path)
	if x.GRPC {
		s.Set(telemetry.AttrRPCSystem, "grpc")
		if svc, m, ok := telemetry.GRPCMethod(path); ok { // as sent, after rewrite
			s.Set(telemetry.AttrRPCService, svc)
			s.Set(telemetry.AttrRPCMethod, m)
		}
	}
	host, port := telemetry.SplitHostPort(ep.Addr)
	s.Set(telemetry.AttrServerAddress, host)
	s.SetInt64(telemetry.AttrServerPort, int64(port)) // an IP: network.peer.address would repeat it
	if attempt > 1 {
		s.SetInt64(telemetry.AttrHTTPResendCount, int64(attempt-1))
	}
	s.Set(telemetry.AttrUpstream, f.cluster.Upstream.Name())
	if f.caller {
		s.Set(telemetry.AttrCall, f.name)
	}
	return s
}

// attemptResult records what an attempt got: a response, or an error.
func attemptResult(s *telemetry.Span, resp *http.Response, err error, outcome upstream.Outcome, at time.Time) {
	if !s.Recording() {
		return
	}
	if err != nil {
		kind := outcomeName(outcome)
		s.Set(telemetry.AttrErrorType, kind)
		s.SetError(kind)
		s.AddEvent("exception", at, "exception.type", kind, "exception.message", err.Error())
		return
	}
	s.SetInt64(telemetry.AttrHTTPStatusCode, int64(resp.StatusCode))
	if resp.StatusCode >= 400 {
		s.Set(telemetry.AttrErrorType, strconv.Itoa(resp.StatusCode))
		s.SetError("")
	}
}

func outcomeName(o upstream.Outcome) string {
	switch o {
	case upstream.ConnectError:
		return "connect_error"
	case upstream.Timeout:
		return "timeout"
	default:
		return "reset"
	}
}

// scheme is the URL scheme of the cluster's endpoints.
func (c *Cluster) scheme() string {
	if c.tls != nil {
		return "https"
	}
	return "http"
}
