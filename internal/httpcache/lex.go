package httpcache

import (
	"strings"
	"time"
)

// Lexical helpers shared by the parsers. HTTP field syntax is ASCII (RFC
// 9110 §5.5, §5.6), so these work on bytes: they never decode UTF-8, and
// bytes they do not understand pass through unchanged, which keeps every
// normalization injective on everything but the differences it means to
// erase.

// MaxDelta is the greatest delta-seconds value this package represents:
// 2^31 seconds. RFC 9111 §1.2.2 has a cache that receives a greater value,
// or whose calculation overflows, use 2^31 instead; every duration parsed or
// computed here is clamped to it.
const MaxDelta = (1 << 31) * time.Second

// clampDelta bounds a computed duration to [0, MaxDelta].
func clampDelta(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return min(d, MaxDelta)
}

// parseDelta parses delta-seconds (RFC 9111 §1.2.2: 1*DIGIT), clamping
// values over 2^31 instead of rejecting them. Signs, fractions, spaces and
// empty strings are invalid.
func parseDelta(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		// Keep scanning after the clamp so that "9999999999x" is still
		// invalid rather than clamped.
		if n <= 1<<31 {
			n = n*10 + int64(c-'0')
		}
	}
	if n > 1<<31 {
		n = 1 << 31
	}
	return time.Duration(n) * time.Second, true
}

// isTchar reports whether c may appear in an RFC 9110 §5.6.2 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// lowerASCII lower-cases ASCII letters only. strings.ToLower would also fold
// non-ASCII runes and turn invalid UTF-8 into U+FFFD, so two different
// inputs could come out equal.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// trimOWS trims optional whitespace (RFC 9110 §5.6.3: SP and HTAB), not
// every Unicode space.
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// splitQuoted splits s on sep wherever sep is outside a quoted-string (RFC
// 9110 §5.6.4, backslash escapes included), trims OWS from each piece and
// drops empty pieces: recipients of a list must ignore empty elements (§5.6.1).
// An unterminated quoted-string runs to the end of s.
func splitQuoted(s string, sep byte) []string {
	var out []string
	inQuote := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++ // the escaped byte, whatever it is
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			if p := trimOWS(s[start:i]); p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	if start < len(s) {
		if p := trimOWS(s[start:]); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// splitPlain splits a list that cannot hold quoted-strings (field names,
// Vary) on every comma, trimming OWS and dropping empty elements.
func splitPlain(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = trimOWS(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// firstValue is a field's first line, trimmed. For singleton fields (Date,
// Expires, Age, Last-Modified, ETag) a repeated field is an error that RFC
// 9111 §4.2.1 lets a cache resolve by taking the first occurrence; this
// package always does.
func firstValue(values []string) (string, bool) {
	if len(values) == 0 {
		return "", false
	}
	return trimOWS(values[0]), true
}
