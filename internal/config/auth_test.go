package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const keyHashA = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
const keyHashB = "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"

// authFull uses every field of the auth, consumers and tiers sections.
const authFull = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
auth:
  jwt:
    - name: hydra
      issuer: http://127.0.0.1:4444/
      audiences: [orders-api]
      algorithms: [RS256, ES256]
      required_claims: {tenant: "", env: prod}
    - name: corp
      issuer: https://login.example.com/
      jwks_uri: https://login.example.com/keys
      algorithms: [EdDSA]
      clock_skew: 1m
      consumer_claim: client_id
      default_tier: free
      refresh: {min_interval: 30s, max_interval: 2h, unknown_kid_interval: 5s}
  api_keys:
    - {name: keys, header: X-Api-Key}
    - {name: bearer-keys, header: Authorization, scheme: ApiKey}
    - {name: query-keys, query: api_key}
  introspection:
    - name: opaque
      endpoint: https://idp.example.com/oauth2/introspect
      client_id: meshgate
      client_secret: s3cret
      audiences: [orders-api]
consumers:
  - name: acme
    tier: paid
    metadata: {team: shop}
    api_keys: ["` + keyHashA + `"]
  - name: alice@example.com
    api_keys: ["` + keyHashB + `"]
tiers:
  - name: default
    limits: [{requests: 10, window: 1s}]
  - name: free
    limits: [{requests: 100, window: 1m}, {requests: 1000, window: 1h}]
  - name: paid
    limits: [{requests: 10000, window: 1m}]
    on_isolation: closed
  - name: anonymous
    limits: [{requests: 5, window: 1m}]
routes:
  - name: orders
    match: {path: {prefix: /orders}}
    upstream: u
    auth:
      methods: [hydra, opaque]
      scopes: [orders.read]
      forward_credential: true
      claims_to_headers: {email: X-Consumer-Email}
      tier_limits: false
      rate_limit_headers: true
  - name: public
    match: {path: {prefix: /public}}
    upstream: u
    auth: {methods: [keys, bearer-keys, query-keys], anonymous: true}
`

func TestAuthFull(t *testing.T) {
	c, err := Parse("f.yaml", []byte(authFull))
	if err != nil {
		t.Fatal(err)
	}
	hydra, corp := c.Auth.JWT[0], c.Auth.JWT[1]
	if hydra.ClockSkew.D() != 30*time.Second || hydra.ConsumerClaim != "sub" || hydra.JWKSURI != "" {
		t.Errorf("jwt defaults: %+v", hydra)
	}
	if r := hydra.Refresh; r.MinInterval.D() != time.Minute || r.MaxInterval.D() != time.Hour || r.UnknownKIDInterval.D() != 10*time.Second {
		t.Errorf("refresh defaults: %+v", r)
	}
	if v, ok := hydra.RequiredClaims["tenant"]; !ok || v != "" || hydra.RequiredClaims["env"] != "prod" {
		t.Errorf("required_claims: %v", hydra.RequiredClaims)
	}
	if corp.ClockSkew.D() != time.Minute || corp.ConsumerClaim != "client_id" || corp.Refresh.MaxInterval.D() != 2*time.Hour {
		t.Errorf("jwt values: %+v", corp)
	}
	in := c.Auth.Introspection[0]
	if in.CacheMax.D() != 5*time.Minute || in.InactiveTTL.D() != 10*time.Second || in.Timeout.D() != 2*time.Second || in.ConsumerClaim != "sub" {
		t.Errorf("introspection defaults: %+v", in)
	}
	if in.Secret != "s3cret" {
		t.Errorf("secret %q", in.Secret)
	}
	if c.Tier("free").OnIsolation != "open" || c.Tier("paid").OnIsolation != "closed" || c.Tier("gold") != nil {
		t.Errorf("tiers: %+v", c.Tiers)
	}
	if got := c.Tier("free").Limits[1]; got.Requests != 1000 || got.Window.D() != time.Hour {
		t.Errorf("free limits: %+v", c.Tier("free").Limits)
	}
	if a := c.Consumer("acme"); a == nil || a.Tier != "paid" || a.Metadata["team"] != "shop" || a.APIKeys[0] != keyHashA {
		t.Errorf("acme: %+v", a)
	}
	if c.Consumer("alice@example.com").Tier != "" || c.Consumer("bob") != nil {
		t.Error("consumer lookup")
	}
	orders, public := c.Routes[0].Auth, c.Routes[1].Auth
	if orders.TierLimitsOn() || orders.Anonymous || !orders.ForwardCredential || !orders.RateLimitHeaders ||
		orders.ClaimsToHeaders["email"] != "X-Consumer-Email" || !slices.Equal(orders.Scopes, []string{"orders.read"}) {
		t.Errorf("orders auth: %+v", orders)
	}
	if public.TierLimits == nil || !public.TierLimitsOn() || public.ForwardCredential || !public.Anonymous {
		t.Errorf("public auth defaults: %+v", public)
	}
	for name, kind := range map[string]string{"hydra": AuthKindJWT, "query-keys": AuthKindAPIKey, "opaque": AuthKindIntrospection, "nope": ""} {
		if got := c.Auth.Kind(name); got != kind {
			t.Errorf("Kind(%q) = %q, want %q", name, got, kind)
		}
	}
	// The loaded config survives Overlay's validation, secret included.
	o, err := Overlay(c, nil)
	if err != nil || o.Auth.Introspection[0].Secret != "s3cret" {
		t.Fatalf("overlay: %v", err)
	}
}

// A route with auth survives replication: encoded and decoded as a cluster
// resource, it is the same, and it applies through Overlay.
func TestRouteAuthResource(t *testing.T) {
	c, err := Parse("f.yaml", []byte(authFull))
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeResource(c.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRoute("r", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(r.Auth, c.Routes[0].Auth) {
		t.Fatalf("round trip: %+v, want %+v", r.Auth, c.Routes[0].Auth)
	}
	r.Name, r.Listeners, r.Match = "extra", []string{"l"}, Match{Path: &Path{Prefix: "/extra"}}
	r.Auth.Methods = []string{"hydra", "missing"}
	data, _ = EncodeResource(r)
	_, err = Overlay(c, []Resource{{Kind: KindRoute, Name: "extra", Value: data}})
	if err == nil || !strings.Contains(err.Error(), `route "extra": unknown auth method "missing"`) {
		t.Fatalf("overlay with an unknown method: %v", err)
	}
}

// Without tiers, auth works without limits: no default tier is needed.
func TestAuthWithoutTiers(t *testing.T) {
	_, err := Parse("f.yaml", []byte(`listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
auth:
  jwt: [{name: hydra, issuer: "https://idp/", algorithms: [RS256]}]
  api_keys: [{name: keys, header: X-Api-Key}]
consumers: [{name: acme, api_keys: ["`+keyHashA+`"]}]
routes: [{name: r, upstream: u, auth: {methods: [hydra, keys]}}]
`))
	if err != nil {
		t.Fatal(err)
	}
}

// tiersBase has a listener, an upstream and the tiers default and paid in
// lines 1..5.
const tiersBase = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
tiers:
  - {name: default, limits: [{requests: 10, window: 1m}]}
  - {name: paid, limits: [{requests: 100, window: 1m}]}
`

// authBase adds the definitions hydra (jwt) and keys (api key), and opens
// the introspection list; cases add from line 10.
const authBase = tiersBase + `auth:
  jwt: [{name: hydra, issuer: "https://idp/", algorithms: [RS256]}]
  api_keys: [{name: keys, header: X-Api-Key}]
  introspection:
`

// Each invalid auth, consumers or tiers section is rejected at the
// file:line:col of the problem, with a message that says what to do.
func TestAuthErrors(t *testing.T) {
	route := func(auth string) string { return "routes:\n  - name: r\n    upstream: u\n    auth: " + auth + "\n" }
	jwt := func(entry string) string { return tiersBase + "auth:\n  jwt: [" + entry + "]\n" }
	keys := func(entry string) string { return tiersBase + "auth:\n  api_keys: [" + entry + "]\n" }
	tier := func(entry string) string {
		return "listeners: [{name: l, address: \"127.0.0.1:1\"}]\ntiers:\n  - " + entry + "\n"
	}
	intro := func(fields string) string {
		return "    - {name: opaque, endpoint: \"https://idp/introspect\", client_id: m" + fields + "}\n"
	}
	cases := []struct{ name, yaml, want string }{
		{"HS256 refused", `listeners: [{name: l, address: "127.0.0.1:1"}]
auth:
  jwt:
    - name: hydra
      issuer: https://idp/
      algorithms: [RS256, HS256]
`, `f.yaml:6:27: auth.jwt "hydra": algorithm "HS256" is refused: shared secrets are not accepted`},
		{"none refused", jwt("{name: j, issuer: \"https://i/\", algorithms: [none]}"),
			`f.yaml:7:54: auth.jwt "j": algorithm "none" is refused: unsigned tokens are never accepted`},
		{"unknown algorithm", jwt("{name: j, issuer: \"https://i/\", algorithms: [RS1]}"),
			`f.yaml:7:54: auth.jwt "j": unknown algorithm "RS1" (allowed: RS256, RS384`},
		{"no algorithms", jwt("{name: j, issuer: \"https://i/\"}"),
			`f.yaml:7:9: auth.jwt "j": algorithms is required: pin the issuer's signing algorithms`},
		{"no issuer", jwt("{name: j, algorithms: [RS256]}"),
			`f.yaml:7:9: auth.jwt "j": issuer is required`},
		{"bad issuer", jwt("{name: j, issuer: \"idp.example.com\", algorithms: [RS256]}"),
			`f.yaml:7:27: auth.jwt "j": issuer "idp.example.com" must be an absolute http or https URL`},
		{"issuer with credentials", jwt("{name: j, issuer: \"https://u:pw@idp/\", algorithms: [RS256]}"),
			`f.yaml:7:27: auth.jwt "j": issuer must not hold credentials (user:password@)`},
		{"bad jwks_uri", jwt("{name: j, issuer: \"https://i/\", jwks_uri: \"ftp://i/keys\", algorithms: [RS256]}"),
			`f.yaml:7:51: auth.jwt "j": jwks_uri "ftp://i/keys" must be an absolute http or https URL`},
		{"clock skew", jwt("{name: j, issuer: \"https://i/\", algorithms: [RS256], clock_skew: 10m}"),
			`f.yaml:7:74: auth.jwt "j": clock_skew 10m0s must be at most 5m`},
		{"refresh min above max", jwt("{name: j, issuer: \"https://i/\", algorithms: [RS256], refresh: {min_interval: 2h}}"),
			`f.yaml:7:71: auth.jwt "j": refresh.max_interval 1h0m0s is less than min_interval 2h0m0s`},
		{"refresh too fast", jwt("{name: j, issuer: \"https://i/\", algorithms: [RS256], refresh: {unknown_kid_interval: 100ms}}"),
			`f.yaml:7:94: auth.jwt "j": refresh.unknown_kid_interval 100ms must be within 1s..24h`},
		{"duplicate names across kinds", authBase + "  - {name: hydra, endpoint: \"https://idp/i\", client_id: m, client_secret: s}\n",
			`f.yaml:10:12: auth name "hydra" is also the name of auth.jwt[0] (line 7); names are unique across jwt, api_keys and introspection`},
		{"missing name", jwt("{issuer: \"https://i/\", algorithms: [RS256]}"),
			`f.yaml:7:9: auth.jwt[0]: name is required`},
		{"both header and query", keys("{name: k, header: X-Key, query: key}"),
			`f.yaml:7:14: auth.api_keys "k": set exactly one of header (such as X-Api-Key) and query (such as api_key)`},
		{"neither header nor query", keys("{name: k}"),
			`f.yaml:7:14: auth.api_keys "k": set exactly one of header`},
		{"scheme with query", keys("{name: k, query: key, scheme: ApiKey}"),
			`f.yaml:7:44: auth.api_keys "k": scheme applies to header only`},
		{"reserved key header", keys("{name: k, header: X-Meshgate-Consumer}"),
			`f.yaml:7:32: auth.api_keys "k": header "X-Meshgate-Consumer" is reserved`},
		{"bad query name", keys("{name: k, query: \"a&b\"}"),
			`f.yaml:7:31: auth.api_keys "k": query parameter name "a&b" may hold only letters`},
		{"secret and secret_file both", authBase + intro(", client_secret: s, client_secret_file: /etc/secret"),
			`f.yaml:10:7: auth.introspection "opaque": set exactly one of client_secret and client_secret_file`},
		{"no secret", authBase + intro(""),
			`f.yaml:10:7: auth.introspection "opaque": set exactly one of client_secret and client_secret_file`},
		{"unreadable secret file", authBase + intro(", client_secret_file: /nonexistent/secret"),
			`f.yaml:10:92: auth.introspection "opaque": cannot read the client secret: open /nonexistent/secret: no such file or directory`},
		{"no client_id", authBase + "    - {name: o, endpoint: \"https://idp/i\", client_secret: s}\n",
			`f.yaml:10:7: auth.introspection "o": client_id is required`},
		{"no endpoint", authBase + "    - {name: o, client_id: m, client_secret: s}\n",
			`f.yaml:10:7: auth.introspection "o": endpoint (the IdP's introspection URL) is required`},
		{"introspection timeout", authBase + intro(", client_secret: s, timeout: 2m"),
			`f.yaml:10:99: auth.introspection "opaque": timeout 2m0s must be at most 1m`},
		{"introspection unknown tier", authBase + intro(", client_secret: s, default_tier: gold"),
			`f.yaml:10:104: auth.introspection "opaque": unknown tier "gold" (known: default, paid)`},
		{"clear key refused", authBase + "consumers:\n  - name: acme\n    api_keys: [mgk_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst]\n",
			"f.yaml:12:16: consumer \"acme\": api_keys[0] is an API key in clear; store only its hash, the output of `meshctl keys hash`"},
		{"not a hash", authBase + "consumers:\n  - name: acme\n    api_keys: [\"sha256:" + strings.Repeat("A", 64) + "\"]\n",
			"f.yaml:12:16: consumer \"acme\": api_keys[0] is not a key hash; store the output of `meshctl keys hash`"},
		{"hash of two consumers", authBase + "consumers:\n  - {name: a, api_keys: [\"" + keyHashA + "\"]}\n  - {name: b, api_keys: [\"" + keyHashB + "\", \"" + keyHashA + "\"]}\n",
			`f.yaml:12:101: consumer "b": api_keys[1] is also at consumers[0].api_keys[0] (line 11); a key must identify one consumer`},
		{"unknown consumer tier", authBase + "consumers:\n  - {name: acme, tier: gold}\n",
			`f.yaml:11:24: consumer "acme": unknown tier "gold" (known: default, paid)`},
		{"tier without tiers", `listeners: [{name: l, address: "127.0.0.1:1"}]
consumers: [{name: acme, tier: paid}]
`, `f.yaml:2:32: consumer "acme": unknown tier "paid" (the file defines no tiers; add it to tiers)`},
		{"bad consumer name", authBase + "consumers:\n  - {name: \"acme corp\"}\n",
			`f.yaml:11:12: consumer name "acme corp" must be 1..128 letters, digits and ._@:-`},
		{"reserved consumer name", authBase + "consumers:\n  - {name: anonymous}\n",
			`f.yaml:11:12: consumer name "anonymous" is reserved`},
		{"duplicate consumer", authBase + "consumers:\n  - {name: acme}\n  - {name: acme}\n",
			`f.yaml:12:12: duplicate consumer name "acme" (first at line 11)`},
		{"no default tier for consumer", `listeners: [{name: l, address: "127.0.0.1:1"}]
tiers: [{name: paid, limits: [{requests: 1, window: 1s}]}]
consumers: [{name: acme}]
`, `f.yaml:3:13: consumer "acme": set tier, or define a tier named "default" for consumers without one`},
		{"no default tier for jwt", `listeners: [{name: l, address: "127.0.0.1:1"}]
tiers: [{name: paid, limits: [{requests: 1, window: 1s}]}]
auth:
  jwt: [{name: j, issuer: "https://i/", algorithms: [RS256]}]
`, `f.yaml:4:9: auth.jwt "j": set default_tier (the tier of consumers not listed in consumers), or define a tier named "default"`},
		{"window 0", tier("{name: free, limits: [{requests: 10, window: 0s}]}"),
			`f.yaml:3:50: tier "free": limits[0].window is required, 1s..24h (such as 1m)`},
		{"window missing", tier("{name: free, limits: [{requests: 10}]}"),
			`f.yaml:3:27: tier "free": limits[0].window is required`},
		{"window too long", tier("{name: free, limits: [{requests: 10, window: 48h}]}"),
			`f.yaml:3:50: tier "free": window 48h0m0s must be within 1s..24h`},
		{"requests 0", tier("{name: free, limits: [{requests: 0, window: 1m}]}"),
			`f.yaml:3:38: tier "free": limits[0].requests must be at least 1`},
		{"no limits", tier("{name: free}"),
			`f.yaml:3:5: tier "free": limits needs at least one {requests, window}`},
		{"same window twice", tier("{name: free, limits: [{requests: 10, window: 1m}, {requests: 5, window: 60s}]}"),
			`f.yaml:3:77: tier "free": limits[0] and limits[1] have the same window 1m0s; keep one`},
		{"tier isolation", tier("{name: free, limits: [{requests: 1, window: 1m}], on_isolation: shut}"),
			`f.yaml:3:69: tier "free": on_isolation "shut" must be open or closed`},
		{"duplicate tier", tiersBase + "  - {name: paid, limits: [{requests: 1, window: 1m}]}\n",
			`f.yaml:6:12: duplicate tier name "paid" (first at line 5)`},
		{"unknown method name", authBase + route("{methods: [hydra, oidc]}"),
			`f.yaml:13:29: route "r": unknown auth method "oidc" (known: hydra, keys)`},
		{"no methods", authBase + route("{scopes: [a]}"),
			`f.yaml:13:11: route "r": auth.methods must name at least one definition`},
		{"method twice", authBase + route("{methods: [hydra, hydra]}"),
			`f.yaml:13:29: route "r": auth method "hydra" is listed twice`},
		{"anonymous without tier", authBase + route("{methods: [hydra], anonymous: true}"),
			`f.yaml:13:41: route "r": anonymous requests need a tier named "anonymous" (its limits apply per client IP); add it to tiers`},
		{"scopes with api keys", authBase + route("{methods: [hydra, keys], scopes: [orders.read]}"),
			`f.yaml:13:44: route "r": scopes need tokens, and API keys (auth method "keys") carry none`},
		{"scopes with anonymous", tiersBase + "  - {name: anonymous, limits: [{requests: 1, window: 1m}]}\n" + "auth:\n  jwt: [{name: hydra, issuer: \"https://i/\", algorithms: [RS256]}]\n" + route("{methods: [hydra], anonymous: true, scopes: [a]}"),
			`f.yaml:12:55: route "r": scopes cannot go with anonymous`},
		{"bad scope", authBase + route("{methods: [hydra], scopes: [\"a b\"]}"),
			`f.yaml:13:39: route "r": scope "a b" must be a non-empty word`},
		{"reserved claim header", authBase + route("{methods: [hydra], claims_to_headers: {sub: X-Meshgate-Consumer}}"),
			`f.yaml:13:55: route "r": claims_to_headers: header "X-Meshgate-Consumer" is reserved`},
		{"bad claim header", authBase + route("{methods: [hydra], claims_to_headers: {sub: \"X User\"}}"),
			`f.yaml:13:55: route "r": claims_to_headers: invalid header name "X User"`},
		{"framing claim header", authBase + route("{methods: [hydra], claims_to_headers: {sub: Host}}"),
			`f.yaml:13:55: route "r": claims_to_headers: header "Host" cannot be set from a claim`},
		{"two claims one header", authBase + route("{methods: [hydra], claims_to_headers: {a: X-User, b: x-user}}"),
			`f.yaml:13:64: route "r": claims_to_headers: claims "a" and "b" both go to header "x-user"; keep one`},
		{"unknown auth field", authBase + route("{methods: [hydra], optional: true}"),
			`f.yaml:13:30: unknown field "optional" in routes[0].auth (known: methods, anonymous, scopes, forward_credential, claims_to_headers, tier_limits, rate_limit_headers)`},
		{"listener consumers without mtls", "listeners:\n  - {name: l, address: \"127.0.0.1:1\", consumers: {trusted: [\"spiffe://example.org/edge\"]}}\n",
			`f.yaml:2:50: listener "l": consumers trusts callers by SPIFFE ID: it needs mtls`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want Errors", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

// No error quotes an API key or a client secret, even a malformed one.
func TestAuthErrorsDoNotQuoteSecrets(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "secret")
	if err := os.WriteFile(bad, []byte("sec\x01ret-in-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse("f.yaml", []byte(authBase+
		"    - {name: o, endpoint: \"https://idp/i\", client_id: m, client_secret_file: \""+bad+"\"}\n"+
		"consumers:\n  - {name: a, api_keys: [mgk_leakedkey, \"sha256:leakedhash\"]}\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, secret := range []string{"leakedkey", "leakedhash", "ret-in-file"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes %q:\n%v", secret, err)
		}
	}
}

func TestIntrospectionSecretFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("  s3cret-from-file \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(file string) []byte {
		return []byte(authBase + "    - {name: o, endpoint: \"https://idp/i\", client_id: m, client_secret_file: \"" + file + "\"}\n")
	}
	c, err := Parse("f.yaml", doc(secret))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Auth.Introspection[0]; in.Secret != "s3cret-from-file" || in.ClientSecret != "" {
		t.Errorf("secret %q", in.Secret)
	}
	_, err = Parse("f.yaml", doc(empty))
	if err == nil || !strings.Contains(err.Error(), `f.yaml:10:78: auth.introspection "o": client_secret_file `+empty+` is empty`) {
		t.Errorf("empty file: %v", err)
	}
}

func TestSidecarConsumers(t *testing.T) {
	base := sidecarIdentity + "service: {name: payments, app: \"127.0.0.1:9000\"}\n"
	cfg, err := ParseSidecar("s.yaml", []byte(base+`inbound:
  address: 127.0.0.1:15443
  consumers:
    require: true
    trusted: [spiffe://example.org/edge]
    allow: [acme, alice@example.com]
`))
	if err != nil {
		t.Fatal(err)
	}
	lc := cfg.Listeners[0].Consumers
	if lc == nil || !lc.Require || !slices.Equal(lc.Trusted, []string{"spiffe://example.org/edge"}) || !slices.Equal(lc.Allow, []string{"acme", "alice@example.com"}) {
		t.Fatalf("inbound consumers: %+v", lc)
	}
	if cfg, err := ParseSidecar("s.yaml", []byte(base+"inbound: {address: \"127.0.0.1:15443\"}\n")); err != nil || cfg.Listeners[0].Consumers != nil {
		t.Fatalf("without consumers: %v", err)
	}

	for _, tc := range []struct{ name, inbound, want string }{
		{"require without trusted", "inbound:\n  address: 127.0.0.1:15443\n  consumers: {require: true}\n",
			"s.yaml:5:14: inbound.consumers: trusted must list the SPIFFE IDs (such as the edge's) whose X-Meshgate-Consumer header is believed"},
		{"allow without trusted", "inbound:\n  address: 127.0.0.1:15443\n  consumers: {allow: [acme]}\n",
			"s.yaml:5:14: inbound.consumers: trusted must list"},
		{"bad trusted", "inbound:\n  address: 127.0.0.1:15443\n  consumers: {trusted: [\"spiffe://example.org/a*\"]}\n",
			"s.yaml:5:25: pki: invalid SPIFFE ID pattern"},
		{"bad consumer", "inbound:\n  address: 127.0.0.1:15443\n  consumers: {trusted: [\"spiffe://example.org/edge\"], allow: [\"a b\"]}\n",
			"s.yaml:5:63: inbound.consumers: consumer name \"a b\" must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSidecar("s.yaml", []byte(base+tc.inbound))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %s", err, tc.want)
			}
		})
	}
}

// A listener's consumers are carried as written on an mtls listener.
func TestListenerConsumers(t *testing.T) {
	c, err := Parse("f.yaml", []byte(`identity: {workload_api: "unix:///tmp/agent.sock"}
listeners:
  - name: in
    address: 127.0.0.1:15443
    mtls: {}
    consumers: {require: true, trusted: ["spiffe://example.org/edge"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if lc := c.Listeners[0].Consumers; lc == nil || !lc.Require || len(lc.Allow) != 0 {
		t.Fatalf("consumers %+v", lc)
	}
}
