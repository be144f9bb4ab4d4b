package jwtauth

import (
	"testing"
	"time"
)

// discoveryDoc is an OIDC configuration naming issuer and p's JWKS.
func discoveryDoc(p *idp, issuer string) string {
	return `{"issuer":"` + issuer + `","jwks_uri":"` + p.jwksURI() + `","id_token_signing_alg_values_supported":["RS256"]}`
}

func TestDiscoveryFindsJWKS(t *testing.T) {
	for name, suffix := range map[string]string{"plain": "", "trailing slash": "/"} {
		t.Run(name, func(t *testing.T) {
			p := newIDP(t, rsaA())
			issuer := p.srv.URL + suffix
			p.set(func(p *idp) { p.discovery = discoveryDoc(p, issuer) })
			v, _ := ready(t, p, func(o *IssuerOptions) { o.Issuer, o.JWKSURI = issuer, "" })
			mustVerify(t, v, rsaA().sign(t, claims(map[string]any{"iss": issuer}), nil))
			if d, f := p.discoveries.Load(), p.fetches.Load(); d != 1 || f != 1 {
				t.Errorf("discoveries, JWKS fetches = %d, %d; want 1, 1", d, f)
			}
		})
	}
}

func TestDiscoveryRefusesOtherIssuer(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.discovery = discoveryDoc(p, "https://evil.example") })
	v, fc := start(t, p, func(o *IssuerOptions) { o.Issuer, o.JWKSURI = p.srv.URL, "" })
	eventually(t, "the discovery to fail", func() bool { return p.discoveries.Load() == 1 && fc.Pending() == 1 })
	if v.Ready() || p.fetches.Load() != 0 {
		t.Fatalf("ready %v, JWKS fetched %d times, from a document for another issuer", v.Ready(), p.fetches.Load())
	}
	wantErr(t, v, rsaA().sign(t, claims(map[string]any{"iss": p.srv.URL}), nil), ErrKeysUnavailable)
}

func TestDiscoveryRetriedAfterFailure(t *testing.T) {
	p := newIDP(t, rsaA())
	p.set(func(p *idp) { p.discovery = "not json" })
	v, fc := start(t, p, func(o *IssuerOptions) { o.Issuer, o.JWKSURI = p.srv.URL, "" })
	eventually(t, "the discovery to fail", func() bool { return p.discoveries.Load() == 1 && fc.Pending() == 1 })
	p.set(func(p *idp) { p.discovery = discoveryDoc(p, p.srv.URL) })
	fc.Advance(time.Second)
	eventually(t, "keys after rediscovery", v.Ready)
}
