package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/auth/introspect"
	"github.com/meshgate/meshgate/internal/auth/jwtauth"
	"github.com/meshgate/meshgate/internal/config"
)

// The IdP's credentials pass the edge's own verifiers, its wrong ones do
// not, and the five edge configs load with the route's auth and the tier
// the suite assumes.
func TestAuthIdPAndConfigs(t *testing.T) {
	idp, err := startAuthIdP()
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	c, err := idp.credentials()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for _, tc := range []struct{ alg, jwks, good, bad string }{
		{"RS256", "/jwks/rs256", c.rs256, c.rs256Bad},
		{"ES256", "/jwks/es256", c.es256, c.es256Bad},
	} {
		v, err := jwtauth.NewVerifier(jwtauth.IssuerOptions{Issuer: idp.url, JWKSURI: idp.url + tc.jwks,
			Audiences: []string{authAudience}, Algorithms: []string{tc.alg}})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := v.Verify(ctx, tc.good)
		if err != nil || cl.Subject != authConsumer {
			t.Errorf("%s: good token: %v, %+v", tc.alg, err, cl)
		}
		if _, err := v.Verify(ctx, tc.bad); !errors.Is(err, jwtauth.ErrSignature) {
			t.Errorf("%s: bad token: got %v, want a signature error", tc.alg, err)
		}
		v.Close()
	}

	in, err := introspect.New(introspect.Options{Endpoint: idp.url + "/introspect", ClientID: authClientID,
		ClientSecret: authClientSecret, Audiences: []string{authAudience}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if res, err := in.Introspect(ctx, c.opaque); err != nil || res.Subject != authConsumer {
		t.Errorf("active token: %v, %+v", err, res)
	}
	if _, err := in.Introspect(ctx, c.opaqueBad); !errors.Is(err, introspect.ErrInactive) {
		t.Errorf("unknown token: got %v, want inactive", err)
	}
	if n := idp.introspections.Load(); n != 2 {
		t.Errorf("introspection calls = %d, want 2", n)
	}
	if idp.badIntrospectAuth.Load() != 0 {
		t.Error("the introspector's client credentials were refused")
	}
	if apikey.HashOf(c.apiKey) != c.apiKeyHash || apikey.HashOf(c.apiKeyBad) == c.apiKeyHash {
		t.Error("API key hashes")
	}

	specs := authSpecs(idp.url, c)
	if len(specs) != 5 || specs[0].target.key != "plain" {
		t.Fatalf("specs: want plain and four auth edges")
	}
	for _, s := range specs {
		y := authEdgeConfig("127.0.0.1:18000", "127.0.0.1:18001", "127.0.0.1:18002", s.defs, s.routeAuth)
		cfg, err := config.Parse(s.target.name+".yaml", []byte(y))
		if err != nil {
			t.Errorf("%s: %v\n%s", s.target.name, err, y)
			continue
		}
		ra := cfg.Routes[0].Auth
		if s.target.key == "plain" {
			if ra != nil || len(cfg.Tiers) != 0 {
				t.Errorf("plain: route has auth or tiers")
			}
			continue
		}
		if ra == nil || !ra.TierLimitsOn() || len(ra.Methods) != 1 || cfg.Auth.Kind(ra.Methods[0]) == "" {
			t.Errorf("%s: route auth %+v", s.target.name, ra)
		}
		if tier := cfg.Tier(config.TierDefault); tier == nil || tier.Limits[0].Requests != authTierLimit {
			t.Errorf("%s: tiers %+v", s.target.name, cfg.Tiers)
		}
		if s.target.header == "" || s.target.bad == "" || !strings.Contains(s.target.header, ": ") {
			t.Errorf("%s: credential headers %q / %q", s.target.name, s.target.header, s.target.bad)
		}
	}
}

// Ratios are the medians of the pairs; req/s and CPU the medians of the
// runs; an edge never measured has no keys.
func TestAuthJSON(t *testing.T) {
	r := &authRun{problemLog: problemLog{scope: "auth"}, introspectCalls: 3}
	r.targets = []*authTarget{
		{key: "plain", loadEdge: loadEdge{rps: []float64{100, 200, 300, 400}, cpuUS: []float64{10, 10, 10, 11}}},
		{key: "jwt", loadEdge: loadEdge{rps: []float64{90, 240, 170}, cpuUS: []float64{12, 12, 13}, ratios: []float64{0.9, 0.8, 0.85}}},
		{key: "apikey"},
	}
	data, err := json.Marshal(authJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"rps_plain": 250.0, "rps_jwt": 170.0, "ratio_jwt": 0.85, "cpu_us_per_req_plain": 10.0,
		"cpu_us_per_req_jwt": 12.0, "introspect_calls": 3.0, "jwks_fetches": 0.0, "rounds": 3.0, "target": authRatioTarget}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"rps_apikey", "ratio_apikey", "ratio_plain", "error"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s present: %s", k, data)
		}
	}
}
