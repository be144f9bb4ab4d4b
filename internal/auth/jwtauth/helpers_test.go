package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/meshgate/meshgate/internal/clock"
)

const testIssuer = "https://issuer.example"

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testKey is a signing key of the test IdP (or of an attacker).
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// RSA key generation is slow, so each RSA key is made once per test binary.
var (
	rsaA    = sync.OnceValue(func() testKey { return newRSAKey("rsa-a") })
	rsaB    = sync.OnceValue(func() testKey { return newRSAKey("rsa-b") })
	rsaEvil = sync.OnceValue(func() testKey { return newRSAKey("evil") })
	ecA     = sync.OnceValue(func() testKey { return newECKey("ec-a") })
	edA     = sync.OnceValue(func() testKey { return newEdKey("ed-a") })
	// edFixed is derived from a fixed seed, so a token it signed can be
	// committed (the fuzz corpus's valid token) and stays valid.
	edFixed  = testKey{kid: "ed-fixed", alg: jose.EdDSA, priv: ed25519.NewKeyFromSeed([]byte("jwtauth fuzz seed key, test only"))}
	allAlgs  = []string{"RS256", "ES256", "EdDSA"}
	quietLog = slog.New(slog.DiscardHandler)
)

func newRSAKey(kid string) testKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return testKey{kid: kid, alg: jose.RS256, priv: k}
}

func newECKey(kid string) testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return testKey{kid: kid, alg: jose.ES256, priv: k}
}

func newEdKey(kid string) testKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return testKey{kid: kid, alg: jose.EdDSA, priv: k}
}

// jwk is the key as the IdP publishes it.
func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// withKid returns the key under another kid (what the token header says).
func (k testKey) withKid(kid string) testKey { k.kid = kid; return k }

// withAlg returns the key signing with another algorithm.
func (k testKey) withAlg(alg jose.SignatureAlgorithm) testKey { k.alg = alg; return k }

// sign makes a compact JWS of claims, with extra protected headers.
func (k testKey) sign(t testing.TB, claims map[string]any, headers map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return k.signRaw(t, payload, headers)
}

func (k testKey) signRaw(t testing.TB, payload []byte, headers map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for h, v := range headers {
		opts.WithHeader(jose.HeaderKey(h), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claims are valid claims at t0, with overrides (a nil value deletes).
func claims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss": testIssuer, "sub": "alice", "aud": "api",
		"exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(), "scope": "read write",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// unsigned builds a token from raw header and payload JSON and a signature
// of arbitrary bytes, for tokens no signer would make.
func unsigned(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

// idp is a test identity provider serving a JWKS (and a discovery
// document) whose responses the test changes as it goes.
type idp struct {
	srv         *httptest.Server
	release     chan struct{} // closed at cleanup: frees hanging handlers
	fetches     atomic.Int64  // JWKS requests
	discoveries atomic.Int64

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
	hang         bool          // handlers wait for the client to give up (or cleanup)
	hold         chan struct{} // if set, handlers answer once it is closed
	discovery    string
}

func newIDP(t testing.TB, keys ...testKey) *idp {
	p := &idp{release: make(chan struct{}), status: http.StatusOK}
	p.serve(keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.respond(w, r, func(p *idp) (int, string) { return p.status, string(p.body) })
	})
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discoveries.Add(1)
		p.respond(w, r, func(p *idp) (int, string) { return http.StatusOK, p.discovery })
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(p.release) }) // runs before srv.Close
	return p
}

func (p *idp) respond(w http.ResponseWriter, r *http.Request, what func(*idp) (int, string)) {
	p.mu.Lock()
	hang, hold, cc := p.hang, p.hold, p.cacheControl
	status, body := what(p)
	p.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-p.release:
		}
	}
	if hang {
		select {
		case <-r.Context().Done():
		case <-p.release:
		}
		return
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// serve makes the IdP publish keys' public parts.
func (p *idp) serve(keys ...testKey) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	p.set(func(p *idp) { p.body, p.status, p.hang, p.hold = b, http.StatusOK, false, nil })
}

func (p *idp) set(f func(*idp)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *idp) jwksURI() string { return p.srv.URL + "/jwks" }

// testOptions are the options of a Verifier on p with a fake clock at t0.
func testOptions(p *idp, fc *clock.Fake) IssuerOptions {
	return IssuerOptions{
		Issuer:     testIssuer,
		JWKSURI:    p.jwksURI(),
		Audiences:  []string{"api"},
		Algorithms: allAlgs,
		Clock:      fc,
		Logger:     quietLog,
	}
}

// start makes a Verifier with testOptions changed by mod, closed at cleanup.
func start(t testing.TB, p *idp, mod func(*IssuerOptions)) (*Verifier, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(t0)
	o := testOptions(p, fc)
	if mod != nil {
		mod(&o)
	}
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v, fc
}

// ready is start, then waiting until the first fetch has succeeded and the
// refresher has armed its timer (so it is idle).
func ready(t testing.TB, p *idp, mod func(*IssuerOptions)) (*Verifier, *clock.Fake) {
	t.Helper()
	v, fc := start(t, p, mod)
	eventually(t, "verifier ready and idle", func() bool { return v.Ready() && fc.Pending() == 1 })
	return v, fc
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// mustVerify verifies token and fails the test on an error.
func mustVerify(t testing.TB, v *Verifier, token string) *Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

// wantErr verifies token and checks it fails with want, with a message
// that is want's safe reason and does not contain the token.
func wantErr(t testing.TB, v *Verifier, token string, want error) {
	t.Helper()
	c, err := v.Verify(context.Background(), token)
	if !errors.Is(err, want) {
		t.Fatalf("Verify = %v, %v; want %v", c, err, want)
	}
	if c != nil {
		t.Errorf("Verify returned claims with error %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Error() == "" {
		t.Errorf("error %#v is not a *Error with a reason", err)
	}
	if len(token) > 8 && strings.Contains(err.Error(), token) {
		t.Errorf("error contains the token")
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
