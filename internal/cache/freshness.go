package cache

import (
	"net/http"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/httpcache"
)

// minRevalidateKeep is the least time a response with a validator stays
// stored past its freshness, to be revalidated rather than fetched again.
const minRevalidateKeep = time.Minute

// lifetime is a response's freshness lifetime: what it states, else the
// route's ttl when it has one, else RFC 9111's heuristic.
func (s *stage) lifetime(status int, h http.Header) time.Duration {
	life, heuristic := httpcache.FreshnessLifetime(httpcache.ResponseInfo{Status: status, Header: h}, true)
	if s.ttl > 0 && (heuristic || !explicitFreshness(h)) {
		return s.ttl
	}
	return life
}

func explicitFreshness(h http.Header) bool {
	d := httpcache.ResponseDirectives(h)
	return d.HasMaxAge || d.HasSMaxAge || len(h.Values("Expires")) > 0
}

// keep is how long a response stays in the store: its lifetime; as long
// again (at least minRevalidateKeep) when it has a validator, so that once
// stale it is revalidated with a conditional request; and the windows in
// which it may be served stale, its stale-while-revalidate and the longer
// of its stale-if-error (the route's stale_if_error when it states none)
// and the route's fallback.stale, unless it forbids serving stale. 0: not
// stored.
func (s *stage) keep(lifetime time.Duration, h http.Header) time.Duration {
	ttl := lifetime
	if hasValidator(h) {
		ttl += max(lifetime, minRevalidateKeep)
	}
	d := s.staleDirectives(h)
	if !d.NoCache && !d.MustRevalidate && !d.ProxyRevalidate && !d.HasSMaxAge {
		if d.HasStaleWhileRevalidate {
			ttl += min(d.StaleWhileRevalidate, httpcache.MaxDelta)
		}
		if d.HasStaleIfError || s.fallbackStale > 0 {
			ttl += min(max(d.StaleIfError, s.fallbackStale), httpcache.MaxDelta)
		}
	}
	return min(ttl, httpcache.MaxDelta)
}

// staleDirectives are a stored response's directives, the route's
// stale_if_error filled in when the response states no stale-if-error.
func (s *stage) staleDirectives(h http.Header) httpcache.Directives {
	d := httpcache.ResponseDirectives(h)
	if !d.HasStaleIfError && s.staleIfError > 0 {
		d.HasStaleIfError, d.StaleIfError = true, s.staleIfError
	}
	return d
}

func (s *stage) ageOf(e *cachestore.Entry, now time.Time) time.Duration {
	return httpcache.CurrentAge(httpcache.ResponseInfo{Status: e.Status, Header: e.Header}, e.RequestTime, e.ResponseTime, now)
}

// standIn is when a stored response answers in place of an upstream
// failure.
type standIn int

const (
	never standIn = iota
	// onFallback: for the failures the route's fallback names (it stands
	// aside, exchange.FallbackStale), within fallback.stale.
	onFallback
	// onError: for those and for every failure stale-if-error covers
	// (httpcache.StaleIfErrorStatus), within its window.
	onError
)

// mayStandIn tells whether a stored response of this age and lifetime
// (resp its staleDirectives) may answer in place of an upstream failure,
// given the request's directives: within its stale-if-error window, or
// within the route's fallback.stale, which widens that window for the
// failures the route's fallback names. Both obey the directives that
// forbid serving stale (httpcache.ServeStale).
func (s *stage) mayStandIn(resp, req httpcache.Directives, age, lifetime time.Duration) standIn {
	if httpcache.ServeStale(resp, req, age, lifetime, httpcache.StaleError) {
		return onError
	}
	if s.fallbackStale <= 0 {
		return never
	}
	resp.HasStaleIfError, resp.StaleIfError = true, max(resp.StaleIfError, s.fallbackStale)
	if httpcache.ServeStale(resp, req, age, lifetime, httpcache.StaleError) {
		return onFallback
	}
	return never
}
