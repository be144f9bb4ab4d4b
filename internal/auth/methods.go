package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/auth/introspect"
	"github.com/meshgate/meshgate/internal/auth/jwtauth"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
)

// identity is what a method learned of the caller.
type identity struct {
	consumer string
	scopes   []string
	claim    func(name string) (string, bool) // nil: no claims (API keys)
}

// bearerMethod checks a bearer token (JWT or introspection).
type bearerMethod interface {
	check(ctx context.Context, token string) (*identity, error)
}

// jwtMethod checks JWTs of one issuer.
type jwtMethod struct {
	v     *jwtauth.Verifier
	claim string
}

func (m *jwtMethod) check(ctx context.Context, token string) (*identity, error) {
	c, err := m.v.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	consumer, _ := c.String(m.claim)
	return &identity{consumer: consumer, scopes: c.Scopes, claim: c.String}, nil
}

// introspectMethod checks opaque tokens at an RFC 7662 endpoint.
type introspectMethod struct {
	in    *introspect.Introspector
	claim string
}

func (m *introspectMethod) check(ctx context.Context, token string) (*identity, error) {
	r, err := m.in.Introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	claim := func(name string) (string, bool) { return jwtauth.ClaimString(r.Raw, name) }
	consumer, ok := claim(m.claim)
	if !ok || consumer == "" {
		consumer = r.ClientID
	}
	return &identity{consumer: consumer, scopes: r.Scopes, claim: claim}, nil
}

// openJWT returns the verifier of def, shared with earlier snapshots while
// def is unchanged (its keys stay fetched across reloads).
func openJWT(sc *policy.Scope, def *config.JWTAuth, log *slog.Logger) (*jwtMethod, error) {
	key, err := resourceKey("jwt", def)
	if err != nil {
		return nil, err
	}
	v, err := policy.Acquire(sc, key, func() (closerFunc[*jwtauth.Verifier], error) {
		v, err := jwtauth.NewVerifier(jwtauth.IssuerOptions{
			Issuer: def.Issuer, JWKSURI: def.JWKSURI, Audiences: def.Audiences, Algorithms: def.Algorithms,
			ClockSkew: def.ClockSkew.D(), RequiredClaims: def.RequiredClaims,
			Refresh: jwtauth.RefreshOptions{MinInterval: def.Refresh.MinInterval.D(), MaxInterval: def.Refresh.MaxInterval.D(),
				UnknownKidInterval: def.Refresh.UnknownKIDInterval.D()},
			Logger: log.With("auth", def.Name),
		})
		return closerFunc[*jwtauth.Verifier]{v: v, close: func() { v.Close() }, kind: "jwt", name: def.Name}, err
	})
	if err != nil {
		return nil, fmt.Errorf("auth %q: %w", def.Name, err)
	}
	return &jwtMethod{v: v.v, claim: def.ConsumerClaim}, nil
}

// openIntrospection returns the introspector of def, shared like openJWT's
// verifiers (its cache survives reloads).
func openIntrospection(sc *policy.Scope, def *config.IntrospectionAuth, log *slog.Logger) (*introspectMethod, error) {
	key, err := resourceKey("introspection", def)
	if err != nil {
		return nil, err
	}
	in, err := policy.Acquire(sc, key, func() (closerFunc[*introspect.Introspector], error) {
		in, err := introspect.New(introspect.Options{
			Endpoint: def.Endpoint, ClientID: def.ClientID, ClientSecret: def.Secret, Audiences: def.Audiences,
			CacheMax: def.CacheMax.D(), InactiveTTL: def.InactiveTTL.D(), Timeout: def.Timeout.D(),
			Logger: log.With("auth", def.Name),
		})
		return closerFunc[*introspect.Introspector]{v: in, close: func() { in.Close() }, kind: "introspection", name: def.Name}, err
	})
	if err != nil {
		return nil, fmt.Errorf("auth %q: %w", def.Name, err)
	}
	return &introspectMethod{in: in.v, claim: def.ConsumerClaim}, nil
}

// closerFunc adapts a resource with a Close of its own signature; kind
// and name (the auth definition's) label its token cache's metrics.
type closerFunc[T any] struct {
	v          T
	close      func()
	kind, name string
}

func (c closerFunc[T]) Close() error { c.close(); return nil }

// TokenCache is what a method's cache of verified tokens holds: it is keyed
// by client-supplied tokens, so its bound and its evictions are watched.
type TokenCache struct {
	Kind, Name string // "jwt" or "introspection", the auth definition
	Entries    int
	Evictions  uint64
	// Source identifies the cache (its verifier or introspector), so that
	// a reader can carry a closed one's evictions on.
	Source any
}

// TokenCacheOf reports the token cache of a shared auth resource (one that
// policy.Shared holds), ok false for any other resource.
func TokenCacheOf(r io.Closer) (TokenCache, bool) {
	type cacheStats interface{ CacheStats() (int, uint64) }
	var st cacheStats
	var kind, name string
	switch c := r.(type) {
	case closerFunc[*jwtauth.Verifier]:
		st, kind, name = c.v, c.kind, c.name
	case closerFunc[*introspect.Introspector]:
		st, kind, name = c.v, c.kind, c.name
	default:
		return TokenCache{}, false
	}
	n, ev := st.CacheStats()
	return TokenCache{Kind: kind, Name: name, Entries: n, Evictions: ev, Source: st}, true
}

// resourceKey names a shared resource by its kind and whole definition.
func resourceKey(kind string, def any) (string, error) {
	b, err := json.Marshal(def)
	if err != nil {
		return "", err
	}
	return kind + ":" + string(b), nil
}

// keyStore builds the API key store of the consumers' hashed keys.
func keyStore(consumers []config.Consumer) (*apikey.Store, error) {
	var entries []apikey.Entry
	for _, c := range consumers {
		for _, h := range c.APIKeys {
			sum, err := apikey.ParseHash(h)
			if err != nil {
				return nil, fmt.Errorf("consumer %q: %w", c.Name, err)
			}
			entries = append(entries, apikey.Entry{Hash: sum, Consumer: c.Name, ID: apikey.IDOf(sum)})
		}
	}
	return apikey.NewStore(entries)
}

// temporary tells a failure of the IdP (answer 503, fail closed) from a bad
// credential (401).
func temporary(err error) bool {
	if errors.Is(err, introspect.ErrUnavailable) || errors.Is(err, jwtauth.ErrKeysUnavailable) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// reasonOf is a client-safe reason for a rejected credential.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, introspect.ErrInactive):
		return "token not active"
	case errors.Is(err, introspect.ErrAudience):
		return "wrong audience"
	default:
		return jwtauth.Reason(err)
	}
}
