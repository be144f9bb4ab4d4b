package httpcache

import (
	"net/http"
	"time"
)

// ResponseInfo is the part of a stored response that freshness and age
// depend on.
type ResponseInfo struct {
	Status int
	Header http.Header
}

// Heuristic freshness (RFC 9111 §4.2.2): a lifetime of the time since
// Last-Modified divided by HeuristicDivisor (10%, the fraction §4.2.2 cites
// as typical), but at most HeuristicCap, so that a resource untouched for
// years is not kept for months on a guess.
const (
	HeuristicDivisor = 10
	HeuristicCap     = 24 * time.Hour
)

// heuristicallyCacheable are the status codes defined as heuristically
// cacheable: RFC 9110 §15.1 lists 200, 203, 204, 206, 300, 301, 308, 404,
// 405, 410, 414 and 501, and RFC 7725 §3 makes 451 cacheable by default.
var heuristicallyCacheable = map[int]bool{
	200: true, 203: true, 204: true, 206: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 451: true, 501: true,
}

// FreshnessLifetime is the response's freshness lifetime (RFC 9111 §4.2.1),
// for a shared cache when shared is set: s-maxage (shared caches only), else
// max-age, else Expires minus Date, else a heuristic (§4.2.2), reported by
// the second result. An Expires that is not a valid HTTP-date ("0" among
// others) means already expired (§5.3), and so does one without a valid
// Date: the cache is to add Date on receipt (see EnsureDate). The heuristic
// applies only when there is no explicit expiration, and only to a status
// that is heuristically cacheable or a response marked public (§4.2.2);
// without a Last-Modified and a Date it has nothing to go on and the
// lifetime is 0, not heuristic. Lifetimes are clamped to [0, MaxDelta].
func FreshnessLifetime(resp ResponseInfo, shared bool) (lifetime time.Duration, heuristic bool) {
	date, dateOK := dateOf(resp.Header)
	return freshnessLifetime(ResponseDirectives(resp.Header), resp.Status, resp.Header, date, dateOK, shared)
}

// freshnessLifetime is FreshnessLifetime with the response's directives
// and Date (dateOK: valid) parsed.
func freshnessLifetime(d Directives, status int, h http.Header, date time.Time, dateOK bool, shared bool) (lifetime time.Duration, heuristic bool) {
	if shared && d.HasSMaxAge {
		return d.SMaxAge, false
	}
	if d.HasMaxAge {
		// §5.3: max-age overrides Expires.
		return d.MaxAge, false
	}
	if v, ok := firstValue(h.Values("Expires")); ok {
		expires, err := http.ParseTime(v)
		if err != nil || !dateOK {
			return 0, false
		}
		return clampDelta(expires.Sub(date)), false
	}
	if !heuristicallyCacheable[status] && !d.Public {
		return 0, false
	}
	v, ok := firstValue(h.Values("Last-Modified"))
	if !ok {
		return 0, false
	}
	lastModified, err := http.ParseTime(v)
	if err != nil || !dateOK {
		return 0, false
	}
	// A Last-Modified after Date is nonsense; clampDelta makes it 0.
	since := clampDelta(date.Sub(lastModified))
	return min(since/HeuristicDivisor, HeuristicCap), true
}

// CurrentAge is the response's current age (RFC 9111 §4.2.3), from its Date
// and Age fields, the times the cache sent the request (requestTime) and
// received the response (responseTime), and now:
//
//	apparent_age = max(0, response_time - date_value)
//	corrected_age_value = age_value + (response_time - request_time)
//	corrected_initial_age = max(apparent_age, corrected_age_value)
//	current_age = corrected_initial_age + (now - response_time)
//
// A missing or invalid Date counts as responseTime (RFC 9110 §6.6.1), and a
// missing or invalid Age as 0 (§4.2.3: "or 0, if not available"). Negative
// intervals from clock disorder count as 0, and the result is clamped to
// MaxDelta (§1.2.2).
func CurrentAge(resp ResponseInfo, requestTime, responseTime, now time.Time) time.Duration {
	date, ok := dateOf(resp.Header)
	return CurrentAgeFrom(initialAge(resp.Header, date, ok, requestTime, responseTime), responseTime, now)
}

// initialAge is corrected_initial_age (see CurrentAge), with the
// response's Date parsed (dateOK: valid).
func initialAge(h http.Header, date time.Time, dateOK bool, requestTime, responseTime time.Time) time.Duration {
	if !dateOK {
		date = responseTime
	}
	apparentAge := clampDelta(responseTime.Sub(date))
	responseDelay := clampDelta(responseTime.Sub(requestTime))
	correctedAgeValue := ageOf(h) + responseDelay
	// Each term is at most MaxDelta, so the sum cannot overflow.
	return clampDelta(max(apparentAge, correctedAgeValue))
}

// EnsureDate gives h a Date of received when it has none, or an invalid one.
// RFC 9110 §6.6.1 requires it of a recipient with a clock that caches the
// response (and allows replacing an invalid one), and FreshnessLifetime
// needs Date to compute Expires lifetimes and heuristics.
func EnsureDate(h http.Header, received time.Time) {
	if _, ok := dateOf(h); !ok {
		h.Set("Date", received.UTC().Format(http.TimeFormat))
	}
}

// DateOf is h's Date, its first field line parsed as an HTTP-date; ok is
// false when there is none or it is invalid (EnsureDate replaces it then).
func DateOf(h http.Header) (date time.Time, ok bool) {
	return dateOf(h)
}

// dateOf parses the first Date field line.
func dateOf(h http.Header) (time.Time, bool) {
	v, ok := firstValue(h.Values("Date"))
	if !ok {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

// ageOf parses the first Age field line as delta-seconds (RFC 9111 §5.1);
// anything else counts as no Age at all.
func ageOf(h http.Header) time.Duration {
	v, _ := firstValue(h.Values("Age"))
	age, _ := parseDelta(v)
	return age
}
