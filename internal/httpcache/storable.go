package httpcache

import (
	"net/http"
	"strconv"
)

// StoreOptions are the operator's choices on top of RFC 9111 §3.
type StoreOptions struct {
	// StoreSetCookie lets responses carrying Set-Cookie be stored. By
	// default they are not: HTTP allows storing them, but a shared cache
	// would hand one client's cookie to every other.
	StoreSetCookie bool

	// MaxBodyBytes refuses responses whose Content-Length exceeds it; 0
	// means no limit. A response without Content-Length passes here, and
	// the caller must enforce the limit while reading the body.
	MaxBodyBytes int64
}

// Reasons Storable gives for refusing a response. They are stable, short
// and few, for use as metric labels.
const (
	ReasonMethod        = "method"         // not GET or HEAD
	ReasonStatus        = "status"         // status code not understood
	ReasonNoStore       = "no-store"       // no-store in the request or the response
	ReasonPrivate       = "private"        // private, with or without field names
	ReasonAuthorization = "authorization"  // §3.5: request had Authorization
	ReasonVaryStar      = "vary-star"      // Vary: * never matches (§4.1)
	ReasonSetCookie     = "set-cookie"     // Set-Cookie, unless StoreSetCookie
	ReasonTooLarge      = "too-large"      // Content-Length over MaxBodyBytes
	ReasonLength        = "content-length" // Content-Length unparseable, with MaxBodyBytes set
	ReasonNoFreshness   = "no-freshness"   // no explicit freshness, not heuristically cacheable
)

// understoodStatus are the status codes this cache understands (RFC 9111
// §3): the final codes of RFC 9110 §15, plus 429 (RFC 6585) and 451 (RFC
// 7725), whose semantics place no requirement on a cache beyond the
// general ones. RFC 9110 §15 forbids caching a response with an
// unrecognized status. Left out on purpose:
//   - 206, because this cache does not implement storing and combining
//     partial content (§3.3, §3.4);
//   - 304, which updates a stored response (§4.3.4) but is not one;
//   - 305, deprecated (RFC 9110 §15.4.6);
//   - 407, whose challenge is for the proxy that forwarded the request, not
//     for the clients of this cache (§3.1 keeps proxy fields out as well);
//   - 416, which answers a Range that is not part of the cache key.
//
// Since must-understand (§5.2.2.3) only lets a cache that understands the
// status code override no-store, and this set is exactly what Storable
// accepts, must-understand never needs a refusal reason of its own.
var understoodStatus = map[int]bool{
	200: true, 201: true, 202: true, 203: true, 204: true, 205: true,
	300: true, 301: true, 302: true, 303: true, 307: true, 308: true,
	400: true, 401: true, 402: true, 403: true, 404: true, 405: true, 406: true,
	408: true, 409: true, 410: true, 411: true, 412: true, 413: true, 414: true,
	415: true, 417: true, 421: true, 422: true, 426: true, 429: true, 451: true,
	500: true, 501: true, 502: true, 503: true, 504: true, 505: true,
}

// Storable decides whether a shared cache may store the response to a
// request (RFC 9111 §3, §3.5), and if not, why. The request is GET or HEAD:
// RFC 9110 §9.3.2 makes HEAD responses cacheable, but a stored HEAD response
// has no content and can answer only HEAD requests, so the caller must key
// entries by method (a stored GET response can answer a HEAD). The other
// conditions, in the order checked:
//   - the status code is understood (see understoodStatus above);
//   - neither message has no-store, except that must-understand with an
//     understood status makes the response's no-store ignored (§5.2.2.3);
//   - the response is not private: a shared cache must not store the
//     unqualified form, and this cache treats private="field" like it
//     rather than storing the response without those fields (§5.2.2.7
//     notes that is how caches commonly handle it);
//   - a request with Authorization gets a response with public, s-maxage
//     or must-revalidate (§3.5);
//   - Vary is not *, which would never match a later request (§4.1);
//   - the options' Set-Cookie and size limits;
//   - the response has an explicit expiration (Expires, max-age,
//     s-maxage), public, or a heuristically cacheable status (§3). A
//     validator alone is not enough: §3 does not list it.
//
// no-cache does not prevent storage; it requires validation on each reuse
// (see RequiresValidation).
func Storable(method string, reqHeader http.Header, status int, respHeader http.Header, opts StoreOptions) (ok bool, reason string) {
	return StorableWith(method, reqHeader, status, respHeader, ResponseDirectives(respHeader), opts)
}

// StorableWith is Storable with the response's directives already parsed
// (resp is ResponseDirectives(respHeader)).
func StorableWith(method string, reqHeader http.Header, status int, respHeader http.Header, resp Directives, opts StoreOptions) (ok bool, reason string) {
	if method != http.MethodGet && method != http.MethodHead {
		return false, ReasonMethod
	}
	if !understoodStatus[status] {
		return false, ReasonStatus
	}
	req := RequestDirectives(reqHeader)
	if req.NoStore || (resp.NoStore && !resp.MustUnderstand) {
		return false, ReasonNoStore
	}
	if resp.Private {
		return false, ReasonPrivate
	}
	if len(reqHeader.Values("Authorization")) > 0 && !resp.Public && !resp.HasSMaxAge && !resp.MustRevalidate {
		return false, ReasonAuthorization
	}
	if varyStar(respHeader.Values("Vary")) {
		return false, ReasonVaryStar
	}
	if !opts.StoreSetCookie && len(respHeader.Values("Set-Cookie")) > 0 {
		return false, ReasonSetCookie
	}
	// A HEAD response's Content-Length is that of the GET response; it
	// stores no content.
	if opts.MaxBodyBytes > 0 && method != http.MethodHead {
		if n, present, valid := contentLength(respHeader); present && !valid {
			return false, ReasonLength
		} else if present && n > opts.MaxBodyBytes {
			return false, ReasonTooLarge
		}
	}
	if !resp.HasMaxAge && !resp.HasSMaxAge && !resp.Public &&
		len(respHeader.Values("Expires")) == 0 && !heuristicallyCacheable[status] {
		return false, ReasonNoFreshness
	}
	return true, ""
}

// varyStar reports whether Vary lists "*".
func varyStar(vary []string) bool {
	for _, v := range vary {
		for _, name := range splitPlain(v) {
			if name == "*" {
				return true
			}
		}
	}
	return false
}

// contentLength parses Content-Length. RFC 9110 §8.6 lets a recipient
// accept a repeated field, or a list, when every member is the same
// non-negative integer; anything else is invalid.
func contentLength(h http.Header) (n int64, present, valid bool) {
	values := h.Values("Content-Length")
	if len(values) == 0 {
		return 0, false, false
	}
	if len(values) == 1 && digits(values[0]) {
		// The usual field, one plain number: what the loop below makes of
		// it, without splitting it.
		n, err := strconv.ParseInt(values[0], 10, 64)
		return n, true, err == nil
	}
	first := ""
	for _, v := range values {
		members := splitPlain(v)
		if len(members) == 0 {
			return 0, true, false
		}
		for _, m := range members {
			if first == "" {
				first = m
			} else if m != first {
				return 0, true, false
			}
		}
	}
	if !digits(first) {
		return 0, true, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, true, err == nil
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
