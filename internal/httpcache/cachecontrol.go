package httpcache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Directives are the Cache-Control directives (RFC 9111 §5.2, RFC 5861 §3
// and §4, RFC 8246) of one message. Request and response directives share
// the struct; each is meaningful only on the side that defines it (max-stale,
// min-fresh and only-if-cached on requests; s-maxage, public, private,
// must-revalidate, proxy-revalidate, must-understand, immutable and
// stale-while-revalidate on responses).
//
// Each delta-seconds directive has a value and a presence flag. Values are
// whole seconds in [0, MaxDelta]. When a directive repeats, its first
// occurrence wins (RFC 9111 §4.2.1 allows that or treating the response as
// stale); repeated no-cache or private combine, see NoCacheFields. A
// delta-seconds argument that is missing or invalid gives the directive its
// most restrictive reading, as §4.2.1 encourages for invalid freshness
// information: max-age and s-maxage become present with 0 (stale),
// min-fresh becomes MaxDelta, and max-stale becomes present with 0. For the
// directives that only grant something, stale-while-revalidate and
// stale-if-error, the most restrictive reading is absence: an invalid one is
// ignored, so a later valid occurrence can still apply. A directive that
// takes no argument counts as present even if one is given. Unknown
// directives are ignored.
type Directives struct {
	MaxAge    time.Duration
	HasMaxAge bool

	SMaxAge    time.Duration
	HasSMaxAge bool

	// MaxStale is the staleness a request accepts. MaxStaleAny is set (and
	// MaxStale is 0) when max-stale came without a value: any staleness.
	MaxStale    time.Duration
	HasMaxStale bool
	MaxStaleAny bool

	MinFresh    time.Duration
	HasMinFresh bool

	StaleWhileRevalidate    time.Duration
	HasStaleWhileRevalidate bool

	StaleIfError    time.Duration
	HasStaleIfError bool

	NoStore bool

	// NoCache is set for both forms of no-cache. NoCacheFields holds the
	// field names of the qualified form (canonicalized, in order of first
	// appearance), and is nil for the unqualified form, which covers the
	// whole response. An unqualified occurrence anywhere wins over
	// qualified ones, and qualified ones add up; an empty list
	// (no-cache="") counts as unqualified. This package treats both forms
	// alike (see RequiresValidation).
	NoCache       bool
	NoCacheFields []string

	// Private and PrivateFields follow the same rules as NoCache and
	// NoCacheFields. A shared cache stores neither form (see Storable).
	Private       bool
	PrivateFields []string

	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	MustUnderstand  bool
	NoTransform     bool
	Immutable       bool
	OnlyIfCached    bool
}

// ParseCacheControl parses the field lines of one message's Cache-Control
// field. Directive names are case-insensitive; arguments may be tokens or
// quoted-strings (§5.2: recipients accept both forms). It never fails:
// malformed parts are read as the Directives documentation says.
func ParseCacheControl(values []string) Directives {
	var d Directives
	for _, v := range values {
		scanDirectives(v, d.apply)
	}
	return d
}

// RequestDirectives is the request's Cache-Control, plus the Pragma:
// no-cache that RFC 9111 §5.4 has caches honour as Cache-Control: no-cache
// when the request has no Cache-Control field at all.
func RequestDirectives(h http.Header) Directives {
	cc := h.Values("Cache-Control")
	d := ParseCacheControl(cc)
	if len(cc) == 0 {
		for _, v := range h.Values("Pragma") {
			for _, p := range splitQuoted(v, ',') {
				if lowerASCII(p) == "no-cache" {
					d.NoCache = true
				}
			}
		}
	}
	return d
}

// ResponseDirectives is the response's Cache-Control. Pragma is ignored: its
// meaning in responses was never specified (RFC 9111 §5.4).
func ResponseDirectives(h http.Header) Directives {
	return ParseCacheControl(h.Values("Cache-Control"))
}

// scanDirectives calls fn for each directive of one field line, with the
// name lower-cased and the argument unquoted. It is a small scanner rather
// than a split on commas because a quoted argument (no-cache="a, b") may
// hold commas.
func scanDirectives(s string, fn func(name, arg string, hasArg bool)) {
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ',' || s[i] == ' ' || s[i] == '\t') {
			i++
		}
		start := i
		for i < len(s) && s[i] != ',' && s[i] != '=' {
			i++
		}
		name := lowerASCII(trimOWS(s[start:i]))
		if i >= len(s) || s[i] != '=' {
			if name != "" {
				fn(name, "", false)
			}
			continue
		}
		i++ // '='
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		var arg string
		if i < len(s) && s[i] == '"' {
			arg, i = scanQuotedString(s, i)
			// Anything between the closing quote and the next comma is
			// malformed; it is dropped rather than voiding the directive.
			for i < len(s) && s[i] != ',' {
				i++
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' {
				i++
			}
			arg = trimOWS(s[start:i])
		}
		if name != "" {
			fn(name, arg, true)
		}
	}
}

// scanQuotedString reads the quoted-string starting at s[i] (a '"'),
// resolving backslash escapes, and returns it with the index after the
// closing quote. An unterminated string runs to the end of s.
func scanQuotedString(s string, i int) (string, int) {
	var b strings.Builder
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), i
}

// apply records one directive.
func (d *Directives) apply(name, arg string, hasArg bool) {
	switch name {
	case "max-age":
		if !d.HasMaxAge {
			d.MaxAge, d.HasMaxAge = deltaOr(arg, hasArg, 0), true
		}
	case "s-maxage":
		if !d.HasSMaxAge {
			d.SMaxAge, d.HasSMaxAge = deltaOr(arg, hasArg, 0), true
		}
	case "min-fresh":
		if !d.HasMinFresh {
			d.MinFresh, d.HasMinFresh = deltaOr(arg, hasArg, MaxDelta), true
		}
	case "max-stale":
		if !d.HasMaxStale {
			d.HasMaxStale = true
			if hasArg {
				d.MaxStale = deltaOr(arg, true, 0)
			} else {
				d.MaxStaleAny = true
			}
		}
	case "stale-while-revalidate":
		if v, ok := parseDelta(arg); ok && hasArg && !d.HasStaleWhileRevalidate {
			d.StaleWhileRevalidate, d.HasStaleWhileRevalidate = v, true
		}
	case "stale-if-error":
		if v, ok := parseDelta(arg); ok && hasArg && !d.HasStaleIfError {
			d.StaleIfError, d.HasStaleIfError = v, true
		}
	case "no-cache":
		d.NoCache, d.NoCacheFields = mergeFields(d.NoCache, d.NoCacheFields, arg, hasArg)
	case "private":
		d.Private, d.PrivateFields = mergeFields(d.Private, d.PrivateFields, arg, hasArg)
	case "no-store":
		d.NoStore = true
	case "public":
		d.Public = true
	case "must-revalidate":
		d.MustRevalidate = true
	case "proxy-revalidate":
		d.ProxyRevalidate = true
	case "must-understand":
		d.MustUnderstand = true
	case "no-transform":
		d.NoTransform = true
	case "immutable":
		d.Immutable = true
	case "only-if-cached":
		d.OnlyIfCached = true
	}
}

// deltaOr parses a delta-seconds argument, or returns restrictive when it is
// missing or invalid.
func deltaOr(arg string, hasArg bool, restrictive time.Duration) time.Duration {
	if v, ok := parseDelta(arg); hasArg && ok {
		return v
	}
	return restrictive
}

// mergeFields folds one occurrence of no-cache or private into what earlier
// occurrences set. A nil list with present set means the unqualified form,
// which covers every field and so absorbs any qualified occurrence.
func mergeFields(present bool, fields []string, arg string, hasArg bool) (bool, []string) {
	var names []string
	if hasArg {
		names = fieldNames(arg)
	}
	switch {
	case !present:
		return true, names
	case fields == nil || names == nil:
		return true, nil
	}
	for _, n := range names {
		if !slices.Contains(fields, n) {
			fields = append(fields, n)
		}
	}
	return true, fields
}

// fieldNames splits the #field-name argument of no-cache or private,
// canonicalizing and deduplicating the names; nil if there are none.
func fieldNames(arg string) []string {
	var out []string
	for _, n := range splitPlain(arg) {
		n = http.CanonicalHeaderKey(n)
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// String formats d as a Cache-Control field value, in a fixed order and
// with field-name lists as quoted-strings. ParseCacheControl of the result
// gives d back for any d it produced.
func (d Directives) String() string {
	var parts []string
	delta := func(name string, v time.Duration) {
		parts = append(parts, name+"="+strconv.FormatInt(int64(clampDelta(v)/time.Second), 10))
	}
	flag := func(name string, set bool) {
		if set {
			parts = append(parts, name)
		}
	}
	fields := func(name string, set bool, names []string) {
		switch {
		case !set:
		case len(names) == 0:
			parts = append(parts, name)
		default:
			parts = append(parts, name+"="+quoteString(strings.Join(names, ", ")))
		}
	}
	if d.HasMaxAge {
		delta("max-age", d.MaxAge)
	}
	if d.HasSMaxAge {
		delta("s-maxage", d.SMaxAge)
	}
	if d.HasMaxStale {
		if d.MaxStaleAny {
			parts = append(parts, "max-stale")
		} else {
			delta("max-stale", d.MaxStale)
		}
	}
	if d.HasMinFresh {
		delta("min-fresh", d.MinFresh)
	}
	if d.HasStaleWhileRevalidate {
		delta("stale-while-revalidate", d.StaleWhileRevalidate)
	}
	if d.HasStaleIfError {
		delta("stale-if-error", d.StaleIfError)
	}
	flag("no-store", d.NoStore)
	fields("no-cache", d.NoCache, d.NoCacheFields)
	fields("private", d.Private, d.PrivateFields)
	flag("public", d.Public)
	flag("must-revalidate", d.MustRevalidate)
	flag("proxy-revalidate", d.ProxyRevalidate)
	flag("must-understand", d.MustUnderstand)
	flag("no-transform", d.NoTransform)
	flag("immutable", d.Immutable)
	flag("only-if-cached", d.OnlyIfCached)
	return strings.Join(parts, ", ")
}

// quoteString makes s an RFC 9110 §5.6.4 quoted-string, escaping only the
// two bytes that need it.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
