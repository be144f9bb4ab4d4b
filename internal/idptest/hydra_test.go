package idptest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHydra checks the harness against the real server: JWT access tokens
// (header, claims, JWKS), opaque ones (introspection, revocation) and key
// rotation.
func TestHydra(t *testing.T) {
	h := StartHydra(t)

	if !strings.HasSuffix(h.Issuer(), "/") || h.Issuer() != h.PublicURL()+"/" {
		t.Fatalf("Issuer() = %q, PublicURL() = %q", h.Issuer(), h.PublicURL())
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
		Token   string `json:"token_endpoint"`
	}
	getJSON(t, h, h.PublicURL()+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != h.Issuer() || disc.JWKSURI != h.JWKSURL() || disc.Token != h.TokenURL() {
		t.Errorf("discovery = %+v, want issuer %s, jwks_uri %s, token_endpoint %s", disc, h.Issuer(), h.JWKSURL(), h.TokenURL())
	}

	scopes, audience := []string{"orders.read", "orders.write"}, []string{"orders", "billing"}

	// A JWT access token.
	jc := h.CreateClient(t, ClientOptions{Scopes: scopes, Audience: audience, AccessTokenStrategy: "jwt", TokenLifespan: 5 * time.Minute})
	before := time.Now().Truncate(time.Second)
	tok := h.Token(t, jc, scopes, audience)
	hdr, claims := decodeJWT(t, tok)
	t.Logf("JWT header %v, claims %v", hdr, claims)
	if hdr["alg"] != "RS256" {
		t.Errorf("alg = %v, want RS256", hdr["alg"])
	}
	kid, _ := hdr["kid"].(string)
	if kid == "" || !slices.Contains(jwksKIDs(t, h), kid) {
		t.Errorf("kid %q not in the JWKS %v", kid, jwksKIDs(t, h))
	}
	if claims["iss"] != h.Issuer() {
		t.Errorf("iss = %v, want %s", claims["iss"], h.Issuer())
	}
	if got := strs(claims["scp"]); !slices.Equal(got, scopes) {
		t.Errorf("scp = %v, want %v", claims["scp"], scopes)
	}
	if got := strs(claims["aud"]); !slices.Equal(got, audience) {
		t.Errorf("aud = %v, want %v", claims["aud"], audience)
	}
	if claims["client_id"] != jc.ID || claims["sub"] != jc.ID {
		t.Errorf("client_id = %v, sub = %v, want %s", claims["client_id"], claims["sub"], jc.ID)
	}
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Sub(before) > 5*time.Minute+5*time.Second ||
		time.Unix(int64(exp), 0).Sub(before) < 5*time.Minute-5*time.Second {
		t.Errorf("exp = %v, want 5 minutes after %v (the client's lifespan)", claims["exp"], before)
	}
	if ji := h.Introspect(t, tok); ji["active"] != true {
		t.Errorf("the JWT introspects %v, want active", ji)
	}
	// A subset of the allowed scopes and audience.
	_, sub := decodeJWT(t, h.Token(t, jc, scopes[:1], audience[1:]))
	if !slices.Equal(strs(sub["scp"]), scopes[:1]) || !slices.Equal(strs(sub["aud"]), audience[1:]) {
		t.Errorf("subset token: scp %v aud %v", sub["scp"], sub["aud"])
	}

	// An opaque access token: not a JWT, introspection knows it until revoked.
	oc := h.CreateClient(t, ClientOptions{Scopes: scopes, Audience: audience, AccessTokenStrategy: "opaque"})
	otok := h.Token(t, oc, scopes, audience[:1])
	if strings.Count(otok, ".") == 2 && strings.HasPrefix(otok, "ey") {
		t.Errorf("opaque token looks like a JWT: %s", otok)
	}
	in := h.Introspect(t, otok)
	t.Logf("introspection of the opaque token: %v", in)
	if in["active"] != true || in["scope"] != strings.Join(scopes, " ") || in["client_id"] != oc.ID {
		t.Errorf("introspection = %v, want active with scope %q and client_id %s", in, strings.Join(scopes, " "), oc.ID)
	}
	if got := strs(in["aud"]); !slices.Equal(got, audience[:1]) {
		t.Errorf("introspected aud = %v, want %v", in["aud"], audience[:1])
	}
	h.Revoke(t, oc, otok)
	if in := h.Introspect(t, otok); in["active"] != false {
		t.Errorf("after Revoke, introspection = %v, want inactive", in)
	}

	// Key rotation: new tokens carry the new kid, which the JWKS lists
	// beside the old one.
	newKID := h.RotateKeys(t)
	hdr2, _ := decodeJWT(t, h.Token(t, jc, scopes, audience))
	kid2, _ := hdr2["kid"].(string)
	if kid2 == kid || kid2 != newKID {
		t.Errorf("after RotateKeys the kid is %q (before %q, RotateKeys said %q)", kid2, kid, newKID)
	}
	if kids := jwksKIDs(t, h); !slices.Contains(kids, kid2) || !slices.Contains(kids, kid) {
		t.Errorf("JWKS %v should hold both %s and %s", kids, kid, kid2)
	}
	// And again: the newest key wins each time.
	newKID3 := h.RotateKeys(t)
	if hdr3, _ := decodeJWT(t, h.Token(t, jc, scopes, audience)); hdr3["kid"] != newKID3 {
		t.Errorf("after a second RotateKeys the kid is %v, want %s", hdr3["kid"], newKID3)
	}
}

// decodeJWT returns a compact JWS's header and payload, unverified.
func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (%d parts): %s", len(parts), tok)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT part %q: %v", s, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("JWT part %s: %v", b, err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func jwksKIDs(t *testing.T, h *Hydra) []string {
	t.Helper()
	var set jwks
	getJSON(t, h, h.JWKSURL(), &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

func getJSON(t *testing.T, h *Hydra, u string, out any) {
	t.Helper()
	h.do(t, http.MethodGet, u, "", nil, nil, http.StatusOK, out)
}

// strs turns a JSON array of strings (as decoded into any) into []string.
func strs(v any) []string {
	a, ok := v.([]any)
	if !ok {
		return nil
	}
	var s []string
	for _, e := range a {
		str, _ := e.(string)
		s = append(s, str)
	}
	return s
}
