package httpcache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// VaryKey is the secondary cache key (RFC 9111 §4.1) of a request against
// a stored response's Vary field lines: the request's values of the fields
// Vary names. A stored response matches a new request when the key computed
// from the request that produced it equals the new request's key under the
// same Vary. ok is false when Vary lists "*", which never matches; a
// response without Vary has the key "".
//
// Field names are case-insensitive and each counts once, in sorted order,
// so "Accept-Encoding, accept" and "Accept, Accept-Encoding" give one key.
// An absent field differs from an empty one (§4.1: an absent field only
// matches an absent field). Values are normalized as far as §4.1 allows
// ("normalizing both header field values in a way that is known to have
// identical semantics"), so that trivially different requests share an
// entry:
//   - every field: lines trimmed of whitespace, empty lines dropped, the
//     rest combined with "," (§5.3), or with "; " for Cookie (RFC 9113
//     §8.2.3 splits one Cookie into several lines). Whitespace inside a
//     line is kept: a field need not be a list (a User-Agent comment may
//     hold "a, b"), so only the fields below are split into elements;
//   - Accept-Encoding: codings lower-cased, sorted and deduplicated (the
//     first occurrence wins). Weights above 0 are dropped, keeping only the
//     set of acceptable codings: a choice beyond strict equivalence, as two
//     requests accepting the same codings in a different order of
//     preference share an entry. A q=0 entry is kept when it excludes
//     something the rest would accept ("identity" or "*", or anything when
//     "*" is accepted) and dropped otherwise, since an unlisted coding is
//     already unacceptable. A value that does not parse falls back to the
//     plain form;
//   - Accept: media types and parameter names lower-cased and list
//     elements trimmed; order, parameter values and weights are kept, as
//     they can carry meaning;
//   - Accept-Language: elements trimmed and lower-cased (language ranges
//     and weights are case-insensitive); order is kept.
//
// The key encodes each name and value with its length ("15:accept-encoding"
// then "=4:gzip", or "!" for an absent field), so no choice of values can
// make two different requests collide. reqHeader must use canonical keys, as
// net/http's are.
func VaryKey(varyHeader []string, reqHeader http.Header) (key string, ok bool) {
	var names []string
	for _, v := range varyHeader {
		for _, name := range splitPlain(v) {
			if name == "*" {
				return "", false
			}
			names = append(names, lowerASCII(name))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var b strings.Builder
	for _, name := range names {
		writeLengthPrefixed(&b, name)
		values := reqHeader.Values(name)
		if len(values) == 0 {
			b.WriteByte('!')
			continue
		}
		b.WriteByte('=')
		writeLengthPrefixed(&b, normalizeField(name, values))
	}
	return b.String(), true
}

// writeLengthPrefixed writes s as "<len>:<s>", a prefix-free encoding.
func writeLengthPrefixed(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

// normalizeField combines a field's lines and normalizes the result for
// the fields VaryKey knows. It works on the combined value, not line by
// line, so that a normalized value fed back in normalizes to itself.
func normalizeField(name string, values []string) string {
	sep := ","
	if name == "cookie" {
		sep = "; "
	}
	var lines []string
	for _, v := range values {
		if v = trimOWS(v); v != "" {
			lines = append(lines, v)
		}
	}
	combined := strings.Join(lines, sep)
	switch name {
	case "accept-encoding":
		if v, ok := normalizeAcceptEncoding(combined); ok {
			return v
		}
	case "accept":
		return normalizeAccept(combined)
	case "accept-language":
		return normalizeAcceptLanguage(combined)
	}
	return combined
}

// normalizeAcceptEncoding reduces Accept-Encoding (RFC 9110 §12.5.3) to
// its sorted acceptable codings followed by the sorted exclusions that
// matter, "br,gzip,identity;q=0". ok is false if the value does not parse.
func normalizeAcceptEncoding(s string) (string, bool) {
	seen := map[string]bool{}
	var accepted, excluded []string
	for _, elem := range splitQuoted(s, ',') {
		coding, weight, hasWeight := strings.Cut(elem, ";")
		coding = lowerASCII(trimOWS(coding))
		if !isToken(coding) {
			return "", false
		}
		zero := false
		if hasWeight {
			var ok bool
			if zero, ok = parseWeight(weight); !ok {
				return "", false
			}
		}
		if seen[coding] {
			continue
		}
		seen[coding] = true
		if zero {
			excluded = append(excluded, coding)
		} else {
			accepted = append(accepted, coding)
		}
	}
	if !slices.Contains(accepted, "*") {
		// Without "*" an unlisted coding is unacceptable anyway; only the
		// exclusions of identity (acceptable by default) change anything.
		excluded = slices.DeleteFunc(excluded, func(c string) bool { return c != "identity" && c != "*" })
	}
	slices.Sort(accepted)
	slices.Sort(excluded)
	for i, c := range excluded {
		excluded[i] = c + ";q=0"
	}
	return strings.Join(append(accepted, excluded...), ","), true
}

// parseWeight parses "q=qvalue" (RFC 9110 §12.4.2, "q" case-insensitive)
// and reports whether the weight is zero.
func parseWeight(s string) (zero, ok bool) {
	s = trimOWS(s)
	if len(s) < 3 || (s[0] != 'q' && s[0] != 'Q') || s[1] != '=' {
		return false, false
	}
	q := s[2:]
	// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
	digits := ""
	if len(q) > 1 {
		if q[1] != '.' || len(q) > 5 {
			return false, false
		}
		digits = q[2:]
	}
	switch q[0] {
	case '0':
		zero = true
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return false, false
			}
			if digits[i] != '0' {
				zero = false
			}
		}
		return zero, true
	case '1':
		return false, strings.Trim(digits, "0") == ""
	}
	return false, false
}

// normalizeAccept trims Accept's (RFC 9110 §12.5.1) elements and
// parameters and lower-cases what is case-insensitive: the media range and
// parameter names (§8.3.1), not parameter values.
func normalizeAccept(s string) string {
	elems := splitQuoted(s, ',')
	for i, elem := range elems {
		params := splitQuoted(elem, ';')
		if len(params) == 0 {
			continue // only unreachable for a non-empty element; be safe
		}
		params[0] = lowerASCII(params[0])
		for j := 1; j < len(params); j++ {
			if name, value, ok := strings.Cut(params[j], "="); ok {
				params[j] = lowerASCII(trimOWS(name)) + "=" + trimOWS(value)
			} else {
				params[j] = lowerASCII(params[j])
			}
		}
		elems[i] = strings.Join(params, ";")
	}
	return strings.Join(elems, ",")
}

// normalizeAcceptLanguage trims and lower-cases Accept-Language (RFC 9110
// §12.5.4), whose language ranges and weights are all case-insensitive.
func normalizeAcceptLanguage(s string) string {
	elems := splitQuoted(s, ',')
	for i, elem := range elems {
		elems[i] = lowerASCII(strings.Join(splitQuoted(elem, ';'), ";"))
	}
	return strings.Join(elems, ",")
}
