package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testIssuer serves a JWKS and signs ES256 tokens with its key.
type testIssuer struct {
	srv    *httptest.Server
	signer jose.Signer
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	}))
	t.Cleanup(srv.Close)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testIssuer{srv: srv, signer: signer}
}

func (i *testIssuer) token(t *testing.T, sub string, aud ...string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.Signed(i.signer).Claims(jwt.Claims{Issuer: "https://issuer.test/", Subject: sub, Audience: aud,
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Fifty reloads, each changing the issuer's definition (so each builds a
// new verifier with its own refresher) while a token keeps being checked:
// every request in between is answered, the verifiers of retired
// snapshots are closed, and no goroutine is left behind.
func TestAuthReloadsLeakNothing(t *testing.T) {
	iss := newTestIssuer(t)
	b := echoBackend(t, "b")
	conf := func(i int) string {
		return fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
auth:
  jwt:
    - {name: test, issuer: "https://issuer.test/", jwks_uri: %q, audiences: [api, gen-%d], algorithms: [ES256]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: b, auth: {methods: [test]}}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, iss.srv.URL, i, addr(b))
	}
	e := startEdge(t, conf(0))
	tok := iss.token(t, "acme", "api")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	check := func(when string) {
		t.Helper()
		if code, _, body := get(t, client, "GET", e.url("public")+"/x", bearerHdr(tok)); code != 200 {
			t.Fatalf("%s: %d %s", when, code, body)
		}
	}
	check("before reloads")
	before := runtime.NumGoroutine()
	for i := 1; i <= 50; i++ {
		e.write(conf(i))
		if err := e.node.Reload(); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after reload %d", i))
	}
	if n := e.node.policyRes.Len(); n != 1 {
		t.Errorf("%d verifiers held after 50 reloads, want the current one", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after 50 reloads, %d before", n, before)
	}
}

// The cache of verified tokens, keyed by what clients send, is exported:
// its size per auth definition (and its evictions), read from the verifier
// the current snapshot shares.
func TestTokenCacheMetrics(t *testing.T) {
	iss := newTestIssuer(t)
	b := echoBackend(t, "b")
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
auth:
  jwt:
    - {name: test, issuer: "https://issuer.test/", jwks_uri: %q, audiences: [api], algorithms: [ES256]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: b, auth: {methods: [test]}}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, iss.srv.URL, addr(b)))
	for _, sub := range []string{"a", "b", "c"} {
		tok := iss.token(t, sub, "api")
		for range 2 {
			if code, _, body := get(t, nil, "GET", e.url("public")+"/x", bearerHdr(tok)); code != 200 {
				t.Fatalf("%d %s", code, body)
			}
		}
	}
	m := scrape(t, e)
	for _, want := range []string{`meshgate_auth_token_cache_entries{auth="test",kind="jwt"} 3`,
		`meshgate_auth_token_cache_evictions_total{auth="test",kind="jwt"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
