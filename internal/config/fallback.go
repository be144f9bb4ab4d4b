package config

// Fallbacks (routes[].fallback): what a route answers when its upstream
// cannot — its breakers are open, no endpoint is healthy, the upstream
// fails, times out or answers a 5xx the route names — instead of the
// error: the same request sent to another upstream, then a static
// response. A 4xx from the upstream is the upstream's answer and is never
// replaced.

// Fallback conditions (Fallback.On): the proxy's own errors, by name, and
// upstream statuses ("5xx" or a code 500..599).
const (
	FallbackCircuitOpen    = "circuit-open"    // every endpoint's breaker is open
	FallbackNoEndpoint     = "no-endpoint"     // no healthy endpoint
	FallbackConnectFailure = "connect-failure" // the last attempt could not connect
	FallbackReset          = "reset"           // the connection failed before response headers
	FallbackTimeout        = "timeout"         // timeout or per_try_timeout, or queued too long
	FallbackOverloaded     = "overloaded"      // max_connections and max_pending full
	Fallback5xx            = "5xx"             // any 5xx response of the upstream
)

// DefaultFallbackOn are the conditions of a fallback without on: every
// failure that left the client without an upstream response.
var DefaultFallbackOn = []string{FallbackCircuitOpen, FallbackNoEndpoint, FallbackConnectFailure,
	FallbackReset, FallbackTimeout, FallbackOverloaded}

// MaxFallbackBody bounds a static fallback body (it is held in memory).
const MaxFallbackBody = 1 << 20

// Fallback is a route's answer when its upstream fails.
type Fallback struct {
	// On lists the conditions that call for the fallback (default
	// DefaultFallbackOn).
	On []string `yaml:"on"`
	// Upstream is tried first: the request goes to it as it would have
	// gone to the route's (rewrites, timeouts, retries, transforms), when
	// its body can be sent again (none, or not read yet).
	Upstream string `yaml:"upstream"`
	// Response answers when there is no fallback upstream or it fails too.
	Response *FallbackResponse `yaml:"response"`
	// Stale is the first choice, before Upstream and Response, on a route
	// with a cache: a stored response up to this long past its freshness
	// answers (marked stale in Cache-Status), even past its own
	// stale-if-error window. Responses that forbid serving stale
	// (no-cache, must-revalidate, proxy-revalidate, s-maxage) and requests
	// that refuse it (no-cache, max-age) are still obeyed (RFC 9111 §4.2.4).
	Stale Duration `yaml:"stale"`
}

// FallbackResponse is a static answer.
type FallbackResponse struct {
	// Status (default 503).
	Status int `yaml:"status"`
	// Headers are set on the answer; Content-Type defaults to
	// application/json, and Cache-Control to no-store.
	Headers map[string]string `yaml:"headers"`
	// Body, or BodyFile (a path, read when the config is loaded, as
	// client_secret_file is); either may hold {request_id}, replaced by the
	// request's id.
	Body     string `yaml:"body"`
	BodyFile string `yaml:"body_file"`
}
