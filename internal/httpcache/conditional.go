package httpcache

import (
	"net/http"
	"slices"
	"time"
)

// NotModified reports whether a client's conditional GET or HEAD can be
// answered 304 (Not Modified) from the stored response's header. It
// evaluates only the preconditions that apply to a cache (RFC 9111 §4.3.2):
// If-Match and If-Unmodified-Since are for the origin, and If-None-Match,
// when present, takes precedence over If-Modified-Since (RFC 9110 §13.2.2).
//
//   - If-None-Match: "*" matches any stored response; a list of
//     entity-tags matches when one is weakly equal to the stored ETag
//     (RFC 9110 §8.8.3.2, §13.1.2). A malformed field matches nothing.
//   - If-Modified-Since, only without If-None-Match: a single valid
//     HTTP-date (otherwise it is ignored, §13.1.3) that is not earlier than
//     the stored Last-Modified, or, when the stored response has no
//     Last-Modified, its Date (RFC 9111 §4.3.2). An invalid Last-Modified
//     matches nothing.
//
// A 304 stands for a 200 (RFC 9110 §15.4.5), so the caller asks only for a
// stored 200 response and only for GET and HEAD requests. It answers with
// NotModifiedHeaders.
func NotModified(reqHeader http.Header, stored http.Header) bool {
	if inm := reqHeader.Values("If-None-Match"); len(inm) > 0 {
		star, tags, ok := parseIfNoneMatch(inm)
		if !ok {
			return false
		}
		if star {
			return true
		}
		etag, ok := storedETag(stored)
		if !ok {
			return false
		}
		for _, t := range tags {
			if t.opaque == etag.opaque {
				return true
			}
		}
		return false
	}
	ims := reqHeader.Values("If-Modified-Since")
	if len(ims) != 1 {
		return false
	}
	since, err := http.ParseTime(trimOWS(ims[0]))
	if err != nil {
		return false
	}
	modified, ok := lastModifiedOrDate(stored)
	return ok && !modified.After(since)
}

// lastModifiedOrDate is what If-Modified-Since is compared with: the
// stored Last-Modified, or its Date if it has none.
func lastModifiedOrDate(stored http.Header) (time.Time, bool) {
	if v, ok := firstValue(stored.Values("Last-Modified")); ok {
		t, err := http.ParseTime(v)
		return t, err == nil
	}
	return dateOf(stored)
}

// ValidatorsFor is the header a cache adds to the request it sends to
// validate a stored response (RFC 9111 §4.3.1): If-None-Match with the
// stored ETag, and If-Modified-Since with its Last-Modified (§4.3.1: sent
// when a single stored response is validated). Malformed validators are
// left out. Last-Modified is re-formatted as an IMF-fixdate, the form a
// sender must generate (RFC 9110 §5.6.7), which leaves the usual
// IMF-fixdate value unchanged.
func ValidatorsFor(stored http.Header) http.Header {
	h := http.Header{}
	if t, ok := storedETag(stored); ok {
		h.Set("If-None-Match", t.String())
	}
	if v, ok := firstValue(stored.Values("Last-Modified")); ok {
		if t, err := http.ParseTime(v); err == nil {
			h.Set("If-Modified-Since", t.UTC().Format(http.TimeFormat))
		}
	}
	return h
}

// NotModifiedHeaders are the stored response's fields that a 304 generated
// from it carries (RFC 9110 §15.4.5): Cache-Control, Content-Location,
// Date, ETag, Expires and Vary, and Last-Modified when there is no ETag (it
// then guides the recipient's cache update). The values are copies. The
// caller adds Age (RFC 9111 §5.1) and Cache-Status itself.
func NotModifiedHeaders(stored http.Header) http.Header {
	h := http.Header{}
	for _, name := range []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary"} {
		if v := stored.Values(name); len(v) > 0 {
			h[name] = slices.Clone(v)
		}
	}
	if v := stored.Values("Last-Modified"); len(v) > 0 && len(stored.Values("Etag")) == 0 {
		h["Last-Modified"] = slices.Clone(v)
	}
	return h
}

// notUpdated are the fields a 304 does not update in a stored response
// (RFC 9111 §3.2): hop-by-hop fields (RFC 9110 §7.6.1) and proxy fields
// (RFC 9111 §3.1), which are never stored; Content-Length, which §3.2
// excludes; the fields the stored content depends upon, Content-Encoding and
// Content-Range, which §3.2 lets a cache keep for the stored bytes'
// integrity; and Set-Cookie, by this package's choice: a cookie set during a
// revalidation belongs to the client whose request caused it, and the
// caller may pass it to that client only (Storable refuses Set-Cookie by
// default for the same reason).
var notUpdated = map[string]bool{
	"Connection":                true,
	"Keep-Alive":                true,
	"Proxy-Connection":          true,
	"Te":                        true,
	"Transfer-Encoding":         true,
	"Upgrade":                   true,
	"Proxy-Authenticate":        true,
	"Proxy-Authentication-Info": true,
	"Proxy-Authorization":       true,
	"Content-Length":            true,
	"Content-Encoding":          true,
	"Content-Range":             true,
	"Set-Cookie":                true,
}

// UpdateStored freshens a stored response's header with a 304 received for
// it (RFC 9111 §4.3.4, §3.2): each field of the 304 replaces the stored
// one, except those in notUpdated and those the 304's Connection field
// names. Stored fields the 304 lacks are kept, except Age: the 304 is a new
// validation, so an Age it lacks is 0 and the stored Age no longer applies.
//
// The caller first gives the 304 a Date if it has none (EnsureDate: the
// stored Date would make the freshened response look old again) and then
// records the validation's request and response times as the stored
// response's.
func UpdateStored(stored, fresh304 http.Header) {
	skip := map[string]bool{}
	for _, v := range fresh304.Values("Connection") {
		for _, name := range splitPlain(v) {
			skip[http.CanonicalHeaderKey(name)] = true
		}
	}
	stored.Del("Age")
	for name, values := range fresh304 {
		name = http.CanonicalHeaderKey(name)
		if notUpdated[name] || skip[name] {
			continue
		}
		stored[name] = slices.Clone(values)
	}
}

// entityTag is an RFC 9110 §8.8.3 entity-tag; opaque keeps its quotes.
type entityTag struct {
	weak   bool
	opaque string
}

func (t entityTag) String() string {
	if t.weak {
		return "W/" + t.opaque
	}
	return t.opaque
}

// storedETag parses the stored response's first ETag line, which must hold
// exactly one entity-tag.
func storedETag(h http.Header) (entityTag, bool) {
	v, ok := firstValue(h.Values("Etag"))
	if !ok {
		return entityTag{}, false
	}
	t, rest, ok := scanEntityTag(v)
	return t, ok && rest == ""
}

// parseIfNoneMatch parses If-None-Match = "*" / #entity-tag over all its
// lines. ok is false for a malformed or empty field.
func parseIfNoneMatch(values []string) (star bool, tags []entityTag, ok bool) {
	if len(values) == 1 && trimOWS(values[0]) == "*" {
		return true, nil, true
	}
	for _, v := range values {
		s := v
		for {
			for s != "" && (s[0] == ',' || s[0] == ' ' || s[0] == '\t') {
				s = s[1:]
			}
			if s == "" {
				break
			}
			t, rest, ok := scanEntityTag(s)
			if !ok {
				return false, nil, false
			}
			rest = trimOWS(rest)
			if rest != "" && rest[0] != ',' {
				return false, nil, false
			}
			tags = append(tags, t)
			s = rest
		}
	}
	return false, tags, len(tags) > 0
}

// scanEntityTag reads one entity-tag from the start of s (after OWS):
// [ "W/" ] DQUOTE *etagc DQUOTE, where etagc is %x21 / %x23-7E / obs-text.
// The "W/" prefix is case-sensitive (§8.8.3).
func scanEntityTag(s string) (entityTag, string, bool) {
	s = trimOWS(s)
	var t entityTag
	if len(s) >= 2 && s[0] == 'W' && s[1] == '/' {
		t.weak = true
		s = s[2:]
	}
	if s == "" || s[0] != '"' {
		return entityTag{}, "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			t.opaque = s[:i+1]
			return t, s[i+1:], true
		case c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80:
		default:
			return entityTag{}, "", false
		}
	}
	return entityTag{}, "", false
}
