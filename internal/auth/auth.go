// Package auth is the "auth" policy of a route: it finds the request's
// credential (a bearer token — a JWT checked against its issuer's keys, or an
// opaque token checked by OAuth2 introspection — or an API key), maps it to
// a consumer and the consumer's tier, and records both on the exchange for
// the tier limits, the access log, tap and the trace.
//
// What it answers by itself, from the error table (internal/exchange):
// 401 with WWW-Authenticate (RFC 6750) when there is no credential
// (unauthorized) or a bad one (invalid_token), 403 insufficient_scope, and
// 503 auth_unavailable when the identity provider needed to decide cannot be
// reached: it fails closed, never open. Every refusal is counted per route
// and reason and logged with the reason, never the credential.
//
// The upstream gets X-Meshgate-Consumer, X-Meshgate-Tier and the route's
// claims_to_headers; copies of those a client sent are always removed, and
// so is the credential unless the route forwards it.
package auth

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// Deps are what the auth policy of one configuration needs besides each
// route's section: the named definitions, the consumers and their tiers.
type Deps struct {
	Auth      config.Auth
	Consumers []config.Consumer
	Tiers     []config.Tier
	Metrics   *telemetry.Metrics
	Logger    *slog.Logger
}

// Policy returns the auth policy of a configuration.
func Policy(d Deps) policy.Builder {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	tiers := map[string]bool{}
	for _, t := range d.Tiers {
		tiers[t.Name] = true
	}
	consumerTier := map[string]string{}
	for _, c := range d.Consumers {
		t := c.Tier
		if t == "" && tiers[config.TierDefault] {
			t = config.TierDefault
		}
		consumerTier[c.Name] = t
	}
	var keys *apikey.Store // built once, for every route of the config
	var keysErr error
	keys, keysErr = keyStore(d.Consumers)
	section := func(r *config.Route) *config.RouteAuth { return r.Auth }
	return policy.Of("auth", section, func(c *config.RouteAuth, env policy.Env, next http.Handler) (http.Handler, error) {
		if keysErr != nil {
			return nil, keysErr
		}
		s := &stage{next: next, route: env.Route, cfg: c, keys: keys, metrics: d.Metrics, log: d.Logger,
			consumerTier: consumerTier, hasTier: tiers}
		if err := s.compile(&d, env); err != nil {
			return nil, err
		}
		return s, nil
	})
}

// method is one of a route's auth methods, compiled.
type method struct {
	name        string
	bearer      bearerMethod      // jwt or introspection
	jwt         bool              // bearer is a JWT verifier
	key         *apikey.Extractor // api_keys
	challenge   string            // WWW-Authenticate of an API key refused
	defaultTier string
}

type stage struct {
	next    http.Handler
	route   string
	cfg     *config.RouteAuth
	methods []method
	keys    *apikey.Store
	metrics *telemetry.Metrics
	log     *slog.Logger
	// challenge is the WWW-Authenticate of a 401: every scheme the route
	// takes.
	challenge    string
	bearerRealm  bool
	consumerTier map[string]string
	hasTier      map[string]bool
	strip        []string // headers only the edge may set upstream
}

func (s *stage) compile(d *Deps, env policy.Env) error {
	var schemes []string
	for _, name := range s.cfg.Methods {
		m := method{name: name}
		switch d.Auth.Kind(name) {
		case "jwt":
			def := findJWT(d.Auth.JWT, name)
			jm, err := openJWT(env.Scope, def, d.Logger)
			if err != nil {
				return err
			}
			m.bearer, m.jwt, m.defaultTier = jm, true, def.DefaultTier
		case "introspection":
			def := findIntrospection(d.Auth.Introspection, name)
			im, err := openIntrospection(env.Scope, def, d.Logger)
			if err != nil {
				return err
			}
			m.bearer, m.defaultTier = im, def.DefaultTier
		case "api_key":
			def := findAPIKey(d.Auth.APIKeys, name)
			m.key = &apikey.Extractor{Header: def.Header, Scheme: def.Scheme, Query: def.Query}
			m.challenge = apiKeyChallenge(def)
			schemes = append(schemes, m.challenge)
		default:
			return fmt.Errorf("auth method %q is not defined", name)
		}
		if m.bearer != nil && !s.bearerRealm {
			s.bearerRealm = true
			schemes = append([]string{`Bearer realm="meshgate"`}, schemes...)
		}
		s.methods = append(s.methods, m)
	}
	s.challenge = strings.Join(schemes, ", ")
	s.strip = []string{config.HeaderConsumer, config.HeaderTier}
	for _, h := range s.cfg.ClaimsToHeaders {
		s.strip = append(s.strip, http.CanonicalHeaderKey(h))
	}
	return nil
}

func apiKeyChallenge(def *config.APIKeyAuth) string {
	if def.Header != "" {
		return `ApiKey realm="meshgate", header="` + def.Header + `"`
	}
	return `ApiKey realm="meshgate", query="` + def.Query + `"`
}

func findJWT(defs []config.JWTAuth, name string) *config.JWTAuth {
	for i := range defs {
		if defs[i].Name == name {
			return &defs[i]
		}
	}
	return nil
}

func findIntrospection(defs []config.IntrospectionAuth, name string) *config.IntrospectionAuth {
	for i := range defs {
		if defs[i].Name == name {
			return &defs[i]
		}
	}
	return nil
}

func findAPIKey(defs []config.APIKeyAuth, name string) *config.APIKeyAuth {
	for i := range defs {
		if defs[i].Name == name {
			return &defs[i]
		}
	}
	return nil
}
