package config

// The declarative schema of an edge (and, later, a sidecar). Every field is
// documented with its default in docs/config.md; keep the two in step.
//
// These types are plain data: they are decoded, defaulted and validated here,
// then compiled by the engine packages (route, upstream, node) into immutable
// snapshots. Nothing on the request path reads a Config.

// Config is one whole configuration file.
type Config struct {
	Admin Admin `yaml:"admin"`
	// Identity is the node's SPIFFE identity, needed by upstreams with tls.
	// It is read at start; changing it needs a restart (rotation of the
	// SVID itself needs nothing: it is picked up on the next handshake).
	Identity  *Identity  `yaml:"identity"`
	Log       Log        `yaml:"log"`
	Server    Server     `yaml:"server"`
	Listeners []Listener `yaml:"listeners"`
	Routes    []Route    `yaml:"routes"`
	Upstreams []Upstream `yaml:"upstreams"`
	// Cluster joins the node to the meshgate gossip cluster.
	Cluster *Cluster `yaml:"cluster"`
	// Tracing exports the node's spans over OTLP; absent: tracing off.
	Tracing *Tracing `yaml:"tracing"`
	// Auth holds the authentication definitions routes refer to by name.
	Auth Auth `yaml:"auth"`
	// Consumers are the known callers, Tiers their classes of limits.
	Consumers []Consumer `yaml:"consumers"`
	Tiers     []Tier     `yaml:"tiers"`
	// Calls are named backend call definitions composites take with use.
	Calls []AggregateCall `yaml:"calls"`
	// BFF are the Backend-for-Frontend groups routes join with bff.
	BFF []BFF `yaml:"bff"`
	// Cache is the node's response store, which routes with a cache
	// section share.
	Cache CacheStore `yaml:"cache"`
}

// Tracing is the node's OpenTelemetry tracing: W3C trace context on every
// hop, and spans exported over OTLP. It is read at start; changing it needs a
// restart. Without it the proxy forwards trace headers untouched and makes
// no spans.
type Tracing struct {
	// Endpoint is the OTLP receiver, host:port (a collector, an agent,
	// Jaeger: 4317 for grpc, 4318 for http).
	Endpoint string `yaml:"endpoint"`
	// Protocol is "grpc" (OTLP/gRPC) or "http" (OTLP/HTTP, protobuf, POST
	// to /v1/traces).
	Protocol string `yaml:"protocol"`
	// Headers are sent with every export (gRPC metadata or HTTP headers),
	// typically an authorization token.
	Headers map[string]string `yaml:"headers"`
	// Insecure exports in plaintext (no TLS): for a collector on loopback
	// or on a trusted network. Exclusive with CAFile.
	Insecure bool `yaml:"insecure"`
	// CAFile holds the PEM roots that verify the collector's certificate;
	// empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for collectors that
	// require mTLS; read at every handshake, so a rotated pair is used
	// from the next connection.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in the collector's certificate
	// (default: the endpoint's host).
	ServerName string          `yaml:"server_name"`
	Sampling   TracingSampling `yaml:"sampling"`
	// Resource attributes are added to the node's (service.name and the
	// others it sets may be overridden).
	Resource map[string]string `yaml:"resource"`
	// QueueSize bounds the spans waiting for export; past it spans are
	// dropped and counted, never waited for.
	QueueSize int `yaml:"queue_size"`
	// ExportTimeout bounds one export call (a batch), its retries
	// included.
	ExportTimeout Duration `yaml:"export_timeout"`
	// Compression of each export: "gzip" (the default, as the
	// OpenTelemetry SDKs', for a remote collector) or "none" (the default
	// for a collector on loopback, an agent on the node, where the link
	// costs nothing and gzip only costs the exporter CPU: about 4 µs a
	// span, BenchmarkExportBatch).
	Compression string `yaml:"compression"`

	// MeshService is the sidecar's service (set by LoadSidecar; empty on an
	// edge): it makes the node's service.name meshgate-sidecar.
	MeshService string `yaml:"-"`

	// envApplied: the OpenTelemetry environment was read into the section
	// (tracingFromEnv), and envProblems is what it could not read.
	envApplied  bool     `yaml:"-"`
	envProblems []string `yaml:"-"`
}

// TracingSampling is parent-based sampling: a request that carries a trace
// context follows its caller's decision; one that starts a trace is sampled
// with probability Ratio (by trace id, so every node of a trace agrees).
type TracingSampling struct {
	// Ratio is 0..1; nil: DefaultTracingRatio. 0 samples only requests
	// whose caller sampled them.
	Ratio *float64 `yaml:"ratio"`
	// FollowClients: requests on listeners without mTLS (an edge's
	// clients) follow the sampled flag they bring; false: they keep their
	// trace id but this node decides by Ratio, so a client cannot force
	// every request to be traced. nil: true. A sidecar always follows (its
	// plaintext listener serves its own app).
	FollowClients *bool `yaml:"follow_clients"`
}

// FollowsClients reports the effective FollowClients.
func (s TracingSampling) FollowsClients() bool { return s.FollowClients == nil || *s.FollowClients }

// Cluster is the node's membership of the gossip cluster (memberlist over
// SPIFFE mTLS): discovery, replicated routes, shared breakers and limits.
// It is read at start; changing it needs a restart.
type Cluster struct {
	// Name is this node's name, unique in the cluster; default: the host
	// name and the gossip port.
	Name string `yaml:"name"`
	// Bind is the gossip listener (TCP; every connection is mTLS).
	Bind string `yaml:"bind"`
	// Advertise is the address peers reach this node at; default: Bind,
	// which must then be a concrete IP.
	Advertise string `yaml:"advertise"`
	// Join lists gossip addresses of members to join; retried with backoff.
	Join []string `yaml:"join"`
	// Allow lists SPIFFE IDs (patterns) admitted to the cluster; empty: any
	// SVID of the node's trust domain except the identities this node's
	// admin.api names as operators or viewers (unless they are writers).
	Allow []string `yaml:"allow"`
	// Writers lists SPIFFE IDs (patterns) whose signed items (routes,
	// upstreams, tiers, consumers, API keys, cache purges) the node applies;
	// empty: IDs whose last path segment is "edge" or starts with "edge-".
	Writers []string `yaml:"writers"`
	// KindWriters replaces Writers for the kinds it names (route, upstream,
	// tier, consumer, apikey, cache-purge): API keys from a key service
	// only, cache purges from a publishing pipeline too.
	KindWriters map[string][]string `yaml:"kind_writers"`
	// AcceptUnsigned applies peers' unsigned items (written by a release
	// before signatures), counted and logged, for the time of an upgrade;
	// a signed item is still verified. Off by default.
	AcceptUnsigned bool `yaml:"accept_unsigned"`
	// GossipInterval: how often a node sends queued news to a few others.
	GossipInterval Duration `yaml:"gossip_interval"`
	// PushPullInterval: how often a node exchanges its whole state with one
	// other (anti-entropy).
	PushPullInterval Duration `yaml:"push_pull_interval"`
	// ProbeInterval: how often a node probes another for failure detection.
	ProbeInterval Duration `yaml:"probe_interval"`
	// SuspicionMult: how many probe intervals a suspected node has to
	// refute the suspicion before it is declared dead (scaled up by the
	// log of the cluster's size from 10 nodes on).
	SuspicionMult int `yaml:"suspicion_mult"`

	// Offer is what this node offers to discovery: the sidecar sets it from
	// its service and inbound sections; an edge offers nothing.
	Offer *ClusterOffer `yaml:"-"`
}

// ClusterOffer is a sidecar's entry in service discovery.
type ClusterOffer struct {
	Service, Subset string
	Inbound         string // the address peers dial (the inbound listener)
	App             string // the local app, health-checked
}

// ServiceRef names a mesh service (and optionally one subset) whose
// endpoints are the cluster's live, healthy sidecars of it.
type ServiceRef struct {
	Name   string `yaml:"name"`
	Subset string `yaml:"subset"`
}

// Identity says where the node's X.509-SVID comes from: exactly one field.
type Identity struct {
	// WorkloadAPI is a SPIFFE Workload API address ("unix:///path/agent.sock"):
	// SPIRE's agent or meshgate's embedded server.
	WorkloadAPI string `yaml:"workload_api"`
	// SpiffeID picks this node's SVID when the Workload API hands the
	// caller several (a process matching several registration entries);
	// empty: the first one.
	SpiffeID string `yaml:"spiffe_id"`
	// Files are PEM files on disk, reloaded when they change (VMs,
	// Kubernetes secrets).
	Files *IdentityFiles `yaml:"files"`
}

// IdentityFiles are an SVID, its key and the trust bundle as PEM files.
type IdentityFiles struct {
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	BundleFile string `yaml:"bundle_file"`
}

// Admin is the operator-facing HTTP listener: /metrics, /healthz, /readyz.
type Admin struct {
	// Address to listen on; empty disables the admin listener.
	Address string `yaml:"address"`
	// Pprof serves Go's profiler under /debug/pprof/ (off by default: it
	// exposes internals and can cost CPU).
	Pprof bool `yaml:"pprof"`
	// API serves the gRPC admin API (meshctl) over SPIFFE mTLS.
	API *AdminAPI `yaml:"api"`
}

// AdminAPI is the gRPC admin API's listener and who may use it.
type AdminAPI struct {
	Address string `yaml:"address"`
	// Operators may read and change; Viewers may read. SPIFFE ID patterns;
	// anyone else is refused (PERMISSION_DENIED) and audit-logged.
	Operators []string `yaml:"operators"`
	Viewers   []string `yaml:"viewers"`
}

// Log configures the JSON access log and the process log.
type Log struct {
	// Access is "stdout", "stderr", "off" or a file path.
	Access string `yaml:"access"`
	// Level of the process log: debug, info, warn, error.
	Level string `yaml:"level"`
}

// Server holds settings shared by every listener.
type Server struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// WriteTimeout bounds each write of a response to an HTTP/1.x client: a
	// client that stops reading is dropped.
	WriteTimeout Duration `yaml:"write_timeout"`
	// BodyReadTimeout bounds the wait for each read of an HTTP/1.x request
	// body: a body that stalls → 408.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line plus headers; past it → 431.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// DrainTimeout bounds the graceful shutdown on SIGTERM.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// TrustedProxies are CIDRs whose X-Forwarded-* / Forwarded headers are
	// believed. From anyone else those headers are replaced, not appended to.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxBodyBytes is the default request body limit of a route (an edge's
	// default: DefaultEdgeMaxBodyBytes; a sidecar's: none; Unlimited: none).
	MaxBodyBytes BodyLimit `yaml:"max_body_bytes"`
}

// Listener is one address the edge accepts clients on.
type Listener struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// Protocol is "http" (HTTP/1.1, plus h2c when H2C is set) or "https"
	// (TLS; HTTP/2 and HTTP/1.1 negotiated with ALPN).
	Protocol string `yaml:"protocol"`
	// H2C accepts HTTP/2 over cleartext (prior knowledge) on an "http" listener.
	H2C *bool `yaml:"h2c"`
	TLS *TLS  `yaml:"tls"`
	// MTLS makes the listener a SPIFFE mTLS endpoint (a sidecar's inbound):
	// it presents the node's identity and requires a client X.509-SVID of
	// the same trust domain. Exclusive with tls; implies protocol https.
	MTLS *ListenerMTLS `yaml:"mtls"`
	// Consumers believes the edge's X-Meshgate-Consumer from trusted
	// callers of an mtls listener, and may require or restrict it.
	Consumers *ListenerConsumers `yaml:"consumers"`
}

// ListenerMTLS is the caller policy of an mTLS listener.
type ListenerMTLS struct {
	// Allow lists the SPIFFE IDs (patterns) that may call; a caller not in
	// it gets 403 (gRPC: PERMISSION_DENIED). Empty: any SVID of the trust
	// domain.
	Allow []string `yaml:"allow"`
	// ForwardedFrom lists the callers (SPIFFE ID patterns) whose forwarding
	// headers (X-Forwarded-*, Forwarded) are believed and extended: the
	// client and scheme a meshgate peer saw reach the upstream. Absent:
	// every caller the listener admits (its callers are edges and sidecars,
	// which set those headers themselves); []: none.
	ForwardedFrom []string `yaml:"forwarded_from"`
}

// TLS is a listener's server-side TLS.
type TLS struct {
	// Certificates are chosen by SNI against each certificate's DNS names;
	// the first is the default when no name matches.
	Certificates []Certificate `yaml:"certificates"`
	// MinVersion is "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Certificate is a PEM certificate chain and its key.
type Certificate struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Route sends matching requests to an upstream.
type Route struct {
	Name string `yaml:"name"`
	// Listeners restricts the route to the named listeners; empty: all.
	Listeners []string `yaml:"listeners"`
	Match     Match    `yaml:"match"`
	Rewrite   *Rewrite `yaml:"rewrite"`
	// RequestHeaders are applied before forwarding, ResponseHeaders before
	// answering the client.
	RequestHeaders  HeaderOps `yaml:"request_headers"`
	ResponseHeaders HeaderOps `yaml:"response_headers"`
	// Upstream serves the route; exclusive with Split.
	Upstream string `yaml:"upstream"`
	// Split shares the route's requests among several upstreams by weight
	// (a canary: 90/10, then 0/100); exclusive with Upstream.
	Split []SplitTarget `yaml:"split"`
	// Timeout is the total time for the request including retries → 504.
	Timeout Duration `yaml:"timeout"`
	// PerTryTimeout bounds each attempt (until response headers) → 504.
	PerTryTimeout Duration `yaml:"per_try_timeout"`
	// MaxBodyBytes bounds the request body → 413 (0: server default;
	// Unlimited: none).
	MaxBodyBytes BodyLimit `yaml:"max_body_bytes"`
	Retry        *Retry    `yaml:"retry"`
	// RateLimit bounds the route's requests across the whole cluster → 429.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Auth identifies the request's consumer (401, 403) and applies its
	// tier's limits (429); absent: no authentication.
	Auth *RouteAuth `yaml:"auth"`
	// Transform reshapes requests after auth and limits, before they are
	// forwarded, and responses before the client gets them; absent: none.
	Transform *Transform `yaml:"transform"`
	// Aggregate makes the route a composite: its calls answer it, instead
	// of an upstream or split (exclusive with both).
	Aggregate *Aggregate `yaml:"aggregate"`
	// Fallback answers in the upstream's place when it fails (another
	// upstream, then a static response); absent: the error.
	Fallback *Fallback `yaml:"fallback"`
	// Cache answers GET and HEAD requests from the node's shared cache
	// (RFC 9111); absent: no caching.
	Cache *Cache `yaml:"cache"`
	// LenientPaths lets the route take paths that lenient backends read as
	// traversal ("..;", overlong UTF-8; see route.SuspiciousPath), which
	// are refused with 400 by default.
	LenientPaths bool `yaml:"lenient_paths"`
	// BFF names the Backend-for-Frontend group (bff[].name) the route
	// belongs to: its match applies within the group's.
	BFF string `yaml:"bff"`
}

// UpstreamNames returns the upstreams the route sends requests to: its
// upstream, or each target of its split (weight 0 included), in order.
func (r *Route) UpstreamNames() []string {
	if len(r.Split) == 0 {
		if r.Upstream == "" {
			return nil
		}
		return []string{r.Upstream}
	}
	names := make([]string, len(r.Split))
	for i, t := range r.Split {
		names[i] = t.Upstream
	}
	return names
}

// MaxSplitTargets bounds the upstreams of one split.
const MaxSplitTargets = 10

// MaxSplitWeight is the largest weight of a split target.
const MaxSplitWeight = 100

// SplitTarget is one upstream of a route's weighted split. Its share of the
// requests is Weight divided by the sum of the split's weights; a target of
// weight 0 gets none (a canary not yet started, or fully rolled back).
type SplitTarget struct {
	Upstream string `yaml:"upstream"`
	// Weight is required, 0..MaxSplitWeight: a target without one would
	// otherwise silently get nothing.
	Weight *int `yaml:"weight"`
}

// WeightOrZero returns the target's weight, 0 when it has none.
func (t SplitTarget) WeightOrZero() int {
	if t.Weight == nil {
		return 0
	}
	return *t.Weight
}

// RateLimit is a cluster-wide limit on a route's requests, counted per key
// in a sliding window. Each node decides locally on its estimate of the
// cluster's count, which gossip keeps fresh.
type RateLimit struct {
	Requests int64    `yaml:"requests"`
	Window   Duration `yaml:"window"`
	// Key: "route" (one count for the route), "client_ip", or
	// "header:NAME" (a count per value of the header; requests without it
	// share one count).
	Key string `yaml:"key"`
	// OnIsolation: when the node has lost every peer, "open" decides on its
	// own counts against the whole limit, "closed" refuses.
	OnIsolation string `yaml:"on_isolation"`
}

// Match is what a request must have for the route to apply. All given
// conditions must hold.
type Match struct {
	// Hosts match the Host header without port: exact, or "*.example.com"
	// for any subdomain. Empty: any host.
	Hosts []string `yaml:"hosts"`
	Path  *Path    `yaml:"path"`
	// Methods allowed; empty: any. A path that matches with no method
	// matching answers 405 with Allow.
	Methods []string       `yaml:"methods"`
	Headers []ValueMatcher `yaml:"headers"`
	Query   []ValueMatcher `yaml:"query"`
}

// Path is exactly one of its fields.
type Path struct {
	Exact string `yaml:"exact"`
	// Prefix matches on segment boundaries: "/api" matches "/api" and
	// "/api/x", not "/apix".
	Prefix string `yaml:"prefix"`
	// Template is a path with "{name}" segments, each matching one segment,
	// and an optional final "{name...}" matching the rest.
	Template string `yaml:"template"`
	// Regex is an RE2 expression matched against the whole path.
	Regex string `yaml:"regex"`
}

// ValueMatcher matches a header or query parameter by name: Exact, Regex, or
// Present (exactly one).
type ValueMatcher struct {
	Name    string `yaml:"name"`
	Exact   string `yaml:"exact"`
	Regex   string `yaml:"regex"`
	Present bool   `yaml:"present"`
	// Invert negates the match (for example: header absent).
	Invert bool `yaml:"invert"`
}

// Rewrite changes the path before forwarding; at most one of its fields.
type Rewrite struct {
	// StripPrefix removes this prefix (on a segment boundary).
	StripPrefix string `yaml:"strip_prefix"`
	// Path replaces the whole path; "{name}" is substituted from a template
	// match's parameters.
	Path string `yaml:"path"`
	// Regex replaces what Pattern matches with Substitution ($1 etc.).
	Regex *RegexRewrite `yaml:"regex"`
}

// RegexRewrite is a path rewrite by regular expression.
type RegexRewrite struct {
	Pattern      string `yaml:"pattern"`
	Substitution string `yaml:"substitution"`
}

// HeaderOps changes headers: Remove first, then Set (replace), then Add (append).
type HeaderOps struct {
	Add    map[string]string `yaml:"add"`
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
}

// Retry is a route's retry policy.
type Retry struct {
	// Attempts is the total number of tries including the first.
	Attempts int `yaml:"attempts"`
	// On lists the conditions: connect-failure, reset, 502, 503, 504, 5xx,
	// and gRPC codes as grpc-unavailable, grpc-resource-exhausted, …
	On []string `yaml:"on"`
	// NonIdempotent allows retrying POST/PATCH too (only when the body was
	// not yet streamed, or is small enough to have been buffered).
	NonIdempotent bool     `yaml:"non_idempotent"`
	BackoffBase   Duration `yaml:"backoff_base"`
	BackoffMax    Duration `yaml:"backoff_max"`
}

// Upstream is a named set of endpoints and how to talk to them.
type Upstream struct {
	Name      string     `yaml:"name"`
	Endpoints []Endpoint `yaml:"endpoints"`
	// Service takes the endpoints from cluster discovery instead.
	Service *ServiceRef `yaml:"service"`
	// Protocol to the endpoints: "http1", "h2c" (HTTP/2 cleartext, for gRPC)
	// or "auto" (h2c for gRPC requests, HTTP/1.1 otherwise).
	Protocol string   `yaml:"protocol"`
	Balancer Balancer `yaml:"balancer"`
	// DNSRefresh is how often endpoint host names are re-resolved.
	DNSRefresh     Duration `yaml:"dns_refresh"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// MaxConnections bounds open connections per endpoint; MaxPending the
	// requests waiting for one. Past both → 503.
	MaxConnections int `yaml:"max_connections"`
	MaxPending     int `yaml:"max_pending"`
	// MaxIdlePerEndpoint keep-alive connections kept per endpoint.
	MaxIdlePerEndpoint int          `yaml:"max_idle_per_endpoint"`
	IdleTimeout        Duration     `yaml:"idle_timeout"`
	HealthCheck        *HealthCheck `yaml:"health_check"`
	// TLS makes every connection to the endpoints SPIFFE mTLS, presenting
	// the node's identity.
	TLS         *UpstreamTLS `yaml:"tls"`
	Outlier     *Outlier     `yaml:"outlier"`
	RetryBudget RetryBudget  `yaml:"retry_budget"`
	// Breaker puts a circuit breaker in front of each endpoint.
	Breaker *Breaker `yaml:"breaker"`
}

// Breaker is a circuit breaker per endpoint (sony/gobreaker), whose opens
// and recoveries are shared with the cluster.
type Breaker struct {
	ConsecutiveFailures int      `yaml:"consecutive_failures"`
	FailureRatio        float64  `yaml:"failure_ratio"`
	MinRequests         int      `yaml:"min_requests"`
	Interval            Duration `yaml:"interval"`
	OpenTimeout         Duration `yaml:"open_timeout"`
	MaxProbes           int      `yaml:"max_probes"`
	Quorum              int      `yaml:"quorum"`
}

// UpstreamTLS is mTLS to an upstream's endpoints.
type UpstreamTLS struct {
	// SpiffeIDs the endpoints may present (patterns: a final "/*" or "*"
	// segments); any other server is refused.
	SpiffeIDs []string `yaml:"spiffe_ids"`
}

// Endpoint is a host:port (a DNS name is re-resolved; each address becomes
// an endpoint of the same weight).
type Endpoint struct {
	Address string `yaml:"address"`
	Weight  int    `yaml:"weight"`
}

// Balancer picks an endpoint per request.
type Balancer struct {
	// Policy: round_robin (smooth weighted), least_request (power of two
	// choices over in-flight requests and an EWMA of latency), or
	// consistent_hash (a ring, for stickiness).
	Policy string `yaml:"policy"`
	// HashOn is the key of consistent_hash; exactly one field.
	HashOn *HashOn `yaml:"hash_on"`
}

// HashOn names the request attribute hashed for stickiness.
type HashOn struct {
	Header   string `yaml:"header"`
	Cookie   string `yaml:"cookie"`
	ClientIP bool   `yaml:"client_ip"`
}

// HealthCheck is an active HTTP health check of every endpoint.
type HealthCheck struct {
	Path     string   `yaml:"path"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	// HealthyThreshold consecutive successes mark an endpoint healthy,
	// UnhealthyThreshold consecutive failures unhealthy.
	HealthyThreshold   int `yaml:"healthy_threshold"`
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// ExpectedStatus: the status range that counts as healthy ("200-399").
	ExpectedStatus string `yaml:"expected_status"`
}

// Outlier is passive outlier ejection from live traffic.
type Outlier struct {
	Consecutive5xx           int      `yaml:"consecutive_5xx"`
	ConsecutiveConnectErrors int      `yaml:"consecutive_connect_errors"`
	BaseEjection             Duration `yaml:"base_ejection"`
	MaxEjection              Duration `yaml:"max_ejection"`
	// MaxEjectedPercent caps the share of endpoints ejected at once.
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
}

// RetryBudget caps retries to a share of requests so that retries never
// amplify an outage.
type RetryBudget struct {
	// Percent of active requests that may be retries.
	Percent int `yaml:"percent"`
	// MinPerSecond retries are always allowed, for low traffic.
	MinPerSecond int `yaml:"min_per_second"`
}
