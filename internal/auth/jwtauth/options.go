package jwtauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/meshgate/meshgate/internal/clock"
)

// IssuerOptions configure the Verifier of one issuer.
type IssuerOptions struct {
	// Issuer is the exact expected "iss".
	Issuer string
	// JWKSURI is where the issuer's key set is. Empty: found by OIDC
	// discovery at Issuer (without a trailing "/") +
	// "/.well-known/openid-configuration", whose "issuer" must equal Issuer.
	JWKSURI string
	// Audiences: a token's "aud" must contain at least one. Empty: not checked.
	Audiences []string
	// Algorithms are the signing algorithms accepted, pinned per issuer and
	// never taken from the token. Required; HS* (shared secrets) and "none"
	// are refused.
	Algorithms []string
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration
	// RequiredClaims: each claim must exist and, if the value is non-empty,
	// equal it (compared as Claims.String does).
	RequiredClaims map[string]string
	// HTTPClient fetches discovery and JWKS documents. Nil: a client of the
	// Verifier's own with a 5s timeout, whose connections Close releases.
	HTTPClient *http.Client
	Refresh    RefreshOptions
	Cache      CacheOptions
	// Clock times refreshes, backoff and token validity; nil: the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// RefreshOptions bound how often the key set is fetched. Zero fields take
// the defaults in brackets.
type RefreshOptions struct {
	// MinInterval [1m] and MaxInterval [1h] clamp the Cache-Control max-age
	// of a fetched set; a set without max-age is refetched after MaxInterval.
	MinInterval, MaxInterval time.Duration
	// UnknownKidInterval [10s]: at most one refetch for a token with an
	// unknown kid per interval, so made-up kids cannot hammer the IdP.
	UnknownKidInterval time.Duration
	// InitialBackoff [1s] after a failed fetch, doubling up to MaxBackoff [1m].
	InitialBackoff, MaxBackoff time.Duration
	// MaxWait [2s] bounds how long Verify waits for a fetch it needs (no
	// set yet, unknown kid), besides the request's context. Wall-clock time.
	MaxWait time.Duration
}

// CacheOptions size the cache of verified tokens.
type CacheOptions struct {
	// MaxEntries [10,000]; negative disables the cache.
	MaxEntries int
	// MaxTTL [5m] bounds how long a verified token is trusted without
	// checking its signature again (it is never trusted past its exp).
	MaxTTL time.Duration
}

// MaxTokenSize bounds a token's length; longer ones are refused before any
// parsing, so a huge header cannot cost decoding time or memory.
const MaxTokenSize = 16 << 10

// allowedAlgorithms are the asymmetric signature algorithms this package
// accepts for pinning. HS* is left out on purpose: a shared secret would
// have to live in the gateway, and HMAC keys are what alg-confusion attacks
// forge with.
var allowedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// withDefaults validates o and fills in the defaults.
func (o IssuerOptions) withDefaults() (IssuerOptions, []jose.SignatureAlgorithm, error) {
	if err := o.validate(); err != nil {
		return o, nil, err
	}
	algs := make([]jose.SignatureAlgorithm, len(o.Algorithms))
	for i, a := range o.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	r := &o.Refresh
	setDefault(&r.MinInterval, time.Minute)
	setDefault(&r.MaxInterval, time.Hour)
	setDefault(&r.UnknownKidInterval, 10*time.Second)
	setDefault(&r.InitialBackoff, time.Second)
	setDefault(&r.MaxBackoff, time.Minute)
	setDefault(&r.MaxWait, 2*time.Second)
	r.MaxInterval = max(r.MaxInterval, r.MinInterval)
	r.MaxBackoff = max(r.MaxBackoff, r.InitialBackoff)
	if o.Cache.MaxEntries == 0 {
		o.Cache.MaxEntries = 10_000
	}
	setDefault(&o.Cache.MaxTTL, 5*time.Minute)
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("issuer", o.Issuer)
	return o, algs, nil
}

func (o IssuerOptions) validate() error {
	if o.Issuer == "" {
		return errors.New("jwtauth: Issuer is required")
	}
	if o.JWKSURI == "" {
		if err := checkURL(o.Issuer); err != nil {
			return fmt.Errorf("jwtauth: Issuer for discovery: %w", err)
		}
	} else if err := checkURL(o.JWKSURI); err != nil {
		return fmt.Errorf("jwtauth: JWKSURI: %w", err)
	}
	if len(o.Algorithms) == 0 {
		return errors.New("jwtauth: Algorithms is required")
	}
	for _, a := range o.Algorithms {
		if !allowedAlgorithms[a] {
			return fmt.Errorf("jwtauth: algorithm %q not allowed (asymmetric only: RS*, PS*, ES*, EdDSA)", a)
		}
	}
	if o.ClockSkew < 0 {
		return errors.New("jwtauth: ClockSkew is negative")
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
