package httpcache

import "time"

// StaleReason is why the cache considers serving a stale response.
type StaleReason int

const (
	// StaleRevalidating: the cache would serve the stale response while it
	// revalidates it in the background (RFC 5861 §3,
	// stale-while-revalidate).
	StaleRevalidating StaleReason = iota + 1
	// StaleError: forwarding failed, or the upstream answered with a status
	// for which StaleIfErrorStatus is true (RFC 5861 §4, stale-if-error).
	StaleError
	// StaleRequested: only the request may allow it (its max-stale), as
	// for a request with only-if-cached.
	StaleRequested
)

// UsableFresh reports whether a stored response of this age and freshness
// lifetime may be reused without validation as far as the request is
// concerned (RFC 9111 §4, §5.2.1): it is fresh (lifetime > age, §4.2), the
// request has no no-cache (RequestDirectives folds in Pragma), its age is
// within the request's max-age, and at least the request's min-fresh of
// freshness remains. The response's own no-cache is RequiresValidation's
// question.
func UsableFresh(req Directives, age, lifetime time.Duration) bool {
	switch {
	case req.NoCache, lifetime <= age:
		return false
	case req.HasMaxAge && age > req.MaxAge:
		return false
	case req.HasMinFresh && lifetime-age < req.MinFresh:
		return false
	}
	return true
}

// RequiresValidation reports whether the stored response must be validated
// before each reuse, fresh or not: it has no-cache (RFC 9111 §5.2.2.4).
// The qualified form, no-cache="field", would allow reusing the response
// without those fields; like most caches (§5.2.2.4 notes it), this one
// treats it as the unqualified form.
func RequiresValidation(resp Directives) bool {
	return resp.NoCache
}

// ServeStale reports whether a shared cache may serve a stored response that
// is stale (or that UsableFresh refused) without validating it first, given
// the response's and the request's directives, its current age and its
// freshness lifetime (staleness is age minus lifetime). In order:
//
//  1. The response forbids it with no-cache, must-revalidate,
//     proxy-revalidate or s-maxage (s-maxage implies proxy-revalidate,
//     §5.2.2.10): §4.2.4 says a cache must not serve stale then. This
//     overrides the "regardless of other freshness information" of RFC
//     5861 §4 and the client's max-stale (§5.2.2.2).
//  2. The request forbids it with no-cache, a max-age the age exceeds, or
//     a min-fresh the remaining freshness falls short of (§5.2.1).
//  3. The request's max-stale allows it, for any reason, if the staleness
//     is within it (or it has no value); a staleness beyond it is refused.
//  4. For StaleError, a request stale-if-error (RFC 5861 §4 defines it on
//     requests too) decides with its own window.
//  5. A request max-age without max-stale means the client does not want a
//     stale response (§5.2.1.1), so a response's permission is not enough.
//  6. The response's stale-while-revalidate (for StaleRevalidating) or
//     stale-if-error (for StaleError) allows it within its window.
//
// Windows include their bound: RFC 5861 serves "up to" the given seconds.
// Serving stale because the cache is disconnected or by operator
// configuration (§4.2.4) is the caller's decision.
func ServeStale(resp, req Directives, age, lifetime time.Duration, reason StaleReason) bool {
	if resp.NoCache || resp.MustRevalidate || resp.ProxyRevalidate || resp.HasSMaxAge {
		return false
	}
	switch {
	case req.NoCache:
		return false
	case req.HasMaxAge && age > req.MaxAge:
		return false
	case req.HasMinFresh && lifetime-age < req.MinFresh:
		return false
	}
	staleness := max(age-lifetime, 0)
	if req.HasMaxStale {
		return req.MaxStaleAny || staleness <= req.MaxStale
	}
	if reason == StaleError && req.HasStaleIfError {
		return staleness <= req.StaleIfError
	}
	if req.HasMaxAge {
		return false
	}
	switch reason {
	case StaleRevalidating:
		return resp.HasStaleWhileRevalidate && staleness <= resp.StaleWhileRevalidate
	case StaleError:
		return resp.HasStaleIfError && staleness <= resp.StaleIfError
	}
	return false
}

// StaleIfErrorStatus reports whether an upstream status counts as an error
// for stale-if-error: RFC 5861 §4 names 500, 502, 503 and 504.
func StaleIfErrorStatus(status int) bool {
	switch status {
	case 500, 502, 503, 504:
		return true
	}
	return false
}
