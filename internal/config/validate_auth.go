package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/meshgate/meshgate/pki"
)

// Bounds of the auth, consumers and tiers sections.
const (
	MaxClockSkew          = 5 * time.Minute
	MaxTierWindow         = 24 * time.Hour
	MinTierWindow         = time.Second // the rate limiter's smallest window
	MaxIntrospectTimeout  = time.Minute
	MaxIntrospectCache    = time.Hour // bounds how long a revoked token may still pass
	MaxIntrospectInactive = time.Hour
	MaxJWKSRefresh        = 24 * time.Hour
	MaxConsumerNameLen    = 128
)

var (
	consumerNameRE = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,128}$`)
	keyHashRE      = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// queryNameRE is a query parameter name that needs no escaping.
	queryNameRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	// scopeRE is an RFC 6749 scope-token.
	scopeRE = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// upstreamOnlyHeaders may not be set by claims_to_headers: framing, routing
// and hop-by-hop headers, which a claim must never rewrite.
var upstreamOnlyHeaders = map[string]bool{
	"host": true, "content-length": true, "content-type": true, "transfer-encoding": true,
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true, "trailer": true,
	"upgrade": true, "proxy-authenticate": true, "proxy-authorization": true,
}

// authIndex is what routes and listeners are checked against: the auth
// definitions (name → kind) and the tiers (name → index).
type authIndex struct {
	kinds map[string]string
	tiers map[string]int
}

// authSections validates auth, consumers and tiers, and indexes them for
// the routes.
func (v *validator) authSections(c *Config) authIndex {
	ix := authIndex{kinds: map[string]string{}, tiers: map[string]int{}}
	for i, t := range c.Tiers {
		p := fmt.Sprintf("tiers[%d]", i)
		v.name(p, t.Name, "tier", ix.tiers, i)
		v.tier(p, &t)
	}

	seen := map[string]string{} // definition name → path of its entry
	def := func(p, kind, name string) {
		switch {
		case name == "":
			v.at(p, "%s: name is required (routes refer to the definition by it)", p)
		case !tokenRE.MatchString(name):
			v.at(p+".name", "auth name %q may hold only letters, digits and -._~", name)
		case seen[name] != "":
			v.at(p+".name", "auth name %q is also the name of %s (line %d); names are unique across jwt, api_keys and introspection",
				name, seen[name], v.line(seen[name]))
		default:
			seen[name] = p
			ix.kinds[name] = kind
		}
	}
	for i := range c.Auth.JWT {
		j := &c.Auth.JWT[i]
		p := fmt.Sprintf("auth.jwt[%d]", i)
		def(p, AuthKindJWT, j.Name)
		v.jwt(p, j, ix)
	}
	for i, k := range c.Auth.APIKeys {
		p := fmt.Sprintf("auth.api_keys[%d]", i)
		def(p, AuthKindAPIKey, k.Name)
		v.apiKeyAuth(p, k)
	}
	for i := range c.Auth.Introspection {
		in := &c.Auth.Introspection[i]
		p := fmt.Sprintf("auth.introspection[%d]", i)
		def(p, AuthKindIntrospection, in.Name)
		v.introspection(p, in, ix)
	}

	consumers := map[string]int{}
	hashes := map[string]string{} // key hash → path of its first use
	for i := range c.Consumers {
		cs := &c.Consumers[i]
		p := fmt.Sprintf("consumers[%d]", i)
		switch j, dup := consumers[cs.Name]; {
		case cs.Name == "":
			v.at(p, "consumer name is required")
		case !consumerNameRE.MatchString(cs.Name):
			v.at(p+".name", "consumer name %q must be 1..%d letters, digits and ._@:-", cs.Name, MaxConsumerNameLen)
		case cs.Name == ConsumerAnonymous:
			v.at(p+".name", "consumer name %q is reserved for requests without credential on routes with auth.anonymous", cs.Name)
		case dup:
			v.at(p+".name", "duplicate consumer name %q (first at line %d)", cs.Name, v.line(fmt.Sprintf("consumers[%d].name", j)))
		default:
			consumers[cs.Name] = i
		}
		if cs.Tier != "" {
			v.tierRef(p+".tier", fmt.Sprintf("consumer %q", cs.Name), cs.Tier, ix)
		} else if len(c.Tiers) > 0 {
			if _, ok := ix.tiers[TierDefault]; !ok {
				v.at(p, "consumer %q: set tier, or define a tier named %q for consumers without one", cs.Name, TierDefault)
			}
		}
		for k := range cs.Metadata {
			if k == "" {
				v.at(p+".metadata", "consumer %q: metadata keys must not be empty", cs.Name)
			}
		}
		for j, h := range cs.APIKeys {
			kp := fmt.Sprintf("%s.api_keys[%d]", p, j)
			// The value is never quoted: it may be a key in clear.
			switch {
			case strings.HasPrefix(h, "mgk_"):
				v.at(kp, "consumer %q: api_keys[%d] is an API key in clear; store only its hash, the output of `meshctl keys hash` (sha256: and 64 lower-case hex digits), and give the key to the consumer", cs.Name, j)
			case !keyHashRE.MatchString(h):
				v.at(kp, "consumer %q: api_keys[%d] is not a key hash; store the output of `meshctl keys hash`: sha256: and 64 lower-case hex digits, never the key itself", cs.Name, j)
			case hashes[h] != "":
				v.at(kp, "consumer %q: api_keys[%d] is also at %s (line %d); a key must identify one consumer", cs.Name, j, hashes[h], v.line(hashes[h]))
			default:
				hashes[h] = kp
			}
		}
	}
	return ix
}

// tierRef checks that name is a tier.
func (v *validator) tierRef(path, who, name string, ix authIndex) {
	if _, ok := ix.tiers[name]; ok {
		return
	}
	if len(ix.tiers) == 0 {
		v.at(path, "%s: unknown tier %q (the file defines no tiers; add it to tiers)", who, name)
		return
	}
	v.at(path, "%s: unknown tier %q (known: %s)", who, name, strings.Join(sortedKeys(ix.tiers), ", "))
}

// defaultTier checks a token definition's default_tier: a tier, or, when
// there are tiers at all, a tier named TierDefault must exist.
func (v *validator) defaultTier(p, who, name string, ix authIndex) {
	if name != "" {
		v.tierRef(p+".default_tier", who, name, ix)
		return
	}
	if _, ok := ix.tiers[TierDefault]; len(ix.tiers) > 0 && !ok {
		v.at(p, "%s: set default_tier (the tier of consumers not listed in consumers), or define a tier named %q", who, TierDefault)
	}
}

func (v *validator) tier(p string, t *Tier) {
	if len(t.Limits) == 0 {
		v.at(p, "tier %q: limits needs at least one {requests, window}", t.Name)
	}
	windows := map[time.Duration]int{}
	for j, l := range t.Limits {
		lp := fmt.Sprintf("%s.limits[%d]", p, j)
		if l.Requests < 1 {
			v.at(lp+".requests", "tier %q: limits[%d].requests must be at least 1", t.Name, j)
		}
		switch w := l.Window.D(); {
		case w == 0:
			v.at(lp+".window", "tier %q: limits[%d].window is required, %s..%s (such as 1m)", t.Name, j, MinTierWindow, durationText(MaxTierWindow))
		case w < MinTierWindow || w > MaxTierWindow:
			v.at(lp+".window", "tier %q: window %s must be within %s..%s", t.Name, w, MinTierWindow, durationText(MaxTierWindow))
		case w%time.Millisecond != 0:
			v.at(lp+".window", "tier %q: window %s must be whole milliseconds", t.Name, w)
		default:
			if k, dup := windows[w]; dup {
				v.at(lp+".window", "tier %q: limits[%d] and limits[%d] have the same window %s; keep one", t.Name, k, j, w)
			} else {
				windows[w] = j
			}
		}
	}
	if t.OnIsolation != "open" && t.OnIsolation != "closed" {
		v.at(p+".on_isolation", "tier %q: on_isolation %q must be open or closed", t.Name, t.OnIsolation)
	}
}

func (v *validator) jwt(p string, j *JWTAuth, ix authIndex) {
	who := fmt.Sprintf("auth.jwt %q", j.Name)
	if j.Issuer == "" {
		v.at(p, "%s: issuer is required (the exact iss of its tokens, such as https://idp.example.com/)", who)
	} else {
		v.httpURL(p+".issuer", who, "issuer", j.Issuer, true)
	}
	if j.JWKSURI != "" {
		v.httpURL(p+".jwks_uri", who, "jwks_uri", j.JWKSURI, false)
	}
	v.nonEmpty(p+".audiences", who, "audiences", j.Audiences)
	if len(j.Algorithms) == 0 {
		v.at(p, "%s: algorithms is required: pin the issuer's signing algorithms (%s)", who, strings.Join(JWTAlgorithms, ", "))
	}
	for k, a := range j.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, k)
		switch {
		case slices.Contains(JWTAlgorithms, a):
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			v.at(ap, "%s: algorithm %q is refused: shared secrets are not accepted (a gateway holding the key could forge tokens); have the issuer sign with an asymmetric key (RS256, ES256, EdDSA, …)", who, a)
		case strings.EqualFold(a, "none"):
			v.at(ap, "%s: algorithm %q is refused: unsigned tokens are never accepted", who, a)
		default:
			v.at(ap, "%s: unknown algorithm %q (allowed: %s)", who, a, strings.Join(JWTAlgorithms, ", "))
		}
	}
	if j.ClockSkew.D() > MaxClockSkew {
		v.at(p+".clock_skew", "%s: clock_skew %s must be at most %s", who, j.ClockSkew.D(), durationText(MaxClockSkew))
	}
	v.claimName(p+".consumer_claim", who, "consumer_claim", j.ConsumerClaim)
	for k := range j.RequiredClaims {
		if k == "" {
			v.at(p+".required_claims", "%s: required_claims: a claim name must not be empty", who)
		}
	}
	v.defaultTier(p, who, j.DefaultTier, ix)
	r := j.Refresh
	for field, d := range map[string]Duration{"min_interval": r.MinInterval, "max_interval": r.MaxInterval, "unknown_kid_interval": r.UnknownKIDInterval} {
		if d.D() < time.Second || d.D() > MaxJWKSRefresh {
			v.at(p+".refresh."+field, "%s: refresh.%s %s must be within 1s..%s", who, field, d.D(), durationText(MaxJWKSRefresh))
		}
	}
	if r.MinInterval > r.MaxInterval {
		v.at(p+".refresh.max_interval", "%s: refresh.max_interval %s is less than min_interval %s", who, r.MaxInterval.D(), r.MinInterval.D())
	}
}

func (v *validator) apiKeyAuth(p string, k APIKeyAuth) {
	who := fmt.Sprintf("auth.api_keys %q", k.Name)
	switch {
	case (k.Header == "") == (k.Query == ""):
		v.at(p, "%s: set exactly one of header (such as X-Api-Key) and query (such as api_key)", who)
	case k.Header != "":
		switch {
		case !tokenRE.MatchString(k.Header):
			v.at(p+".header", "%s: invalid header name %q", who, k.Header)
		case isMeshgateHeader(k.Header):
			v.at(p+".header", "%s: header %q is reserved: X-Meshgate-* headers are set by meshgate and removed from clients", who, k.Header)
		}
	default:
		if !queryNameRE.MatchString(k.Query) {
			v.at(p+".query", "%s: query parameter name %q may hold only letters, digits and -._~", who, k.Query)
		}
	}
	if k.Scheme != "" {
		if k.Header == "" {
			v.at(p+".scheme", "%s: scheme applies to header only (Authorization: %s <key>); remove it or set header", who, k.Scheme)
		} else if !tokenRE.MatchString(k.Scheme) {
			v.at(p+".scheme", "%s: scheme %q must be a single word such as ApiKey", who, k.Scheme)
		}
	}
}

func (v *validator) introspection(p string, in *IntrospectionAuth, ix authIndex) {
	who := fmt.Sprintf("auth.introspection %q", in.Name)
	if in.Endpoint == "" {
		v.at(p, "%s: endpoint (the IdP's introspection URL) is required", who)
	} else {
		v.httpURL(p+".endpoint", who, "endpoint", in.Endpoint, false)
	}
	if in.ClientID == "" {
		v.at(p, "%s: client_id is required (meshgate's client at the IdP)", who)
	}
	if (in.ClientSecret == "") == (in.ClientSecretFile == "") {
		v.at(p, "%s: set exactly one of client_secret and client_secret_file (preferred: the secret stays out of the file)", who)
	} else if in.ClientSecret != "" && !printableASCII(in.ClientSecret) {
		v.at(p+".client_secret", "%s: client_secret must be printable ASCII", who)
	}
	v.nonEmpty(p+".audiences", who, "audiences", in.Audiences)
	v.claimName(p+".consumer_claim", who, "consumer_claim", in.ConsumerClaim)
	v.defaultTier(p, who, in.DefaultTier, ix)
	if d := in.CacheMax.D(); d > MaxIntrospectCache {
		v.at(p+".cache_max", "%s: cache_max %s must be at most %s (a revoked token passes while its answer is cached)", who, d, durationText(MaxIntrospectCache))
	}
	if d := in.InactiveTTL.D(); d > MaxIntrospectInactive {
		v.at(p+".inactive_ttl", "%s: inactive_ttl %s must be at most %s", who, d, durationText(MaxIntrospectInactive))
	}
	if d := in.Timeout.D(); d > MaxIntrospectTimeout {
		v.at(p+".timeout", "%s: timeout %s must be at most %s", who, d, durationText(MaxIntrospectTimeout))
	}
}

// readSecrets fills each introspection definition's Secret, reading the
// client_secret_file ones. Called by Parse after validation, so that a
// config given to Overlay keeps the secrets it was loaded with.
func (v *validator) readSecrets(c *Config) {
	for i := range c.Auth.Introspection {
		in := &c.Auth.Introspection[i]
		p := fmt.Sprintf("auth.introspection[%d].client_secret_file", i)
		switch {
		case in.ClientSecret != "":
			in.Secret = in.ClientSecret
		case in.ClientSecretFile != "":
			data, err := os.ReadFile(in.ClientSecretFile)
			if err != nil {
				v.at(p, "auth.introspection %q: cannot read the client secret: %v", in.Name, err)
				continue
			}
			// The content is never quoted.
			s := strings.TrimSpace(string(data))
			switch {
			case s == "":
				v.at(p, "auth.introspection %q: client_secret_file %s is empty", in.Name, in.ClientSecretFile)
			case !printableASCII(s):
				v.at(p, "auth.introspection %q: client_secret_file %s must hold one line of printable ASCII", in.Name, in.ClientSecretFile)
			default:
				in.Secret = s
			}
		}
	}
}

// routeAuth validates a route's auth against the definitions and tiers.
func (v *validator) routeAuth(p string, r *Route, ix authIndex) {
	a := r.Auth
	who := fmt.Sprintf("route %q", r.Name)
	if len(a.Methods) == 0 {
		v.at(p, "%s: auth.methods must name at least one definition of auth (jwt, api_keys, introspection)", who)
	}
	var keyMethod string
	for j, m := range a.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", p, j)
		kind, ok := ix.kinds[m]
		switch {
		case !ok && len(ix.kinds) == 0:
			v.at(mp, "%s: unknown auth method %q (the file defines no auth; add it under auth.jwt, auth.api_keys or auth.introspection)", who, m)
		case !ok:
			v.at(mp, "%s: unknown auth method %q (known: %s)", who, m, strings.Join(sortedKeys(ix.kinds), ", "))
		case slices.Index(a.Methods, m) < j:
			v.at(mp, "%s: auth method %q is listed twice", who, m)
		case kind == AuthKindAPIKey && keyMethod == "":
			keyMethod = m
		}
	}
	if a.Anonymous {
		if _, ok := ix.tiers[TierAnonymous]; !ok {
			v.at(p+".anonymous", "%s: anonymous requests need a tier named %q (its limits apply per client IP); add it to tiers", who, TierAnonymous)
		}
	}
	for j, s := range a.Scopes {
		if !scopeRE.MatchString(s) {
			v.at(fmt.Sprintf("%s.scopes[%d]", p, j), "%s: scope %q must be a non-empty word of printable ASCII without spaces, \" or \\", who, s)
		}
	}
	if len(a.Scopes) > 0 && a.Anonymous {
		v.at(p+".scopes", "%s: scopes cannot go with anonymous: an anonymous request has no scopes and would always get 403; make a separate route for anonymous access", who)
	}
	if len(a.Scopes) > 0 && keyMethod != "" {
		v.at(p+".scopes", "%s: scopes need tokens, and API keys (auth method %q) carry none: every key would get 403; make a separate route for keys", who, keyMethod)
	}
	claims := sortedKeys(a.ClaimsToHeaders)
	headers := map[string]string{}
	for _, claim := range claims {
		h := a.ClaimsToHeaders[claim]
		hp := p + ".claims_to_headers." + claim
		lh := strings.ToLower(h)
		switch {
		case claim == "":
			v.at(p+".claims_to_headers", "%s: claims_to_headers: a claim name must not be empty", who)
		case !tokenRE.MatchString(h):
			v.at(hp, "%s: claims_to_headers: invalid header name %q", who, h)
		case isMeshgateHeader(h):
			v.at(hp, "%s: claims_to_headers: header %q is reserved (X-Meshgate-* are set by meshgate: the consumer and tier are sent as %s and %s)", who, h, HeaderConsumer, HeaderTier)
		case upstreamOnlyHeaders[lh]:
			v.at(hp, "%s: claims_to_headers: header %q cannot be set from a claim", who, h)
		case headers[lh] != "":
			v.at(hp, "%s: claims_to_headers: claims %q and %q both go to header %q; keep one", who, headers[lh], claim, h)
		default:
			headers[lh] = claim
		}
	}
}

// listenerConsumers validates a listener's (or the sidecar's inbound)
// consumers section.
func (v *validator) listenerConsumers(p string, lc *ListenerConsumers) {
	if len(lc.Trusted) == 0 && (lc.Require || len(lc.Allow) > 0) {
		v.at(p, "%s: trusted must list the SPIFFE IDs (such as the edge's) whose %s header is believed: require and allow need it", p, HeaderConsumer)
	}
	for i, id := range lc.Trusted {
		if _, err := pki.ParsePattern(id); err != nil {
			v.at(fmt.Sprintf("%s.trusted[%d]", p, i), "%v", err)
		}
	}
	for i, name := range lc.Allow {
		if !consumerNameRE.MatchString(name) {
			v.at(fmt.Sprintf("%s.allow[%d]", p, i), "%s: consumer name %q must be 1..%d letters, digits and ._@:-", p, name, MaxConsumerNameLen)
		}
	}
}

// httpURL checks an absolute http(s) URL. An issuer takes no query or
// fragment (OpenID Connect Discovery). A URL with credentials is not quoted.
func (v *validator) httpURL(path, who, field, s string, issuer bool) {
	u, err := url.Parse(s)
	switch {
	case err == nil && u.User != nil:
		v.at(path, "%s: %s must not hold credentials (user:password@)", who, field)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "":
		v.at(path, "%s: %s %q must be an absolute http or https URL", who, field, s)
	case issuer && u.RawQuery != "":
		v.at(path, "%s: issuer %q must not have a query", who, s)
	}
}

func (v *validator) nonEmpty(path, who, field string, vals []string) {
	for i, s := range vals {
		if strings.TrimSpace(s) == "" {
			v.at(fmt.Sprintf("%s[%d]", path, i), "%s: %s[%d] must not be empty", who, field, i)
		}
	}
}

func (v *validator) claimName(path, who, field, name string) {
	if name == "" || strings.TrimSpace(name) != name || !printableASCII(name) {
		v.at(path, "%s: %s %q must name a claim (printable, without surrounding spaces)", who, field, name)
	}
}

func isMeshgateHeader(h string) bool {
	return len(h) >= len("x-meshgate-") && strings.EqualFold(h[:len("x-meshgate-")], "x-meshgate-")
}

// durationText writes whole minutes and hours as 5m, 24h rather than
// time.Duration's 5m0s, 24h0m0s.
func durationText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
