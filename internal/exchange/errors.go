package exchange

import (
	"net/http"
	"net/url"
	"strconv"
)

// Kind is one error the proxy answers by itself: its status, a stable name
// (the metric label and the log's error code), the text a client sees, and
// when it happens. A Kind whose text depends on the request (the method and
// path of a 404, say) is written with WriteReason; its Text is then the
// example the documentation shows.
type Kind struct {
	Status int
	Name   string
	Text   string
	When   string
}

// The error table. Every response the proxy generates is one of these;
// docs/config.md's table of errors is checked against Kinds (TestErrorTable).
var (
	BadTarget = &Kind{400, "bad_target", "invalid character in request target",
		"an HTTP/2 `:path` or query carries a control character or non-ASCII byte"}
	BadPath = &Kind{400, "bad_path", "malformed request path: …",
		"the path cannot be [normalized](#path-normalization)"}
	BadBody = &Kind{400, "bad_body", "malformed or truncated request body",
		"the client's body was malformed (bad chunked encoding) or ended early; within its first 16 KiB nothing was sent upstream, past them the upstream request was aborted (see [Strict HTTP/1.x](#strict-http1x)); the connection is closed (`Connection: close`)"}
	InvalidBody = &Kind{400, "invalid_body", "invalid request body: …",
		"a route's `transform` could not read the request body (not JSON, not well-formed XML, bad gzip data); the reason names what and where, never the body"}
	InvalidRequest = &Kind{400, "invalid_request", "invalid request: several Authorization headers",
		"the credential is malformed: several `Authorization` headers, an empty bearer token, or a scheme the route does not take; `WWW-Authenticate` carries `error=\"invalid_request\"` (RFC 6750 §3.1)"}
	Unauthorized = &Kind{401, "unauthorized", "authentication required",
		"the route has `auth` and the request carries no credential; `WWW-Authenticate` names the schemes"}
	InvalidToken = &Kind{401, "invalid_token", "invalid token: …",
		"a credential was presented but is not valid (signature, expiry, issuer, audience, unknown or revoked key); `WWW-Authenticate` carries `error=\"invalid_token\"`"}
	InsufficientScope = &Kind{403, "insufficient_scope", "insufficient scope: requires …",
		"the consumer is authenticated but lacks a scope of `auth.scopes`; `WWW-Authenticate` carries `error=\"insufficient_scope\"`"}
	CallerRequired = &Kind{403, "caller_required", "caller identity required",
		"an mTLS listener's client presented no SPIFFE ID"}
	CallerDenied = &Kind{403, "caller_denied", "spiffe://td/a may not call spiffe://td/b",
		"the caller's SPIFFE ID is not in the listener's allow list"}
	ConsumerRequired = &Kind{401, "consumer_required", "a verified consumer is required",
		"a sidecar's `inbound.consumers.require` is set and the request carries no consumer from a trusted peer"}
	ConsumerDenied = &Kind{403, "consumer_denied", "consumer acme may not call this service",
		"the consumer is not in the sidecar's `inbound.consumers.allow`"}
	NoRoute = &Kind{404, "no_route", "no route for GET /path",
		"no route matches (method and normalized path shown)"}
	MethodNotAllowed = &Kind{405, "method_not_allowed", "method DELETE not allowed; allowed: GET, HEAD",
		"a route matched all but the method; `Allow` lists the methods"}
	BodyTimeout = &Kind{408, "body_timeout", "request body timed out",
		"no byte of the request body arrived for `server.body_read_timeout` (HTTP/1.x); the upstream request is abandoned and the connection closed"}
	BodyTooLarge = &Kind{413, "body_too_large", "request body larger than this route accepts",
		"the body exceeds `max_body_bytes`, or a route's `transform.max_body` (decoded, and as it grows while transformed) when the request side's `on_too_large` is `reject` (the default)"}
	UnsupportedEncoding = &Kind{415, "unsupported_encoding", "unsupported content encoding: br",
		"a route's `transform` must read a request body whose `Content-Encoding` it cannot decode (only gzip and deflate are)"}
	RateLimited = &Kind{429, "rate_limited", "rate limited",
		"the route's `rate_limit` is spent; `Retry-After` says when to retry"}
	TierLimited = &Kind{429, "tier_limited", "rate limited: tier free allows 100 requests per 1m",
		"the consumer's tier is spent; `Retry-After`, `RateLimit-Policy` and `RateLimit` say which limit and when to retry"}
	UpgradeFailed = &Kind{500, "upgrade_failed", "cannot upgrade this connection",
		"a WebSocket upgrade could not take over the client connection"}
	ConnectFailed = &Kind{502, "connect_failed", "upstream connect failed",
		"the last attempt could not connect"}
	ConnectionReset = &Kind{502, "connection_reset", "upstream connection reset",
		"the last attempt's connection failed before response headers"}
	UpstreamUpgrade = &Kind{502, "upstream_upgrade", "upstream upgrade failed",
		"the upstream accepted a WebSocket upgrade but the tunnel could not be set up"}
	BadUpstreamBody = &Kind{502, "bad_upstream_body", "invalid upstream body: …",
		"a route's `transform` could not read the upstream's response body (not JSON or XML as configured, bad gzip data); the upstream's response is not sent"}
	UpstreamBodyTooLarge = &Kind{502, "upstream_body_too_large", "upstream body larger than this route transforms",
		"the upstream's response body exceeds `transform.max_body` and the response side's `on_too_large` is `reject`"}
	TransformFailed = &Kind{502, "transform_failed", "transform failed",
		"a route's `transform.*.body.jq` failed on the body (an error, no result or several, or its time limit); the operator's log has jq's message"}
	AggregateCallFailed = &Kind{502, "aggregate_call_failed", "aggregate: call item failed: upstream connect failed",
		"a required call of a composite route (`aggregate`) failed: no response, a non-2xx status, a body that is not JSON, or a `{call.…}` reference its response does not have; the reason names the call, never its body"}
	AggregateTooLarge = &Kind{502, "aggregate_too_large", "aggregate: response of call item larger than 1MiB",
		"a required call's response exceeds its `max_body`, or the combined response `aggregate.max_body`"}
	Overloaded = &Kind{503, "overloaded", "upstream overloaded",
		"`max_connections` and `max_pending` are both full"}
	AggregateOverloaded = &Kind{503, "aggregate_overloaded", "aggregate: too many requests in progress",
		"the composite route already serves `aggregate.max_concurrency` requests on this node; `Retry-After: 1`"}
	NoHealthyEndpoint = &Kind{503, "no_healthy_endpoint", "no healthy upstream endpoint",
		"the upstream has no endpoint at all (see panic mode)"}
	CircuitOpen = &Kind{503, "circuit_open", "circuit open",
		"every endpoint's circuit breaker is open (or half-open with its probes taken)"}
	AuthUnavailable = &Kind{503, "auth_unavailable", "authentication unavailable",
		"the identity provider needed to check the credential cannot be reached (introspection down, no JWKS yet): fail closed, `Retry-After: 1`"}
	UpstreamTimeout = &Kind{504, "upstream_timeout", "upstream timed out",
		"`timeout` expired, or `per_try_timeout` on the last attempt"}
	PendingTimeout = &Kind{504, "pending_timeout", "timed out waiting for an upstream connection",
		"`timeout` expired while queued for an admission slot"}
	AggregateTimeout = &Kind{504, "aggregate_timeout", "aggregate: timed out waiting for call item",
		"a composite's deadline (`aggregate.timeout`) expired before a required call answered"}
)

// Kinds is the whole table, in the order docs/config.md lists it.
var Kinds = []*Kind{
	BadTarget, BadPath, BadBody, InvalidBody, InvalidRequest, Unauthorized, InvalidToken, ConsumerRequired, InsufficientScope,
	CallerRequired, CallerDenied, ConsumerDenied, NoRoute, MethodNotAllowed, BodyTimeout, BodyTooLarge, UnsupportedEncoding,
	RateLimited, TierLimited, UpgradeFailed, ConnectFailed, ConnectionReset, UpstreamUpgrade,
	BadUpstreamBody, UpstreamBodyTooLarge, TransformFailed, AggregateCallFailed, AggregateTooLarge, Overloaded, AggregateOverloaded,
	NoHealthyEndpoint, CircuitOpen, AuthUnavailable, UpstreamTimeout, PendingTimeout, AggregateTimeout,
}

// Write answers the client with error k and its fixed text.
func Write(w http.ResponseWriter, x *Exchange, k *Kind) {
	WriteReason(w, x, k, k.Text)
}

// WriteReason answers the client with error k, its text replaced by reason,
// which must be safe to show a user (it is also logged with the exchange).
// The body is JSON; headers the caller set before (Retry-After,
// WWW-Authenticate, Allow) go out with it.
//
// A gRPC client cannot read a JSON body: for gRPC requests the error is a
// trailers-only response (HTTP 200, grpc-status and grpc-message) with the
// gRPC code of the status, as gRPC's HTTP mapping specifies.
func WriteReason(w http.ResponseWriter, x *Exchange, k *Kind, reason string) {
	if x != nil {
		x.Reason, x.Error = reason, k
		if x.GRPC {
			writeGRPCError(w, x, k.Status, reason)
			return
		}
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	body := make([]byte, 0, 96+len(reason))
	body = append(body, `{"status":`...)
	body = strconv.AppendInt(body, int64(k.Status), 10)
	body = append(body, `,"error":`...)
	body = strconv.AppendQuote(body, reason)
	if x != nil && x.RequestID != "" {
		body = append(body, `,"request_id":`...)
		body = strconv.AppendQuote(body, x.RequestID)
	}
	body = append(body, "}\n"...)
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(k.Status)
	_, _ = w.Write(body)
}

// GRPCCode maps the proxy's HTTP statuses to gRPC codes (see gRPC's
// "HTTP to gRPC Status Code Mapping", extended for proxy-specific errors).
func GRPCCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	default:
		return 2 // UNKNOWN
	}
}

func writeGRPCError(w http.ResponseWriter, x *Exchange, status int, reason string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/grpc"}
	h["Grpc-Status"] = []string{strconv.Itoa(GRPCCode(status))}
	h["Grpc-Message"] = []string{url.PathEscape(reason)}
	w.WriteHeader(http.StatusOK)
	x.Status = status // logged and counted as what it means, not as 200
}
