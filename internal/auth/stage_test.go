package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
)

// fixture is an auth stage over a recording upstream, with an issuer of
// ES256 tokens and one API key of consumer acme.
type fixture struct {
	t      *testing.T
	h      http.Handler
	signer jose.Signer
	key    string
	seen   *http.Request
}

func newFixture(t *testing.T, ra config.RouteAuth) *fixture {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set) }))
	t.Cleanup(jwks.Close)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k"}}, nil)
	key, hash, _ := apikey.Generate()
	f := &fixture{t: t, signer: signer, key: key}
	d := Deps{
		Auth: config.Auth{
			JWT: []config.JWTAuth{{Name: "jwt", Issuer: "https://iss/", JWKSURI: jwks.URL, Algorithms: []string{"ES256"},
				ConsumerClaim: "sub", DefaultTier: "free"}},
			APIKeys: []config.APIKeyAuth{{Name: "key", Header: "X-Api-Key"}},
		},
		Consumers: []config.Consumer{{Name: "acme", Tier: "paid", APIKeys: []string{hash}}},
		Tiers:     []config.Tier{{Name: "free"}, {Name: "paid"}, {Name: "anonymous"}},
		Logger:    slog.New(slog.DiscardHandler),
	}
	sc := policy.NewScope(nil)
	t.Cleanup(sc.Close)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.seen = r })
	h, err := Policy(d).Build(&config.Route{Auth: &ra}, policy.Env{Route: "r", Scope: sc}, up)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func (f *fixture) token(sub string, claims map[string]any, scopes ...string) string {
	now := time.Now()
	b := jwt.Signed(f.signer).Claims(jwt.Claims{Issuer: "https://iss/", Subject: sub, Expiry: jwt.NewNumericDate(now.Add(time.Hour))})
	if len(scopes) > 0 {
		b = b.Claims(map[string]any{"scope": strings.Join(scopes, " ")})
	}
	if claims != nil {
		b = b.Claims(claims)
	}
	tok, err := b.Serialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// do serves one request with headers h ("Name: value" lines) and returns
// the answer and the exchange.
func (f *fixture) do(target string, h ...string) (*httptest.ResponseRecorder, *exchange.Exchange) {
	f.seen = nil
	r := httptest.NewRequest("GET", target, nil)
	for _, kv := range h {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
	}
	x := &exchange.Exchange{ClientIP: "192.0.2.1"}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(exchange.Recorder(rec, x), r.WithContext(exchange.With(r.Context(), x)))
	return rec, x
}

func TestStageAnswers(t *testing.T) {
	f := newFixture(t, config.RouteAuth{Methods: []string{"jwt", "key"}, Scopes: []string{"read"},
		ClaimsToHeaders: map[string]string{"email": "X-Email"}})
	cases := []struct {
		name      string
		headers   []string
		status    int
		challenge string
	}{
		{"no credential", nil, 401, `Bearer realm="meshgate", ApiKey realm="meshgate", header="X-Api-Key"`},
		{"two Authorization headers", []string{"Authorization: Bearer a", "Authorization: Bearer b"}, 400, `error="invalid_request"`},
		{"empty bearer", []string{"Authorization: Bearer "}, 400, `error="invalid_request"`},
		{"basic auth", []string{"Authorization: Basic dXNlcjpwYXNz"}, 400, `error="invalid_request"`},
		{"garbage token", []string{"Authorization: Bearer a.b.c"}, 401, `error="invalid_token"`},
		{"missing scope", []string{"Authorization: Bearer " + f.token("alice", nil, "write")}, 403, `error="insufficient_scope", scope="read"`},
		{"unknown key", []string{"X-Api-Key: mgk_nope"}, 401, "ApiKey"},
	}
	for _, c := range cases {
		rec, x := f.do("/", c.headers...)
		if rec.Code != c.status || !strings.Contains(rec.Header().Get("Www-Authenticate"), c.challenge) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, rec.Code, rec.Header().Get("Www-Authenticate"), c.status, c.challenge)
		}
		if f.seen != nil || x.Consumer != "" {
			t.Errorf("%s: reached the upstream as %q", c.name, x.Consumer)
		}
	}
}

func TestStageAdmitsAndRewritesHeaders(t *testing.T) {
	f := newFixture(t, config.RouteAuth{Methods: []string{"jwt", "key"},
		ClaimsToHeaders: map[string]string{"email": "X-Email", "note": "X-Note"}})
	tok := f.token("alice", map[string]any{"email": "a@example.com", "note": "evil\r\nX-Injected: 1"})
	rec, x := f.do("/", "Authorization: Bearer "+tok, "X-Meshgate-Consumer: mallory", "X-Email: forged", "X-Note: forged")
	if rec.Code != 200 || x.Consumer != "alice" || x.Tier != "free" || x.AuthMethod != "jwt" {
		t.Fatalf("%d %+v", rec.Code, x)
	}
	h := f.seen.Header
	if h.Get("X-Meshgate-Consumer") != "alice" || h.Get("X-Meshgate-Tier") != "free" || h.Get("X-Email") != "a@example.com" {
		t.Errorf("upstream headers %v", h)
	}
	if h.Get("X-Note") != "" || h.Get("Authorization") != "" {
		t.Errorf("a claim with CR LF, or the credential, reached the upstream: %v", h)
	}

	rec, x = f.do("/?api_key=x", "X-Api-Key: "+f.key)
	if rec.Code != 200 || x.Consumer != "acme" || x.Tier != "paid" || f.seen.Header.Get("X-Api-Key") != "" {
		t.Errorf("api key: %d %+v %v", rec.Code, x, f.seen)
	}
}

func TestStageAnonymousAndForwarding(t *testing.T) {
	f := newFixture(t, config.RouteAuth{Methods: []string{"key"}, Anonymous: true, ForwardCredential: true})
	rec, x := f.do("/")
	if rec.Code != 200 || x.Consumer != config.ConsumerAnonymous || x.Tier != config.TierAnonymous {
		t.Fatalf("anonymous: %d %+v", rec.Code, x)
	}
	if rec, _ := f.do("/", "X-Api-Key: mgk_wrong"); rec.Code != 401 {
		t.Errorf("a bad key on an anonymous route: %d", rec.Code)
	}
	if rec, _ := f.do("/", "X-Api-Key: "+f.key); rec.Code != 200 || f.seen.Header.Get("X-Api-Key") != f.key {
		t.Errorf("forward_credential: the key was not forwarded")
	}
}
