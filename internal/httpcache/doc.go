// Package httpcache is the decision logic of a shared HTTP cache (RFC 9111,
// with RFC 5861's stale-while-revalidate and stale-if-error, RFC 9110's
// conditional requests and RFC 9211's Cache-Status): what may be stored,
// how long it stays fresh and how old it is, whether a stored response may
// answer a request fresh, stale or only after validation, how a client's
// conditional request is answered from the cache, how a 304 freshens a
// stored response, which URIs an unsafe request invalidates, and how Vary
// selects among stored responses. It is pure: functions of header fields,
// status codes and times the caller supplies. It stores nothing, reads no
// clock and does no I/O; the edge's cache stage does those.
//
// # A shared cache
//
// Every decision is a shared cache's: s-maxage counts, private responses
// are never stored, a request with Authorization is answered from the cache
// only when the response allowed it (§3.5), and s-maxage, must-revalidate
// and proxy-revalidate all forbid serving stale. The qualified forms
// no-cache="field" and private="field" are treated as their unqualified
// forms (RFC 9111 notes that is common practice), which errs on the side
// of revalidating or not storing. Only GET and HEAD responses are stored,
// not 206 or 304; a stored HEAD response answers only HEAD requests.
// Responses with Set-Cookie are not stored unless StoreOptions says so, and
// a 304 never adds a cookie to a stored response.
//
// # Parsing
//
// Nothing here fails or panics on malformed input; it is read in the most
// restrictive sensible way. Cache-Control names are case-insensitive and
// arguments may be tokens or quoted-strings. A repeated directive's first
// occurrence wins, and so does a repeated Date, Expires, Age or
// Last-Modified field's first line. An invalid max-age or s-maxage means
// stale (present with 0), an invalid min-fresh demands MaxDelta, an invalid
// max-stale allows no staleness, and an invalid stale-while-revalidate or
// stale-if-error is ignored. An Expires that is not an HTTP-date means
// already expired. Every delta-seconds value and computed age or lifetime
// is clamped to 2^31 seconds, MaxDelta (§1.2.2).
//
// # Freshness
//
// Lifetimes come from s-maxage, max-age, then Expires minus Date. Without
// them, a heuristically cacheable status (RFC 9110 §15.1, and 451) or a
// public response gets 10% of the time since Last-Modified, capped at
// HeuristicCap (24 hours). Ages follow §4.2.3 exactly, with negative
// intervals from clock disorder counted as 0.
//
// # Vary
//
// VaryKey normalizes the selecting fields so that requests differing only
// in whitespace, letter case, line splitting or Accept-Encoding preference
// order share an entry; Accept-Encoding keeps the set of acceptable
// codings, not their weights. Its keys length-prefix every name and value,
// so distinct requests never collide.
//
// # Keys and invalidation
//
// RequestTarget normalizes a URI's path and query (percent-encodings, dot
// segments, empty path) for the primary key, and InvalidationTargets returns
// the same form for the target, Location and Content-Location of an unsafe
// request's response, same origin only.
package httpcache
