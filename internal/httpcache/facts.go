package httpcache

import (
	"net/http"
	"time"
)

// Facts are what the reuse of a stored response depends on, read from its
// header once, when it is stored, rather than on every request it
// answers: its freshness lifetime, its initial age (RFC 9111 §4.2.3) and
// the response directives that decide reuse and serving stale. A Facts is
// small and holds no pointers, so that a store full of them costs the
// garbage collector nothing to mark beyond the entries themselves.
//
// The zero Facts is not Parsed: a caller holding one must compute the
// facts from the header instead (NewFacts).
type Facts struct {
	// Lifetime and Heuristic are FreshnessLifetime's results for a shared
	// cache.
	Lifetime time.Duration
	// InitialAge is the corrected_initial_age of RFC 9111 §4.2.3: the
	// response's age when it was received (see CurrentAgeFrom).
	InitialAge time.Duration

	// StaleWhileRevalidate and StaleIfError are the response's, with
	// their presence flags (see Directives).
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration

	Parsed    bool // made by NewFacts
	Heuristic bool
	// Explicit: the response states its freshness (max-age, s-maxage or
	// an Expires field, valid or not).
	Explicit bool
	// HasValidator: the response has an ETag or a Last-Modified field.
	HasValidator bool

	HasStaleWhileRevalidate bool
	HasStaleIfError         bool
	NoCache                 bool
	MustRevalidate          bool
	ProxyRevalidate         bool
	HasSMaxAge              bool
	Public                  bool
}

// NewFacts reads the facts of a response of status with header h, whose
// request was sent at requestTime and which was received at responseTime.
func NewFacts(status int, h http.Header, requestTime, responseTime time.Time) Facts {
	date, dateOK := DateOf(h)
	return FactsWith(ResponseDirectives(h), status, h, date, dateOK, requestTime, responseTime)
}

// FactsWith is NewFacts with the response's directives and Date already
// parsed: d is ResponseDirectives(h), and date and dateOK are DateOf(h).
func FactsWith(d Directives, status int, h http.Header, date time.Time, dateOK bool, requestTime, responseTime time.Time) Facts {
	life, heuristic := freshnessLifetime(d, status, h, date, dateOK, true)
	return Facts{
		Lifetime:                life,
		InitialAge:              initialAge(h, date, dateOK, requestTime, responseTime),
		StaleWhileRevalidate:    d.StaleWhileRevalidate,
		StaleIfError:            d.StaleIfError,
		Parsed:                  true,
		Heuristic:               heuristic,
		Explicit:                d.HasMaxAge || d.HasSMaxAge || len(h.Values("Expires")) > 0,
		HasValidator:            h.Get("ETag") != "" || h.Get("Last-Modified") != "",
		HasStaleWhileRevalidate: d.HasStaleWhileRevalidate,
		HasStaleIfError:         d.HasStaleIfError,
		NoCache:                 d.NoCache,
		MustRevalidate:          d.MustRevalidate,
		ProxyRevalidate:         d.ProxyRevalidate,
		HasSMaxAge:              d.HasSMaxAge,
		Public:                  d.Public,
	}
}

// Directives returns the response directives the facts keep, as a
// Directives for RequiresValidation and ServeStale (the others are zero).
func (f Facts) Directives() Directives {
	return Directives{
		StaleWhileRevalidate: f.StaleWhileRevalidate, HasStaleWhileRevalidate: f.HasStaleWhileRevalidate,
		StaleIfError: f.StaleIfError, HasStaleIfError: f.HasStaleIfError,
		NoCache: f.NoCache, MustRevalidate: f.MustRevalidate, ProxyRevalidate: f.ProxyRevalidate,
		HasSMaxAge: f.HasSMaxAge, Public: f.Public,
	}
}

// CurrentAgeFrom is CurrentAge from the response's initial age (Facts) and
// the time it was received.
func CurrentAgeFrom(initialAge time.Duration, responseTime, now time.Time) time.Duration {
	residentTime := clampDelta(now.Sub(responseTime))
	// Each term is at most MaxDelta, so the sum cannot overflow.
	return clampDelta(initialAge + residentTime)
}
