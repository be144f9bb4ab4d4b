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

// dateLine is a Date field's value (in the one-element slice a header
// holds) for the second sec, and the time it says.
type dateLine struct {
	sec int64
	v   []string
	t   time.Time
}

// date is the Date field added at now (see httpcache.EnsureDate),
// formatted once a second: its value is shared by the entries stored
// within that second, which never change their headers.
func (s *stage) date(now time.Time) *dateLine {
	sec := now.Unix()
	if d := s.dates.Load(); d != nil && d.sec == sec {
		return d
	}
	v := now.UTC().Format(http.TimeFormat)
	t, err := http.ParseTime(v) // now to the second, as FactsWith reads it
	if err != nil {
		t = now.Truncate(time.Second)
	}
	d := &dateLine{sec: sec, v: []string{v}, t: t}
	s.dates.Store(d)
	return d
}

// parsedDate is a Date value and the time it says.
type parsedDate struct {
	v string
	t time.Time
}

// dateOf is httpcache.DateOf(h), the last value parsed kept: an upstream's
// Date changes once a second, and its responses come many a second.
func (s *stage) dateOf(h http.Header) (time.Time, bool) {
	if v := h["Date"]; len(v) > 0 {
		if d := s.lastDate.Load(); d != nil && d.v == v[0] {
			return d.t, true
		}
	}
	t, ok := httpcache.DateOf(h)
	if ok {
		s.lastDate.Store(&parsedDate{v: h["Date"][0], t: t})
	}
	return t, ok
}

// factsOf is e's Facts: those it was stored with, or read from its header
// now for an entry made without them.
func factsOf(e *cachestore.Entry) httpcache.Facts {
	if e.Facts.Parsed {
		return e.Facts
	}
	return httpcache.NewFacts(e.Status, headerOf(e), e.RequestTime, e.ResponseTime)
}

// lifetime is a response's freshness lifetime (f its facts): what it
// states, else the route's ttl when it has one, else RFC 9111's heuristic.
func (s *stage) lifetime(f httpcache.Facts) time.Duration {
	if s.ttl > 0 && (f.Heuristic || !f.Explicit) {
		return s.ttl
	}
	return f.Lifetime
}

// keep is keepFor with the facts read from the response header h.
func (s *stage) keep(lifetime time.Duration, h http.Header) time.Duration {
	return s.keepFor(lifetime, httpcache.NewFacts(0, h, time.Time{}, time.Time{}))
}

// keepFor is how long a response (f its facts) stays in the store: its
// lifetime; as long again (at least minRevalidateKeep) when it has a
// validator, so that once stale it is revalidated with a conditional
// request; and the windows in which it may be served stale, its
// stale-while-revalidate and the longer of its stale-if-error (the route's
// stale_if_error when it states none) and the route's fallback.stale,
// unless it forbids serving stale. 0: not stored.
func (s *stage) keepFor(lifetime time.Duration, f httpcache.Facts) time.Duration {
	ttl := lifetime
	if f.HasValidator {
		ttl += max(lifetime, minRevalidateKeep)
	}
	d := s.staleDirectives(f)
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

// staleDirectives are a stored response's directives (f its facts), the
// route's stale_if_error filled in when the response states no
// stale-if-error.
func (s *stage) staleDirectives(f httpcache.Facts) httpcache.Directives {
	d := f.Directives()
	if !d.HasStaleIfError && s.staleIfError > 0 {
		d.HasStaleIfError, d.StaleIfError = true, s.staleIfError
	}
	return d
}

// ageOf is e's current age (f its facts).
func ageOf(e *cachestore.Entry, f httpcache.Facts, now time.Time) time.Duration {
	return httpcache.CurrentAgeFrom(f.InitialAge, e.ResponseTime, now)
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
