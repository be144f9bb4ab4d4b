package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// discover resolves the JWKS URI from the issuer's OIDC discovery document
// (OpenID Connect Discovery 1.0, section 4), once: the result is kept until
// a fetch from it fails.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	if v.jwksURI != "" {
		return v.jwksURI, nil
	}
	body, _, err := v.get(ctx, discoveryURL(v.opts.Issuer))
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: document is not JSON: %w", err)
	}
	// The document must name the issuer it was fetched for; otherwise a
	// misrouted or hijacked well-known URL could substitute another
	// issuer's keys.
	if doc.Issuer != v.opts.Issuer {
		return "", fmt.Errorf("discovery: document names issuer %q, want %q", doc.Issuer, v.opts.Issuer)
	}
	if err := checkURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	v.jwksURI = doc.JWKSURI
	return v.jwksURI, nil
}

// discoveryURL is where the issuer's OIDC configuration is.
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}
