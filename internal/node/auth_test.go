package node

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/idptest"
)

// authEdge is an edge in front of an echo backend whose routes take the
// auth section given, with the auth definitions, consumers and tiers given.
func authEdge(t *testing.T, defs, routeAuth string) (*edge, string) {
	t.Helper()
	b := echoBackend(t, "b")
	e := startEdge(t, fmt.Sprintf(`
log: {access: stdout}
listeners: [{name: public, address: "127.0.0.1:0"}]
%s
routes:
  - name: orders
    match: {path: {prefix: /orders}}
    upstream: b
    auth: %s
  - name: open
    match: {path: {prefix: /open}}
    upstream: b
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, defs, routeAuth, addr(b)))
	return e, e.url("public")
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// JWTs issued by a real Hydra, checked against its JWKS: the right token
// passes with its consumer, every wrong one is refused before the upstream,
// and a key rotated in Hydra is accepted without restarting the edge.
func TestAuthJWTFromHydra(t *testing.T) {
	h := idptest.StartHydra(t)
	good := h.CreateClient(t, idptest.ClientOptions{Scopes: []string{"orders.read", "orders.write"}, Audience: []string{"orders", "other"}})
	e, base := authEdge(t, fmt.Sprintf(`
auth:
  jwt:
    - name: hydra
      issuer: %q
      audiences: [orders]
      algorithms: [RS256]
      clock_skew: 1s
tiers: [{name: default, limits: [{requests: 1000, window: 1m}]}]
`, h.Issuer()), `{methods: [hydra], scopes: [orders.read], claims_to_headers: {client_id: X-Client-Id}}`)

	code, hdr, body := get(t, nil, "GET", base+"/orders", nil)
	if code != 401 || !strings.HasPrefix(hdr.Get("Www-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %q %s", code, hdr.Get("Www-Authenticate"), body)
	}

	tok := h.Token(t, good, []string{"orders.read"}, []string{"orders"})
	forged := bearerHdr(tok)
	forged["X-Meshgate-Consumer"] = "someone-else"
	code, _, body = get(t, nil, "GET", base+"/orders", forged)
	if code != 200 {
		t.Fatalf("good token: %d %s", code, body)
	}
	s := decode(t, body)
	if got := s.Headers["X-Meshgate-Consumer"]; len(got) != 1 || got[0] != good.ID {
		t.Errorf("upstream consumer %v, want %s", got, good.ID)
	}
	if got := s.Headers["X-Client-Id"]; len(got) != 1 || got[0] != good.ID {
		t.Errorf("claims_to_headers gave %v", got)
	}
	if _, ok := s.Headers["Authorization"]; ok {
		t.Error("the credential was forwarded")
	}
	if tier := s.Headers["X-Meshgate-Tier"]; len(tier) != 1 || tier[0] != "default" {
		t.Errorf("tier %v", tier)
	}

	// Refusals.
	wrongAud := h.Token(t, good, []string{"orders.read"}, []string{"other"})
	if code, hdr, _ := get(t, nil, "GET", base+"/orders", bearerHdr(wrongAud)); code != 401 || !strings.Contains(hdr.Get("Www-Authenticate"), `error="invalid_token"`) {
		t.Errorf("wrong audience: %d %q", code, hdr.Get("Www-Authenticate"))
	}
	noScope := h.Token(t, good, []string{"orders.write"}, []string{"orders"})
	if code, hdr, _ := get(t, nil, "GET", base+"/orders", bearerHdr(noScope)); code != 403 || !strings.Contains(hdr.Get("Www-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("missing scope: %d %q", code, hdr.Get("Www-Authenticate"))
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	if code, _, _ := get(t, nil, "GET", base+"/orders", bearerHdr(tampered)); code != 401 {
		t.Errorf("tampered signature: %d", code)
	}
	short := h.CreateClient(t, idptest.ClientOptions{Scopes: []string{"orders.read"}, Audience: []string{"orders"}, TokenLifespan: time.Second})
	expiring := h.Token(t, short, []string{"orders.read"}, []string{"orders"})
	// Accepted until its exp (Hydra's clock) plus the skew, then refused.
	eventually(t, 10*time.Second, "the expired token refused", func() bool {
		code, _, body := get(t, nil, "GET", base+"/orders", bearerHdr(expiring))
		return code == 401 && strings.Contains(body, "expired")
	})

	// A key rotated in Hydra: the new kid is fetched at once.
	kid := h.RotateKeys(t)
	rotated := h.Token(t, good, []string{"orders.read"}, []string{"orders"})
	if kid == "" {
		t.Fatal("no rotation")
	}
	if code, _, body := get(t, nil, "GET", base+"/orders", bearerHdr(rotated)); code != 200 {
		t.Errorf("token signed with the rotated key: %d %s", code, body)
	}

	// The consumer is in the access log.
	eventually(t, 5*time.Second, "an access log line with the consumer", func() bool {
		for {
			select {
			case l := <-e.accessLines:
				if strings.Contains(l, "consumer="+good.ID) || strings.Contains(l, `"consumer":"`+good.ID) {
					return true
				}
			default:
				return false
			}
		}
	})
}

// Opaque tokens checked by introspection at a real Hydra: active passes,
// revoked is refused once the cached answer expires, and an unreachable IdP
// fails closed with 503.
func TestAuthIntrospectionAtHydra(t *testing.T) {
	h := idptest.StartHydra(t)
	c := h.CreateClient(t, idptest.ClientOptions{Scopes: []string{"orders.read"}, Audience: []string{"orders"}, AccessTokenStrategy: "opaque"})
	_, base := authEdge(t, fmt.Sprintf(`
auth:
  introspection:
    - name: hydra
      endpoint: %q
      client_id: meshgate
      client_secret: not-checked-by-hydra-admin
      audiences: [orders]
      cache_max: 1s
      inactive_ttl: 1s
    - name: down
      endpoint: "http://%s/introspect"
      client_id: meshgate
      client_secret: x
      timeout: 500ms
`, h.IntrospectionURL(), deadAddr(t)), `{methods: [hydra], scopes: [orders.read]}`)

	tok := h.Token(t, c, []string{"orders.read"}, []string{"orders"})
	code, _, body := get(t, nil, "GET", base+"/orders", bearerHdr(tok))
	if code != 200 {
		t.Fatalf("active token: %d %s", code, body)
	}
	if s := decode(t, body); len(s.Headers["X-Meshgate-Consumer"]) != 1 || s.Headers["X-Meshgate-Consumer"][0] != c.ID {
		t.Errorf("consumer %v", s.Headers["X-Meshgate-Consumer"])
	}
	h.Revoke(t, c, tok)
	eventually(t, 5*time.Second, "the revoked token refused", func() bool {
		code, _, _ := get(t, nil, "GET", base+"/orders", bearerHdr(tok))
		return code == 401
	})
	if code, _, _ := get(t, nil, "GET", base+"/orders", bearerHdr("made-up-opaque-token")); code != 401 {
		t.Errorf("unknown token: %d", code)
	}
}

func TestAuthIntrospectionDownFailsClosed(t *testing.T) {
	_, base := authEdge(t, fmt.Sprintf(`
auth:
  introspection:
    - name: down
      endpoint: "http://%s/introspect"
      client_id: meshgate
      client_secret: x
      timeout: 500ms
`, deadAddr(t)), `{methods: [down]}`)
	code, hdr, body := get(t, nil, "GET", base+"/orders", bearerHdr("some-token"))
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "authentication unavailable") {
		t.Fatalf("IdP down: %d %v %s", code, hdr, body)
	}
}

// API keys: stored hashed, matched exactly, stripped before the upstream.
func TestAuthAPIKeys(t *testing.T) {
	key, hash, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e, base := authEdge(t, fmt.Sprintf(`
auth:
  api_keys:
    - {name: header, header: X-Api-Key}
    - {name: query, query: api_key}
consumers:
  - {name: acme, api_keys: [%q]}
`, hash), `{methods: [header, query]}`)

	code, _, body := get(t, nil, "GET", base+"/orders", map[string]string{"X-Api-Key": key})
	if code != 200 {
		t.Fatalf("good key: %d %s", code, body)
	}
	s := decode(t, body)
	if c := s.Headers["X-Meshgate-Consumer"]; len(c) != 1 || c[0] != "acme" {
		t.Errorf("consumer %v", c)
	}
	if _, ok := s.Headers["X-Api-Key"]; ok {
		t.Error("the key was forwarded")
	}
	code, _, body = get(t, nil, "GET", base+"/orders?x=1&api_key="+key+"&y=2", nil)
	if code != 200 || decode(t, body).Query != "x=1&y=2" {
		t.Errorf("key in the query: %d %s", code, body)
	}
	changed := []byte(key)
	changed[len(changed)-1] ^= 1
	if code, _, _ := get(t, nil, "GET", base+"/orders", map[string]string{"X-Api-Key": string(changed)}); code != http.StatusUnauthorized {
		t.Errorf("a key with one byte changed: %d", code)
	}
	if code, hdr, _ := get(t, nil, "GET", base+"/orders", nil); code != 401 || !strings.Contains(hdr.Get("Www-Authenticate"), "ApiKey") {
		t.Errorf("no key: %d %v", code, hdr)
	}
	if n := metricValue(t, e.node, `meshgate_auth_failures_total{reason="invalid_token",route="orders"}`); n != 1 {
		t.Errorf("auth failures counted %v, want 1 invalid_token", n)
	}
	// A route without auth never passes a client's consumer header on.
	code, _, body = get(t, nil, "GET", base+"/open", map[string]string{"X-Meshgate-Consumer": "acme"})
	if code != 200 || len(decode(t, body).Headers["X-Meshgate-Consumer"]) != 0 {
		t.Errorf("forged consumer header passed on an open route: %s", body)
	}
}

// Tiers: a consumer over its tier gets 429 from the edge with Retry-After
// and the rate-limit headers; the upstream never sees the refused requests.
func TestAuthTierLimit(t *testing.T) {
	freeKey, freeHash, _ := apikey.Generate()
	paidKey, paidHash, _ := apikey.Generate()
	e, base := authEdge(t, fmt.Sprintf(`
auth:
  api_keys: [{name: key, header: X-Api-Key}]
consumers:
  - {name: alice, tier: free, api_keys: [%q]}
  - {name: bob, tier: paid, api_keys: [%q]}
tiers:
  - {name: default, limits: [{requests: 1, window: 1m}]}
  - {name: free, limits: [{requests: 3, window: 1m}]}
  - {name: paid, limits: [{requests: 100, window: 1m}]}
`, freeHash, paidHash), `{methods: [key], rate_limit_headers: true}`)
	for i := range 3 {
		code, hdr, _ := get(t, nil, "GET", base+"/orders", map[string]string{"X-Api-Key": freeKey})
		if code != 200 || hdr.Get("Ratelimit-Policy") == "" {
			t.Fatalf("free request %d: %d %v", i+1, code, hdr)
		}
	}
	code, hdr, body := get(t, nil, "GET", base+"/orders", map[string]string{"X-Api-Key": freeKey})
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(hdr.Get("Ratelimit-Policy"), "q=3") ||
		!strings.Contains(hdr.Get("Ratelimit"), "r=0") || !strings.Contains(body, "tier free") {
		t.Fatalf("over the free tier: %d %v %s", code, hdr, body)
	}
	if code, _, _ := get(t, nil, "GET", base+"/orders", map[string]string{"X-Api-Key": paidKey}); code != 200 {
		t.Errorf("paid consumer limited by free's count: %d", code)
	}
	// Per-route metrics by tier (never by consumer: bounded labels).
	eventually(t, 5*time.Second, "tier metrics", func() bool {
		return metricValue(t, e.node, `meshgate_tier_requests_total{code="2xx",route="orders",tier="free"}`) == 3 &&
			metricValue(t, e.node, `meshgate_tier_requests_total{code="4xx",route="orders",tier="free"}`) == 1 &&
			metricValue(t, e.node, `meshgate_tier_requests_total{code="2xx",route="orders",tier="paid"}`) == 1
	})
}
