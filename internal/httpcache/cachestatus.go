package httpcache

import (
	"strconv"
	"time"
)

// The fwd values of RFC 9211 §2.2: why the request went forward.
const (
	FwdBypass   = "bypass"    // configured to bypass the cache
	FwdMethod   = "method"    // the request method's semantics need it
	FwdURIMiss  = "uri-miss"  // nothing stored for the target URI
	FwdVaryMiss = "vary-miss" // stored, but Vary did not match
	FwdMiss     = "miss"      // a miss, cause unknown
	FwdRequest  = "request"   // the request's directives (e.g. no-cache)
	FwdStale    = "stale"     // stored but stale: validation or refresh
	FwdPartial  = "partial"   // stored partial content cannot answer
)

// CacheStatus is how the cache handled one request, for the Cache-Status
// response field (RFC 9211).
type CacheStatus struct {
	// Hit: answered from the cache without going forward (§2.1), a 304
	// generated from a stored response included.
	Hit bool
	// Fwd: why the request went forward (one of the Fwd constants), and
	// FwdStatus the status the next hop answered with (§2.2, §2.3).
	Fwd       string
	FwdStatus int
	// TTL: the remaining freshness lifetime, negative when stale (§2.4).
	TTL time.Duration
	// Stored: the response was stored (§2.5).
	Stored bool
	// Collapsed: the request was collapsed with another one going forward
	// and reused its response (§2.6).
	Collapsed bool
	// Detail: implementation-specific information (§2.8).
	Detail string
}

// String formats s as one Cache-Status list member for the cache named
// cacheName, an RFC 8941 Item with parameters, in RFC 9211's order: hit,
// fwd, fwd-status, ttl, stored, collapsed, detail. For example:
//
//	meshgate; hit; ttl=42
//	meshgate; fwd=uri-miss; fwd-status=200; stored
//
// Following RFC 8941 (§4.1.1.3, §3.3.6), the name is a Token when it has
// the syntax of one and a String otherwise; true Booleans are bare
// parameters, and false ones are left out (a false collapsed, that is
// "tried and failed", cannot be expressed). Hit and fwd are exclusive by
// definition (hit means "not forwarded"), so Fwd and FwdStatus are ignored
// when Hit is set; Fwd is left out when it is not a Token, and FwdStatus
// when it is not a three-digit status code. ttl is in whole seconds,
// rounded down (so a response stale by half a second shows -1, not 0), and
// left out when TTL is 0, which the struct cannot tell from unknown. Detail
// is a Token when it can be, else a String. Bytes a String cannot carry
// (outside %x20-7E) become '?'.
func (s CacheStatus) String(cacheName string) string {
	// Built in a buffer on the stack (one that does not fit moves to the
	// heap): the string is the only allocation, once per answer.
	var buf [96]byte
	b := appendTokenOrString(buf[:0], cacheName)
	switch {
	case s.Hit:
		b = append(b, "; hit"...)
	case isSFToken(s.Fwd):
		b = append(b, "; fwd="...)
		b = append(b, s.Fwd...)
		if s.FwdStatus >= 100 && s.FwdStatus <= 999 {
			b = append(b, "; fwd-status="...)
			b = strconv.AppendInt(b, int64(s.FwdStatus), 10)
		}
	}
	if s.TTL != 0 {
		// A Duration's seconds (±9.2e9) always fit an RFC 8941 Integer
		// (15 digits).
		secs := int64(s.TTL / time.Second)
		if s.TTL < 0 && s.TTL%time.Second != 0 {
			secs-- // round toward negative infinity
		}
		b = append(b, "; ttl="...)
		b = strconv.AppendInt(b, secs, 10)
	}
	if s.Stored {
		b = append(b, "; stored"...)
	}
	if s.Collapsed {
		b = append(b, "; collapsed"...)
	}
	if s.Detail != "" {
		b = append(b, "; detail="...)
		b = appendTokenOrString(b, s.Detail)
	}
	return string(b)
}

// isSFToken reports whether s is an RFC 8941 §3.3.4 Token:
// ( ALPHA / "*" ) *( tchar / ":" / "/" ).
func isSFToken(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isTchar(c) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

// appendTokenOrString appends s as a Token if it is one, else as an RFC
// 8941 §3.3.3 String.
func appendTokenOrString(b []byte, s string) []byte {
	if isSFToken(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
