package h1server

import "strings"

// Byte classes and header-name canonicalization.

// isToken reports whether c is a tchar (RFC 9110 §5.6.2).
var isToken = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validFieldValueByte reports whether c may appear in a header field value:
// VCHAR, SP, HTAB or obs-text. Every other CTL (including CR, LF, NUL) and DEL
// are refused.
func validFieldValueByte(c byte) bool { return validValue[c] }

var validValue = func() (t [256]bool) {
	for i := range t {
		t[i] = i >= 0x20 && i != 0x7f || i == '\t'
	}
	return t
}()

// commonHeaders interns the canonical form of frequent header names so that a
// non-canonical spelling on the wire (e.g. "user-agent") costs no allocation.
var commonHeaders = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Authorization",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip",
		"X-Request-Id", "Cache-Control", "Origin", "Referer", "If-None-Match",
		"If-Modified-Since", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Te", "Trailer",
		"Transfer-Encoding", "Grpc-Timeout", "Content-Encoding", "Range", "Pragma",
		"Keep-Alive", "Expect", "Traceparent", "Tracestate", "Baggage",
		"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Priority",
	} {
		m[k] = k
	}
	return m
}()

// isCanonical reports whether the token k is already in
// textproto.CanonicalMIMEHeaderKey form.
func isCanonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// canonicalKey returns the canonical form of the token k (a substring of the
// request head). It allocates only for a non-canonical name that is not in
// commonHeaders. scratch is reused between calls.
func canonicalKey(k string, scratch *[]byte) string {
	if isCanonical(k) {
		return k // a substring of the head: no allocation, no lookup
	}
	b := append((*scratch)[:0], k...)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	*scratch = b
	if ck, ok := commonHeaders[string(b)]; ok {
		return ck
	}
	return string(b)
}

// asciiEqualFold reports whether s equals the lower-case ASCII string lower,
// ignoring ASCII case.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// trimOWS trims optional whitespace (SP, HTAB) on both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// forEachToken calls f for each non-empty comma-separated element of v,
// trimmed of optional whitespace.
func forEachToken(v string, f func(string)) {
	for v != "" {
		var t string
		if i := strings.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, ""
		}
		if t = trimOWS(t); t != "" {
			f(t)
		}
	}
}

// validHostByte reports whether c may appear in a Host header value
// (reg-name, IP literal, port).
var validHostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !validHostByte[h[i]] {
			return false
		}
	}
	return true
}
