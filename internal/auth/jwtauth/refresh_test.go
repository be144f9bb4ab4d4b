package jwtauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/meshgate/meshgate/internal/clock"
)

// expectFetchAfter checks that the idle refresher's next fetch is due in
// exactly d: advancing the clock by d-1ms fires nothing, the last 1ms
// fires one fetch, after which the refresher is idle again. (Advance fires
// due timers synchronously, so the refresher's single timer is still
// pending right after Advance exactly when it did not fire; had it fired
// and been re-armed already, the fetch count would show it.)
func expectFetchAfter(t *testing.T, fc *clock.Fake, p *idp, d time.Duration) {
	t.Helper()
	n := p.fetches.Load()
	fc.Advance(d - time.Millisecond)
	if fc.Pending() != 1 || p.fetches.Load() != n {
		t.Fatalf("fetched before %v", d)
	}
	fc.Advance(time.Millisecond)
	eventually(t, "a fetch at "+d.String(), func() bool { return p.fetches.Load() == n+1 && fc.Pending() == 1 })
}

func TestStartDoesNotWaitForIdP(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.hang = true })
	v, _ := start(t, p, nil) // returns although the IdP does not answer
	if v.Ready() {
		t.Fatal("ready without keys")
	}
	eventually(t, "the initial fetch", func() bool { return p.fetches.Load() == 1 })
	p.serve(rsaA())
	v.Close() // a hanging fetch does not hold up Close either
}

func TestInitialFetchIsBackground(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := start(t, p, nil)
	eventually(t, "keys fetched without any Verify", v.Ready)
	mustVerify(t, v, rsaA().sign(t, claims(nil), nil))
}

func TestBackoffWhileFailing(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.status = http.StatusInternalServerError })
	v, fc := start(t, p, func(o *IssuerOptions) { o.Refresh.MaxBackoff = 8 * time.Second })
	eventually(t, "the failed initial fetch", func() bool { return p.fetches.Load() == 1 && fc.Pending() == 1 })
	for _, d := range []time.Duration{1, 2, 4, 8, 8} {
		expectFetchAfter(t, fc, p, d*time.Second)
	}
	if v.Ready() {
		t.Fatal("ready after only failures")
	}
	// Recovery: the next retry succeeds, and the schedule is the set's
	// lifetime again, not the backoff.
	p.serve(rsaA())
	expectFetchAfter(t, fc, p, 8*time.Second)
	if !v.Ready() {
		t.Fatal("not ready after a successful fetch")
	}
	expectFetchAfter(t, fc, p, time.Hour)
}

func TestRefreshFollowsMaxAgeClamped(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.cacheControl = "public, max-age=120" })
	_, fc := ready(t, p, nil)
	for _, step := range []struct {
		cacheControl string // served by the fetch at the previous step's time
		next         time.Duration
	}{
		{"max-age=5", 120 * time.Second}, // the initial fetch's max-age=120
		{"max-age=99999", time.Minute},   // 5s, clamped up to MinInterval
		{"", time.Hour},                  // clamped down to MaxInterval
		{"no-store", time.Hour},          // no max-age: MaxInterval
		{"max-age=600", time.Minute},     // no-store: MinInterval
		{"", 10 * time.Minute},
	} {
		p.set(func(p *idp) { p.cacheControl = step.cacheControl })
		expectFetchAfter(t, fc, p, step.next)
	}
}

func TestRefreshReplacesKeysAndPurgesCache(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.cacheControl = "max-age=60" }) // refresh well within the cache's MaxTTL
	v, fc := ready(t, p, nil)
	tokA := rsaA().sign(t, claims(map[string]any{"exp": t0.Add(48 * time.Hour).Unix()}), nil)
	tokB := rsaB().sign(t, claims(map[string]any{"exp": t0.Add(48 * time.Hour).Unix()}), nil)
	mustVerify(t, v, tokA) // now cached
	p.serve(rsaB())
	expectFetchAfter(t, fc, p, time.Minute)
	mustVerify(t, v, tokB)
	// A's key is gone, and so is its token from the cache.
	wantErr(t, v, tokA, ErrUnknownKey)
}

// TestFailedRefreshKeepsKeys: whatever a refresh gets back that is not a
// usable key set, the keys already there keep working.
func TestFailedRefreshKeepsKeys(t *testing.T) {
	for name, breakIt := range map[string]func(p *idp){
		"500":           func(p *idp) { p.status = http.StatusInternalServerError },
		"404":           func(p *idp) { p.status = http.StatusNotFound },
		"garbage":       func(p *idp) { p.body = []byte("<html>oops</html>") },
		"empty set":     func(p *idp) { p.body = []byte(`{"keys":[]}`) },
		"no usable key": func(p *idp) { p.body = noUsableKeys(t) },
		"too large":     func(p *idp) { p.body = make([]byte, maxDocBytes+1) },
		"timeout":       func(p *idp) { p.hang = true },
	} {
		t.Run(name, func(t *testing.T) {
			p := newIDP(t, rsaA())
			v, fc := ready(t, p, func(o *IssuerOptions) {
				o.Cache.MaxEntries = -1 // every Verify uses the keys
				o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
			})
			tok := rsaA().sign(t, claims(map[string]any{"exp": t0.Add(48 * time.Hour).Unix()}), nil)
			mustVerify(t, v, tok)
			p.set(breakIt)
			expectFetchAfter(t, fc, p, time.Hour)
			if !v.Ready() {
				t.Fatal("lost the key set")
			}
			mustVerify(t, v, tok)
			expectFetchAfter(t, fc, p, time.Second) // and retries on the backoff
		})
	}
}

// noUsableKeys is a set with keys, none of which may verify a token: a
// symmetric key, an encryption key, a 1024-bit RSA key, an unknown kty.
func noUsableKeys(t *testing.T) []byte {
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: []byte("secretsecretsecretsecretsecret!!"), KeyID: "hmac"},
		{Key: rsaA().priv.Public(), KeyID: "enc", Use: "enc"},
		{Key: short.Public(), KeyID: "short"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return append(b[:len(b)-2], []byte(`,{"kty":"XYZ","kid":"odd"}]}`)...)
}

func TestUnknownKidFetchesRotatedKey(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	p.serve(rsaA(), rsaB()) // the IdP rotates in a new key
	before := p.fetches.Load()
	mustVerify(t, v, rsaB().sign(t, claims(nil), nil))
	if got := p.fetches.Load() - before; got != 1 {
		t.Errorf("fetches for the new kid = %d, want 1", got)
	}
}

// TestUnknownKidFloodBounded: a thousand tokens with made-up kids, at
// once, cause at most one fetch beyond the initial one; the next one is
// allowed only after UnknownKidInterval.
func TestUnknownKidFloodBounded(t *testing.T) {
	p := newIDP(t, rsaA())
	v, fc := ready(t, p, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 1000 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), unsigned(`{"alg":"RS256","kid":"`+randomKid()+`"}`, "{}", []byte("sig")))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify = %v, want ErrUnknownKey", err)
		}
	}
	if n := p.fetches.Load(); n > 2 {
		t.Fatalf("1,000 unknown kids caused %d fetches in all, want <= 2", n)
	}
	n := p.fetches.Load()
	fc.Advance(9 * time.Second)
	wantErr(t, v, unsigned(`{"alg":"RS256","kid":"x"}`, "{}", []byte("sig")), ErrUnknownKey)
	fc.Advance(time.Second)
	wantErr(t, v, unsigned(`{"alg":"RS256","kid":"y"}`, "{}", []byte("sig")), ErrUnknownKey)
	if got := p.fetches.Load() - n; got != 1 {
		t.Errorf("fetches over the next UnknownKidInterval = %d, want 1", got)
	}
}

func randomKid() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestConcurrentUnknownKidShareOneFetch: callers needing the same fetch
// wait for one, and all get its result.
func TestConcurrentUnknownKidShareOneFetch(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	release := make(chan struct{})
	p.serve(rsaA(), rsaB())
	p.set(func(p *idp) { p.hold = release })
	tok := rsaB().sign(t, claims(nil), nil)
	before := p.fetches.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { _, err := v.Verify(context.Background(), tok); errs <- err })
	}
	eventually(t, "the fetch to start", func() bool { return p.fetches.Load() == before+1 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := p.fetches.Load() - before; got != 1 {
		t.Errorf("20 concurrent callers caused %d fetches, want 1", got)
	}
}

func TestKeysUnavailableWhenIdPDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connections to it are refused
	fc := clock.NewFake(t0)
	o := testOptions(&idp{srv: dead}, fc)
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tok := rsaA().sign(t, claims(nil), nil)
	for range 3 {
		begin := time.Now()
		wantErr(t, v, tok, ErrKeysUnavailable)
		if d := time.Since(begin); d > time.Second {
			t.Errorf("Verify took %v with the IdP down", d)
		}
	}
}

func TestSlowIdPBoundsTheWait(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.hang = true })
	v, _ := start(t, p, func(o *IssuerOptions) { o.Refresh.MaxWait = 100 * time.Millisecond })
	tok := rsaA().sign(t, claims(nil), nil)
	begin := time.Now()
	wantErr(t, v, tok, ErrKeysUnavailable)
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Verify waited %v for a hanging IdP, bound 100ms", d)
	}
	// The request's context bounds it too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	begin = time.Now()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Verify = %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Verify waited %v past its context", d)
	}
}

func TestCacheMaxAge(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                      time.Hour,
		"max-age=300":           300 * time.Second,
		"public, MAX-AGE=60":    time.Minute,
		`max-age="90"`:          90 * time.Second,
		"no-cache":              0,
		"max-age=-1":            time.Hour,
		"max-age=abc":           time.Hour,
		"max-age=9999999999999": 365 * 24 * time.Hour,
	} {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if got := cacheMaxAge(h, time.Hour); got != want {
			t.Errorf("cacheMaxAge(%q) = %v, want %v", cc, got, want)
		}
	}
}

// TestEarlyVerifyLeavesUnknownKidBudget: a request that arrives before the
// first key set (the edge just started) waits for that fetch, and must not
// use up the refetch allowed for an unknown kid: a key rotated in soon
// after is still fetched at once. (It did: the early request counted as
// the unknown-kid demand, and a rotation within UnknownKidInterval got 401
// "unknown signing key" — TestAuthJWTFromHydra, now and then.)
func TestEarlyVerifyLeavesUnknownKidBudget(t *testing.T) {
	p := newIDP(t, rsaA())
	release := make(chan struct{})
	p.set(func(p *idp) { p.hold = release })
	v, _ := start(t, p, nil)
	eventually(t, "the initial fetch to start", func() bool { return p.fetches.Load() == 1 })
	done := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), rsaA().sign(t, claims(nil), nil)); done <- err }()
	eventually(t, "Verify to find no set and ask for a fetch", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.pending != nil
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("early Verify: %v", err)
	}
	eventually(t, "ready", v.Ready)
	p.serve(rsaA(), rsaB()) // the IdP rotates in a new key, at once
	mustVerify(t, v, rsaB().sign(t, claims(nil), nil))
}
