package introspect

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Options configures an Introspector. Only Endpoint, ClientID and
// ClientSecret are required.
type Options struct {
	// Endpoint is the server's introspection URL (http or https).
	Endpoint string
	// ClientID and ClientSecret authenticate this gateway to the endpoint
	// (client_secret_basic).
	ClientID, ClientSecret string
	// Audiences, when set, are the accepted audiences: a token's "aud"
	// must contain one of them.
	Audiences []string
	// CacheMax caps how long an active answer is cached (default 5m); it
	// never outlives the token's exp.
	CacheMax time.Duration
	// InactiveTTL is how long an inactive answer is cached (default 10s).
	InactiveTTL time.Duration
	// Timeout bounds each call to the endpoint (default 2s).
	Timeout time.Duration
	// MaxEntries bounds the cache (default 10,000).
	MaxEntries int
	// HTTPClient makes the calls. The default follows no redirects, so
	// that the client secret goes to Endpoint only.
	HTTPClient *http.Client
	// Clock tells the time for cache expiry (default time.Now).
	Clock func() time.Time
	// Logger receives failures (throttled) and, at debug level, answers.
	Logger *slog.Logger
}

const (
	defaultCacheMax    = 5 * time.Minute
	defaultInactiveTTL = 10 * time.Second
	defaultTimeout     = 2 * time.Second
	defaultMaxEntries  = 10_000
)

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if err := checkEndpoint(o.Endpoint); err != nil {
		return o, err
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		return o, errors.New("introspect: ClientID and ClientSecret are required")
	}
	if o.CacheMax < 0 || o.InactiveTTL < 0 || o.Timeout < 0 || o.MaxEntries < 0 {
		return o, errors.New("introspect: negative CacheMax, InactiveTTL, Timeout or MaxEntries")
	}
	o.CacheMax = orDefault(o.CacheMax, defaultCacheMax)
	o.InactiveTTL = orDefault(o.InactiveTTL, defaultInactiveTTL)
	o.Timeout = orDefault(o.Timeout, defaultTimeout)
	o.MaxEntries = orDefault(o.MaxEntries, defaultMaxEntries)
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// checkEndpoint refuses URLs with user info: the client credentials belong
// in ClientID and ClientSecret, and would otherwise end up in logs.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("introspect: Endpoint: %w", err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return errors.New("introspect: Endpoint must be an absolute http or https URL")
	case u.User != nil:
		return errors.New("introspect: Endpoint must not contain credentials; set ClientID and ClientSecret")
	}
	return nil
}

// defaultClient has its own transport, so that Close can close its idle
// connections, and follows no redirect, which would resend the secret.
func defaultClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
