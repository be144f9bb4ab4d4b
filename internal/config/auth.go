package config

// Consumers, authentication and tiers. A route with auth identifies the
// consumer behind a request with one of the named definitions of Auth
// (a JWT, an API key, an opaque token checked by introspection); the
// consumer's tier then bounds its requests across the cluster. Plain data,
// like the rest of the schema: the engine compiles it.

// Kinds of authentication definition, as Auth.Kind reports them.
const (
	AuthKindJWT           = "jwt"
	AuthKindAPIKey        = "api_key"
	AuthKindIntrospection = "introspection"
)

// Names with a meaning of their own.
const (
	// TierDefault is the tier of a consumer without one: a listed consumer
	// without tier, a token's unlisted consumer when its definition has no
	// default_tier.
	TierDefault = "default"
	// TierAnonymous is the tier of requests without credential on routes
	// with anonymous: true, counted per client IP.
	TierAnonymous = "anonymous"
	// ConsumerAnonymous is the consumer of those requests; no consumer of
	// the file may have this name.
	ConsumerAnonymous = "anonymous"
)

// Headers the engine sets on the request sent upstream (client copies are
// always removed); claims_to_headers may not name them or any other
// X-Meshgate- header.
const (
	HeaderConsumer = "X-Meshgate-Consumer"
	HeaderTier     = "X-Meshgate-Tier"
)

// Auth holds named, reusable authentication definitions, referred to by
// routes[].auth.methods. Names are unique across the three lists.
type Auth struct {
	JWT           []JWTAuth           `yaml:"jwt"`
	APIKeys       []APIKeyAuth        `yaml:"api_keys"`
	Introspection []IntrospectionAuth `yaml:"introspection"`
}

// Kind returns the kind of the definition called name (AuthKindJWT, …), or
// "" when there is none.
func (a *Auth) Kind(name string) string {
	for _, j := range a.JWT {
		if j.Name == name {
			return AuthKindJWT
		}
	}
	for _, k := range a.APIKeys {
		if k.Name == name {
			return AuthKindAPIKey
		}
	}
	for _, in := range a.Introspection {
		if in.Name == name {
			return AuthKindIntrospection
		}
	}
	return ""
}

// JWTAuth verifies bearer JWTs signed by an issuer's asymmetric keys,
// fetched from its JWKS.
type JWTAuth struct {
	Name string `yaml:"name"`
	// Issuer is the exact `iss` a token must carry, an http(s) URL.
	Issuer string `yaml:"issuer"`
	// JWKSURI is where the keys are; empty: OIDC discovery from Issuer
	// (Issuer + /.well-known/openid-configuration, its jwks_uri).
	JWKSURI string `yaml:"jwks_uri"`
	// Audiences: a token's `aud` must hold one of them; empty: any.
	Audiences []string `yaml:"audiences"`
	// Algorithms are pinned: a token signed otherwise is refused. Only
	// asymmetric ones (JWTAlgorithms); HS* and none are errors.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is the leeway on exp, nbf and iat; at most MaxClockSkew.
	ClockSkew Duration `yaml:"clock_skew"`
	// ConsumerClaim names the claim that holds the consumer's name.
	ConsumerClaim string `yaml:"consumer_claim"`
	// RequiredClaims map a claim to the value it must have; "" means the
	// claim must exist, whatever its value.
	RequiredClaims map[string]string `yaml:"required_claims"`
	// DefaultTier is the tier of a consumer not listed in consumers; empty:
	// the tier named TierDefault.
	DefaultTier string      `yaml:"default_tier"`
	Refresh     JWKSRefresh `yaml:"refresh"`
}

// JWKSRefresh bounds how often an issuer's keys are fetched again.
type JWKSRefresh struct {
	// MinInterval and MaxInterval bound the refresh interval, which
	// otherwise follows the JWKS response's caching headers.
	MinInterval Duration `yaml:"min_interval"`
	MaxInterval Duration `yaml:"max_interval"`
	// UnknownKIDInterval: a token with a key id not in the set triggers a
	// fetch at most this often.
	UnknownKIDInterval Duration `yaml:"unknown_kid_interval"`
}

// JWTAlgorithms are the accepted values of auth.jwt[].algorithms.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// APIKeyAuth reads an API key from a header or a query parameter (exactly
// one) and finds its consumer by the key's SHA-256 among consumers[].api_keys.
type APIKeyAuth struct {
	Name   string `yaml:"name"`
	Header string `yaml:"header"`
	// Scheme, with Header, is a prefix of the header's value: "ApiKey"
	// reads `Authorization: ApiKey <key>`.
	Scheme string `yaml:"scheme"`
	Query  string `yaml:"query"`
}

// IntrospectionAuth checks opaque bearer tokens at an OAuth 2.0 token
// introspection endpoint (RFC 7662), caching the answers.
type IntrospectionAuth struct {
	Name     string `yaml:"name"`
	Endpoint string `yaml:"endpoint"`
	// ClientID and the secret authenticate meshgate to the endpoint
	// (HTTP Basic). Exactly one of ClientSecret and ClientSecretFile.
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// Audiences: an active token's `aud` must hold one of them; empty: any.
	Audiences []string `yaml:"audiences"`
	// ConsumerClaim names the member of the answer that holds the
	// consumer's name (the engine falls back to client_id).
	ConsumerClaim string `yaml:"consumer_claim"`
	// DefaultTier, as in JWTAuth.
	DefaultTier string `yaml:"default_tier"`
	// CacheMax bounds how long an active answer is reused (never past the
	// token's exp); InactiveTTL how long an inactive one is.
	CacheMax    Duration `yaml:"cache_max"`
	InactiveTTL Duration `yaml:"inactive_ttl"`
	// Timeout bounds one call to the endpoint.
	Timeout Duration `yaml:"timeout"`

	// Secret is the effective client secret: ClientSecret, or the trimmed
	// content of ClientSecretFile, read when the file is loaded.
	Secret string `yaml:"-"`
}

// Consumer is a known caller of the API.
type Consumer struct {
	// Name is unique, 1..128 of letters, digits and ._@:- (a JWT subject,
	// an e-mail, a client id).
	Name string `yaml:"name"`
	// Tier names a tier; empty: the tier named TierDefault.
	Tier string `yaml:"tier"`
	// Metadata is free data about the consumer; sent nowhere by default.
	Metadata map[string]string `yaml:"metadata"`
	// APIKeys are the SHA-256 of the consumer's keys, "sha256:" and 64
	// lower-case hex digits (meshctl keys hash); never the keys themselves.
	APIKeys []string `yaml:"api_keys"`
}

// Tier is a class of consumers and the limits each consumer of it has.
type Tier struct {
	Name string `yaml:"name"`
	// Limits are counted per consumer, cluster-wide; a request must be
	// admitted by every one of them.
	Limits []TierLimit `yaml:"limits"`
	// OnIsolation, as RateLimit.OnIsolation: "open" or "closed".
	OnIsolation string `yaml:"on_isolation"`
}

// TierLimit is one window of a tier.
type TierLimit struct {
	Requests int64    `yaml:"requests"`
	Window   Duration `yaml:"window"`
}

// RouteAuth is a route's authentication and what follows from it.
type RouteAuth struct {
	// Methods name definitions of auth; a request's credential is checked
	// by the first whose kind it fits.
	Methods []string `yaml:"methods"`
	// Anonymous lets a request with no credential at all pass as the
	// consumer ConsumerAnonymous, of tier TierAnonymous, counted per client
	// IP. A credential that is present but bad is still refused.
	Anonymous bool `yaml:"anonymous"`
	// Scopes are all required (403 otherwise).
	Scopes []string `yaml:"scopes"`
	// ForwardCredential keeps the credential on the request sent
	// upstream; false: it is removed.
	ForwardCredential bool `yaml:"forward_credential"`
	// ClaimsToHeaders copies claims to upstream request headers.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// TierLimits applies the consumer's tier limits on this route; nil:
	// true.
	TierLimits *bool `yaml:"tier_limits"`
	// RateLimitHeaders adds RateLimit-Policy and RateLimit to admitted
	// responses (refusals always carry them).
	RateLimitHeaders bool `yaml:"rate_limit_headers"`
}

// TierLimitsOn reports the effective TierLimits.
func (a *RouteAuth) TierLimitsOn() bool { return a.TierLimits == nil || *a.TierLimits }

// ListenerConsumers is which edge-verified consumer a listener believes and
// admits: the X-Meshgate-Consumer header, from trusted callers only.
type ListenerConsumers struct {
	// Require refuses (401) a request without an edge-verified consumer.
	Require bool `yaml:"require"`
	// Trusted are the SPIFFE IDs (patterns) whose X-Meshgate-Consumer is
	// believed; from any other caller the header is removed.
	Trusted []string `yaml:"trusted"`
	// Allow lists the consumers that may call; empty: any verified one.
	Allow []string `yaml:"allow"`
}

// Tier returns the tier called name, or nil.
func (c *Config) Tier(name string) *Tier {
	for i := range c.Tiers {
		if c.Tiers[i].Name == name {
			return &c.Tiers[i]
		}
	}
	return nil
}

// Consumer returns the consumer called name, or nil.
func (c *Config) Consumer(name string) *Consumer {
	for i := range c.Consumers {
		if c.Consumers[i].Name == name {
			return &c.Consumers[i]
		}
	}
	return nil
}
