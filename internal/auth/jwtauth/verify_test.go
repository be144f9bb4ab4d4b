package jwtauth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestAcceptsRS256ES256EdDSA(t *testing.T) {
	for _, k := range []testKey{rsaA(), ecA(), edA()} {
		t.Run(string(k.alg), func(t *testing.T) {
			p := newIDP(t, rsaA(), ecA(), edA())
			v, _ := ready(t, p, nil)
			c := mustVerify(t, v, k.sign(t, claims(nil), nil))
			if c.Subject != "alice" || c.Issuer != testIssuer || !slices.Equal(c.Audience, []string{"api"}) {
				t.Errorf("claims = %+v", c)
			}
			if !c.Expiry.Equal(t0.Add(time.Hour)) {
				t.Errorf("Expiry = %v, want %v", c.Expiry, t0.Add(time.Hour))
			}
			if !slices.Equal(c.Scopes, []string{"read", "write"}) {
				t.Errorf("Scopes = %q", c.Scopes)
			}
		})
	}
}

func TestScopesFromScopeAndScp(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, nil)
	for name, tc := range map[string]struct {
		over map[string]any
		want []string
	}{
		"scope string": {map[string]any{"scope": "a b  c"}, []string{"a", "b", "c"}},
		"scp array":    {map[string]any{"scope": nil, "scp": []any{"x", "y"}}, []string{"x", "y"}},
		"scp string":   {map[string]any{"scope": nil, "scp": "x y"}, []string{"x", "y"}},
		"both":         {map[string]any{"scope": "a", "scp": []any{"x", 7}}, []string{"a", "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := mustVerify(t, v, ecA().sign(t, claims(tc.over), nil))
			if !slices.Equal(c.Scopes, tc.want) {
				t.Errorf("Scopes = %q, want %q", c.Scopes, tc.want)
			}
			if !c.HasScopes(tc.want[:1]) || c.HasScopes([]string{"admin"}) {
				t.Errorf("HasScopes wrong for %q", c.Scopes)
			}
		})
	}
}

func TestRejectsAlgNone(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	payload := `{"iss":"` + testIssuer + `","aud":"api","sub":"root","exp":9999999999}`
	for _, alg := range []string{"none", "None", "NONE", ""} {
		wantErr(t, v, unsigned(`{"alg":"`+alg+`","kid":"rsa-a"}`, payload, nil), ErrAlgorithm)
	}
}

// TestRejectsHS256WithPublicKeyAsSecret is the alg-confusion attack: the
// attacker HMACs the token with the issuer's public key as the secret,
// hoping the verifier feeds its RSA key's bytes to HMAC.
func TestRejectsHS256WithPublicKeyAsSecret(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	der, err := x509.MarshalPKIXPublicKey(rsaA().priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{der, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		x509.MarshalPKCS1PublicKey(rsaA().priv.Public().(*rsa.PublicKey))}
	for _, secret := range secrets {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256,
			Key: jose.JSONWebKey{Key: secret, KeyID: "rsa-a"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign([]byte(`{"iss":"` + testIssuer + `","aud":"api","exp":9999999999}`))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		wantErr(t, v, tok, ErrAlgorithm)
	}
}

func TestRejectsAlgNotPinned(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, func(o *IssuerOptions) { o.Algorithms = []string{"RS256"} })
	mustVerify(t, v, rsaA().sign(t, claims(nil), nil))
	for _, alg := range []jose.SignatureAlgorithm{jose.RS384, jose.PS256} {
		wantErr(t, v, rsaA().withAlg(alg).sign(t, claims(nil), nil), ErrAlgorithm)
	}
}

func TestRejectsUnknownKid(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	before := p.fetches.Load()
	wantErr(t, v, rsaEvil().sign(t, claims(nil), nil), ErrUnknownKey)
	if got := p.fetches.Load() - before; got != 1 {
		t.Errorf("unknown kid caused %d fetches, want 1", got)
	}
}

func TestRejectsKidTricks(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	for _, kid := range []string{"../../etc/passwd", "' OR 1=1 --", "rsa-a\x00", "rsa-a ", "RSA-A",
		"%2e%2e%2f", "/dev/zero", strings.Repeat("k", 8000), "\u202erev", "{{.}}"} {
		wantErr(t, v, rsaEvil().withKid(kid).sign(t, claims(nil), nil), ErrUnknownKey)
	}
}

// TestIgnoresTokenSuppliedKeys: keys the token names or carries (jwk, jku,
// x5u) are attacker-controlled; they are neither used nor fetched.
func TestIgnoresTokenSuppliedKeys(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	evil := newIDP(t, rsaEvil()) // serves the attacker's key as a JWKS
	headers := map[string]any{"jku": evil.jwksURI(), "x5u": evil.srv.URL + "/cert.pem", "jwk": rsaEvil().jwk()}

	// kid of the issuer's key, signed by the attacker's advertised key.
	wantErr(t, v, rsaEvil().withKid("rsa-a").sign(t, claims(nil), headers), ErrSignature)
	// kid of the attacker's key only.
	wantErr(t, v, rsaEvil().sign(t, claims(nil), headers), ErrUnknownKey)
	// no kid: only the issuer's keys are tried.
	delete(headers, "jwk")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaEvil().priv},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"jku": evil.jwksURI()}})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"iss":"` + testIssuer + `","aud":"api","exp":9999999999}`))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	wantErr(t, v, tok, ErrSignature)

	if n := evil.fetches.Load(); n != 0 {
		t.Errorf("the jku server got %d requests", n)
	}
}

func TestRejectsTamperedPayload(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	good := strings.Split(rsaA().sign(t, claims(nil), nil), ".")
	other := strings.Split(rsaA().sign(t, claims(map[string]any{"sub": "root"}), nil), ".")
	wantErr(t, v, good[0]+"."+other[1]+"."+good[2], ErrSignature)
}

func TestRejectsExpired(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, func(o *IssuerOptions) { o.ClockSkew = 30 * time.Second })
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"exp": t0.Add(-31 * time.Second).Unix()}), nil), ErrExpired)
	// Within the skew, still accepted.
	mustVerify(t, v, ecA().sign(t, claims(map[string]any{"exp": t0.Add(-29 * time.Second).Unix()}), nil))
}

func TestRejectsMissingExpiry(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, nil)
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"exp": nil}), nil), ErrClaim)
}

func TestRejectsNotYetValid(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, func(o *IssuerOptions) { o.ClockSkew = 30 * time.Second })
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"nbf": t0.Add(31 * time.Second).Unix()}), nil), ErrNotYetValid)
	mustVerify(t, v, ecA().sign(t, claims(map[string]any{"nbf": t0.Add(29 * time.Second).Unix()}), nil))
}

func TestRejectsIssuedInFuture(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, func(o *IssuerOptions) { o.ClockSkew = 30 * time.Second })
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"iat": t0.Add(5 * time.Minute).Unix()}), nil), ErrNotYetValid)
}

func TestRejectsWrongIssuer(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, nil)
	for _, iss := range []any{"https://evil.example", testIssuer + "/", "", 42} {
		tok := ecA().sign(t, claims(map[string]any{"iss": iss}), nil)
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Errorf("iss %v accepted", iss)
		}
	}
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"iss": "https://evil.example"}), nil), ErrIssuer)
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"iss": nil}), nil), ErrIssuer)
}

func TestRejectsWrongAudience(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, func(o *IssuerOptions) { o.Audiences = []string{"api", "api2"} })
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"aud": "other"}), nil), ErrAudience)
	wantErr(t, v, ecA().sign(t, claims(map[string]any{"aud": nil}), nil), ErrAudience)
	mustVerify(t, v, ecA().sign(t, claims(map[string]any{"aud": []string{"x", "api2"}}), nil))
}

func TestRequiredClaims(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, func(o *IssuerOptions) {
		o.RequiredClaims = map[string]string{"tenant": "acme", "email_verified": "true", "azp": ""}
	})
	ok := map[string]any{"tenant": "acme", "email_verified": true, "azp": "client"}
	mustVerify(t, v, ecA().sign(t, claims(ok), nil))
	for name, over := range map[string]map[string]any{
		"missing":        {"tenant": nil},
		"wrong value":    {"tenant": "other"},
		"wrong bool":     {"email_verified": false},
		"missing any":    {"azp": nil},
		"object for str": {"tenant": map[string]any{"acme": true}},
	} {
		c := claims(ok)
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		t.Run(name, func(t *testing.T) { wantErr(t, v, ecA().sign(t, c, nil), ErrClaim) })
	}
}

func TestRejectsMalformed(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	hdr := `{"alg":"RS256","kid":"rsa-a"}`
	for name, tok := range map[string]string{
		"empty":           "",
		"one segment":     "abc",
		"two segments":    "abc.def",
		"four segments":   unsigned(hdr, "{}", []byte("s")) + ".x",
		"bad base64":      "!!!.@@@.###",
		"padded base64":   "eyJhbGciOiJSUzI1NiJ9==.e30.c2ln",
		"header not JSON": unsigned(`{"alg":`, "{}", []byte("s")),
		"header array":    unsigned(`["RS256"]`, "{}", []byte("s")),
		"kid not string":  unsigned(`{"alg":"RS256","kid":7}`, "{}", []byte("s")),
		"JWS JSON":        `{"payload":"e30","protected":"` + strings.Split(unsigned(hdr, "{}", nil), ".")[0] + `","signature":""}`,
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, v, tok, ErrMalformed) })
	}
	// Signed, but the payload is not a JSON object.
	for _, payload := range []string{"not json", "[1,2]", "null", `{"exp":"soon"}`, `{"aud":[1]}`} {
		wantErr(t, v, rsaA().signRaw(t, []byte(payload), nil), ErrMalformed)
	}
}

func TestRejectsTooLarge(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	good := rsaA().sign(t, claims(nil), nil)
	wantErr(t, v, good+strings.Repeat("A", MaxTokenSize-len(good)+1), ErrTooLarge)
	huge := strings.Repeat("A", 1<<20) + "." + good
	wantErr(t, v, huge, ErrTooLarge)
	// Refused before any parsing: nothing is allocated.
	if n := testing.AllocsPerRun(10, func() { _, _ = v.Verify(context.Background(), huge) }); n != 0 {
		t.Errorf("rejecting a 1 MB token allocated %v times", n)
	}
}

func TestKidlessTokenTriesFittingKeys(t *testing.T) {
	p := newIDP(t, rsaB(), ecA(), rsaA())
	v, _ := ready(t, p, nil)
	c := mustVerify(t, v, rsaA().withKid("").sign(t, claims(nil), nil))
	if c.Subject != "alice" {
		t.Errorf("claims = %+v", c)
	}
	wantErr(t, v, rsaEvil().withKid("").sign(t, claims(nil), nil), ErrSignature)
}

// TestErrorsAndLogsCarryNoCredential: neither an error nor a log line
// quotes a rejected token or a part of it.
func TestErrorsAndLogsCarryNoCredential(t *testing.T) {
	logs := &lockedBuffer{}
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, func(o *IssuerOptions) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	bad := []string{
		rsaEvil().withKid("secret-kid-xyz").sign(t, claims(nil), nil),
		unsigned(`{"alg":"RS256","kid":"rsa-a"}`, `{"secret":"hunter2-hunter2"}`, []byte("sig")),
		unsigned(`{"alg":"none"}`, `{"secret":"hunter2-hunter2"}`, nil),
		unsigned(`{"alg":"RS256","kid":`, `x`, nil),
	}
	for _, tok := range bad {
		_, err := v.Verify(context.Background(), tok)
		if err == nil {
			t.Fatal("bad token accepted")
		}
		for _, part := range append(strings.Split(tok, "."), "secret-kid-xyz", "hunter2") {
			if len(part) >= 6 && (strings.Contains(err.Error(), part) || strings.Contains(logs.String(), part)) {
				t.Errorf("error %q or logs quote %q", err, part)
			}
		}
	}
}
