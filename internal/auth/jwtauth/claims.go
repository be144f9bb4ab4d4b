package jwtauth

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims are a verified token's claims. A Claims may be shared by
// concurrent callers (the cache hands out the same one): do not modify it.
type Claims struct {
	Subject  string
	Issuer   string
	Audience []string
	Expiry   time.Time
	// Scopes joins the space-separated "scope" claim (RFC 8693) and the
	// "scp" claim (an array, or a space-separated string), as IdPs use
	// either.
	Scopes []string
	// Raw is every claim as decoded from JSON (numbers are float64).
	Raw map[string]any
}

// HasScopes reports whether every one of required is among c.Scopes.
func (c *Claims) HasScopes(required []string) bool {
	for _, s := range required {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// String returns the claim name as a string: a string as is, a number
// formatted without exponent where possible, a bool as "true"/"false".
// Other types (objects, arrays, null) and absent claims give false.
func (c *Claims) String(name string) (string, bool) { return ClaimString(c.Raw, name) }

// ClaimString is Claims.String on any decoded JSON object of claims (an
// introspection answer, say).
func ClaimString(raw map[string]any, name string) (string, bool) {
	switch v := raw[name].(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// checkClaims decodes a verified payload and checks it against the options
// at now. It decodes with go-jose's JSON package, which (unlike
// encoding/json) matches keys case-sensitively, so "ISS" cannot pass for
// "iss"; both decodings use it, so the checked fields and Raw agree.
func (v *Verifier) checkClaims(payload []byte, now time.Time) (*Claims, error) {
	var std jwt.Claims
	var raw map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &raw) != nil || raw == nil {
		return nil, ErrMalformed
	}
	if err := v.checkRegistered(&std, now); err != nil {
		return nil, err
	}
	c := &Claims{
		Subject: std.Subject, Issuer: std.Issuer, Audience: std.Audience,
		Expiry: std.Expiry.Time(), Scopes: scopes(raw), Raw: raw,
	}
	if !c.hasRequired(v.opts.RequiredClaims) {
		return nil, ErrClaim
	}
	return c, nil
}

// hasRequired: each claim is present and, where a value is given, equals it.
func (c *Claims) hasRequired(required map[string]string) bool {
	for name, want := range required {
		if _, ok := c.Raw[name]; !ok {
			return false
		}
		if got, _ := c.String(name); want != "" && got != want {
			return false
		}
	}
	return true
}

// checkRegistered checks iss, aud and the times; exp is required, since an
// access token without one would be valid forever.
func (v *Verifier) checkRegistered(std *jwt.Claims, now time.Time) error {
	skew := v.opts.ClockSkew
	switch {
	case std.Issuer != v.opts.Issuer:
		return ErrIssuer
	case len(v.opts.Audiences) > 0 && !slices.ContainsFunc(v.opts.Audiences, std.Audience.Contains):
		return ErrAudience
	case std.Expiry == nil:
		return errNoExpiry
	case now.Add(-skew).After(std.Expiry.Time()):
		return ErrExpired
	case std.NotBefore != nil && now.Add(skew).Before(std.NotBefore.Time()):
		return ErrNotYetValid
	case std.IssuedAt != nil && now.Add(skew).Before(std.IssuedAt.Time()):
		return errIssuedInFuture
	}
	return nil
}

// scopes collects "scope" (space-separated) and "scp" (array of strings,
// or a space-separated string); non-string array elements are ignored.
func scopes(raw map[string]any) []string {
	var out []string
	if s, ok := raw["scope"].(string); ok {
		out = append(out, strings.Fields(s)...)
	}
	switch scp := raw["scp"].(type) {
	case string:
		out = append(out, strings.Fields(scp)...)
	case []any:
		for _, e := range scp {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
