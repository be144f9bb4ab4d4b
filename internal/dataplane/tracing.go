package dataplane

import (
	"net/http"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// The server span of a request at a listener, with OpenTelemetry's HTTP
// semantic conventions. Its name is "METHOD route" once a route matched
// (the route's name, as in the metrics and the access log), "METHOD"
// before. Attributes:
//
//	http.request.method        GET, … (_OTHER for an unknown method, with
//	                           http.request.method_original)
//	url.scheme, url.path       the listener's scheme; the normalized path
//	server.address/.port       from the Host header
//	network.peer.address       the TCP peer
//	client.address             the client found through
//	                           server.trusted_proxies, when not the peer
//	network.protocol.version   2 for HTTP/2 (absent: HTTP/1.x)
//	user_agent.original        the User-Agent header
//	http.route                 the route's path pattern, as written
//	http.response.status_code  the status sent
//	error.type                 the status, for 5xx
//	rpc.system, rpc.service,   for gRPC requests, and the grpc-status of
//	rpc.method,                the answer when it is known
//	rpc.grpc.status_code
//	meshgate.route
//	meshgate.upstream          when no attempt was made (their client
//	                           spans name it otherwise)
//	meshgate.caller            the mTLS caller's SPIFFE ID (sidecar inbound)
//	meshgate.authz.decision    allow or deny (mTLS listeners)
//	meshgate.consumer          (telemetry.AttrConsumer) for the
//	                           authentication middleware to set, once
//	                           there is one
//
// Values from the client (the user agent, the path, the gRPC names, error
// texts) are cut and made valid UTF-8 by the span (telemetry.Span.Set).
//
// The sampling decision of the caller is followed on an mTLS listener (a
// meshgate peer); on the others as sampling.follow_clients says (see
// telemetry.Tracer.StartServer).
//
// The span status is Error for 5xx. Responses the proxy generated itself
// add an event naming why: meshgate.rate_limited (429),
// meshgate.auth_failed (401, 403), meshgate.circuit_open, or
// meshgate.error, each with meshgate.reason (the error text).

// startSpan begins the server span of a request.
func (e *Entry) startSpan(r *http.Request, x *exchange.Exchange) *telemetry.Span {
	s := e.tracer.StartServer(r.Header, x.Start, e.caller != nil)
	if !s.Recording() {
		return s
	}
	method := semconvMethod(r.Method)
	s.SetName(method, "")
	s.Set(telemetry.AttrHTTPMethod, method)
	if method == "_OTHER" {
		s.Set(telemetry.AttrHTTPMethodOriginal, r.Method)
	}
	s.Set(telemetry.AttrURLScheme, e.scheme)
	host, port := telemetry.SplitHostPort(r.Host)
	if host != "" {
		s.Set(telemetry.AttrServerAddress, host)
	}
	if port == 0 {
		port = 80
		if e.scheme == "https" {
			port = 443
		}
	}
	s.SetInt64(telemetry.AttrServerPort, int64(port))
	peer, _ := telemetry.SplitHostPort(r.RemoteAddr)
	if peer != "" {
		s.Set(telemetry.AttrNetworkPeerAddress, peer)
	}
	if x.ClientIP != "" && x.ClientIP != peer {
		s.Set(telemetry.AttrClientAddress, x.ClientIP)
	}
	if r.ProtoMajor == 2 {
		s.Set(telemetry.AttrNetworkProtocolVersion, "2")
	}
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		s.Set(telemetry.AttrUserAgent, ua[0])
	}
	if x.GRPC {
		s.Set(telemetry.AttrRPCSystem, "grpc")
		if svc, m, ok := telemetry.GRPCMethod(r.URL.Path); ok {
			s.Set(telemetry.AttrRPCService, svc)
			s.Set(telemetry.AttrRPCMethod, m)
		}
	}
	return s
}

// authzAttributes records an mTLS listener's decision about the caller.
func authzAttributes(s *telemetry.Span, x *exchange.Exchange, allowed bool) {
	if !s.Recording() {
		return
	}
	if x.Caller != "" {
		s.Set(telemetry.AttrCaller, x.Caller)
	}
	if allowed {
		s.Set(telemetry.AttrAuthzDecision, "allow")
	} else {
		s.Set(telemetry.AttrAuthzDecision, "deny")
	}
}

// endSpan completes the server span with the outcome and ends it.
func endSpan(s *telemetry.Span, r *http.Request, w http.ResponseWriter, x *exchange.Exchange, end time.Time) {
	if s.Recording() {
		s.Set(telemetry.AttrURLPath, logPath(r, x))
		if rt := x.Match.Route; rt != nil {
			s.SetName(semconvMethod(r.Method), rt.Name)
			if p := routePattern(rt); p != "" {
				s.Set(telemetry.AttrHTTPRoute, p)
			}
			s.Set(telemetry.AttrRoute, rt.Name)
		}
		if x.Consumer != "" {
			s.Set(telemetry.AttrConsumer, x.Consumer)
		}
		if x.Upstream != "" && x.Attempts == 0 {
			// Refused before any attempt (whose client spans say it).
			s.Set(telemetry.AttrUpstream, x.Upstream)
		}
		s.SetInt64(telemetry.AttrHTTPStatusCode, int64(x.Status))
		if x.GRPC {
			if code, ok := grpcStatus(w.Header()); ok {
				s.SetInt64(telemetry.AttrRPCGRPCStatusCode, int64(code))
			}
		}
		if x.Status >= 500 {
			s.Set(telemetry.AttrErrorType, strconv.Itoa(x.Status))
			s.SetError(x.Reason)
		}
		if x.Reason != "" {
			s.AddEvent(errorEvent(x), end, "meshgate.reason", x.Reason)
		}
	}
	s.End(end)
}

// errorEvent names what happened to a request the proxy answered itself.
func errorEvent(x *exchange.Exchange) string {
	switch {
	case x.Status == http.StatusTooManyRequests:
		return "meshgate.rate_limited"
	case x.Status == http.StatusUnauthorized || x.Status == http.StatusForbidden:
		return "meshgate.auth_failed"
	case x.Error == exchange.CircuitOpen:
		return "meshgate.circuit_open"
	default:
		return "meshgate.error"
	}
}

// routePattern is the path condition of a route as written ("" without
// one): OpenTelemetry's http.route, low in cardinality.
func routePattern(rt *route.Route) string {
	p := rt.Config.Match.Path
	if p == nil {
		return ""
	}
	switch {
	case p.Template != "":
		return p.Template
	case p.Exact != "":
		return p.Exact
	case p.Prefix != "":
		return p.Prefix
	default:
		return p.Regex
	}
}

// semconvMethod is the method as OpenTelemetry names it: the standard
// methods, anything else _OTHER.
func semconvMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return m
	}
	return "_OTHER"
}

// grpcStatus reads grpc-status from a response's headers (trailers-only)
// or trailers, once they are written.
func grpcStatus(h http.Header) (int, bool) {
	v := h["Grpc-Status"]
	if len(v) == 0 {
		v = h[http.TrailerPrefix+"Grpc-Status"]
	}
	if len(v) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(v[0])
	return n, err == nil
}
