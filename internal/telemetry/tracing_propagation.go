package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/trace"
)

// Trace context on the wire (W3C Trace Context, https://www.w3.org/TR/trace-context/):
//
//	traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>
//	tracestate:  vendor entries, passed on unchanged
//
// A request is read for traceparent (and tracestate) first, then, without
// a valid traceparent, for B3 (single "b3" or multiple "X-B3-*" headers).
// Outbound requests carry W3C headers only: the proxy's span becomes their
// parent, and B3 headers that came in are removed, since they would name
// the client's span instead. Baggage is an end-to-end header the proxy
// forwards as it came.
//
// The W3C header is parsed here rather than through the OpenTelemetry
// propagator: it is on every request's path, and this reads it without
// allocating. So is the single B3 header (rare, but its sampling state is
// needed and the propagator keeps it to itself); the multiple B3 headers
// are read by the OpenTelemetry contrib propagator. The fuzz test holds
// both readings to the propagator's.

// Canonical header names (net/http's form of the W3C and B3 names).
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
	headerB3          = "B3"
	headerB3TraceID   = "X-B3-Traceid"
	headerB3SpanID    = "X-B3-Spanid"
	headerB3Sampled   = "X-B3-Sampled"
	headerB3Flags     = "X-B3-Flags"
	headerB3Parent    = "X-B3-Parentspanid"
)

// b3Headers are the B3 headers a request may carry.
var b3Headers = [...]string{headerB3, headerB3TraceID, headerB3SpanID, headerB3Sampled, headerB3Flags, headerB3Parent}

// remoteContext is what a request's headers say about its trace.
type remoteContext struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	flags   trace.TraceFlags
	state   string
	// deferred: the caller left the sampling decision to us (B3 without
	// a sampling state).
	deferred bool
	// deny: no context, but B3 headers that only say "not sampled"
	// ("b3: 0", or X-B3-Sampled: 0 alone).
	deny bool
	// fromB3: the context was read from B3 headers.
	fromB3 bool
	// b3: the request carried B3 headers, of any use.
	b3 bool
}

// extract reads the trace context of a request's headers; false when they
// hold none (rc then still tells b3 and deny).
func extract(h http.Header) (rc remoteContext, ok bool) {
	b3 := carriesB3(h)
	if v := h[headerTraceparent]; len(v) == 1 {
		if rc, ok = parseTraceparent(v[0]); ok {
			if ts := h[headerTracestate]; len(ts) > 0 {
				rc.state = validTraceState(ts)
			}
		}
		// An invalid traceparent starts a new trace (and its tracestate is
		// ignored), as the specification asks; B3 is not consulted either.
		rc.b3 = b3
		return rc, ok
	} else if len(v) > 1 {
		return remoteContext{b3: b3}, false
	}
	if !b3 {
		return remoteContext{}, false
	}
	rc, ok = extractB3(h)
	rc.b3 = true
	return rc, ok
}

// carriesB3 reports whether h holds any B3 header.
func carriesB3(h http.Header) bool {
	for _, k := range b3Headers {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// b3Propagator reads the multiple B3 headers (it is never used to write).
var b3Propagator = b3.New()

// extractB3 reads B3 headers as the B3 propagator does: the single header
// when it holds a valid context, else the multiple headers. The sampling
// state is the one of the header the context came from.
func extractB3(h http.Header) (remoteContext, bool) {
	single, deny := first(h, headerB3), false
	if single != "" {
		rc, st := parseB3Single(single)
		if st == b3Valid {
			return rc, true
		}
		deny = st == b3Deny
	}
	ctx := b3Propagator.Extract(context.Background(), multiB3Carrier(h))
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return remoteContext{traceID: sc.TraceID(), spanID: sc.SpanID(), flags: sc.TraceFlags() & trace.FlagsSampled,
			deferred: first(h, headerB3Sampled) == "" && first(h, headerB3Flags) != "1", fromB3: true}, true
	}
	if !deny && first(h, headerB3TraceID) == "" && first(h, headerB3SpanID) == "" && first(h, headerB3Parent) == "" &&
		first(h, headerB3Flags) != "1" {
		sampled := first(h, headerB3Sampled)
		deny = sampled == "0" || strings.EqualFold(sampled, "false")
	}
	return remoteContext{deny: deny}, false
}

// first is a header's first value (as Header.Get, for a canonical key).
func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// multiB3Carrier shows the propagator the multiple B3 headers only (the
// single one was read by parseB3Single).
type multiB3Carrier http.Header

func (c multiB3Carrier) Get(key string) string {
	if strings.EqualFold(key, headerB3) {
		return ""
	}
	return http.Header(c).Get(key)
}

func (c multiB3Carrier) Set(string, string) {}

func (c multiB3Carrier) Keys() []string { return nil }

// b3State is what a single B3 header holds.
type b3State uint8

const (
	b3Invalid b3State = iota
	b3Valid           // a context, with its sampling state
	b3Deny            // "0": no context, not sampled
)

// parseB3Single parses a single B3 header,
// {trace}-{span}[-{sampling}[-{parent}]] or a sampling state alone
// (https://github.com/openzipkin/b3-propagation), exactly as the
// OpenTelemetry B3 propagator does (it is as lenient about the
// separators), without allocating. A trace id of 16 hex digits is padded
// to 32. The sampling states are 1, 0, d (debug: sampled) or none (the
// receiver decides); a sampling state alone other than 0 is ignored.
func parseB3Single(v string) (rc remoteContext, st b3State) {
	n := len(v)
	if n == 1 {
		if v == "0" {
			return rc, b3Deny
		}
		return rc, b3Invalid
	}
	if n < 16+1+16 {
		return rc, b3Invalid
	}
	pos := 0
	switch {
	case v[16] == '-':
		if !decodeHex(rc.traceID[8:], v[:16]) {
			return rc, b3Invalid
		}
		pos = 17
	case v[32] == '-':
		if !decodeHex(rc.traceID[:], v[:32]) {
			return rc, b3Invalid
		}
		pos = 33
	default:
		return rc, b3Invalid
	}
	if !rc.traceID.IsValid() || n < pos+16 || !decodeHex(rc.spanID[:], v[pos:pos+16]) || !rc.spanID.IsValid() {
		return remoteContext{}, b3Invalid
	}
	pos += 16
	if n == pos {
		rc.deferred = true // no sampling state
		rc.fromB3 = true
		return rc, b3Valid
	}
	pos++ // the separator (not checked, as the propagator does not)
	switch n {
	case pos + 1:
	case pos + 1 + 1 + 16:
		var parent trace.SpanID
		if !decodeHex(parent[:], v[pos+2:]) || !parent.IsValid() {
			return remoteContext{}, b3Invalid
		}
	default:
		return remoteContext{}, b3Invalid
	}
	switch v[pos] {
	case '1', 'd':
		rc.flags = trace.FlagsSampled
	case '0':
	default:
		return remoteContext{}, b3Invalid
	}
	rc.fromB3 = true
	return rc, b3Valid
}

// parseTraceparent parses a traceparent value. Version 00 must be exactly
// 55 characters; a later version may append fields after a '-', and only
// the flags defined so far (sampled, random) are taken from it. Version ff,
// upper-case hex and all-zero ids are invalid.
func parseTraceparent(v string) (remoteContext, bool) {
	var rc remoteContext
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return rc, false
	}
	ver, ok := hexByte(v[0], v[1])
	if !ok || ver == 0xff || (ver == 0 && len(v) != 55) || (len(v) > 55 && v[55] != '-') {
		return rc, false
	}
	if !decodeHex(rc.traceID[:], v[3:35]) || !decodeHex(rc.spanID[:], v[36:52]) {
		return rc, false
	}
	flags, ok := hexByte(v[53], v[54])
	if !ok || !rc.traceID.IsValid() || !rc.spanID.IsValid() {
		return rc, false
	}
	rc.flags = trace.TraceFlags(flags) & 0x03 // sampled, random
	return rc, true
}

// validTraceState returns the tracestate to propagate: the header's lines
// joined, or "" when they do not form a valid list (which is then dropped,
// as the specification asks).
func validTraceState(lines []string) string {
	s := lines[0]
	if len(lines) > 1 {
		s = strings.Join(lines, ",")
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	if _, err := trace.ParseTraceState(s); err != nil {
		return ""
	}
	return s
}

// traceparent formats the span's context for the next hop.
func (s *Span) traceparent() string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	encodeHex(b[3:35], s.traceID[:])
	b[35] = '-'
	encodeHex(b[36:52], s.spanID[:])
	b[52] = '-'
	encodeHex(b[53:55], []byte{byte(s.flags)})
	return string(b[:])
}

// Inject writes the span's context into the headers of the request it
// stands for, replacing whatever trace context they held: traceparent and
// tracestate, and, when removeB3 (the server span's FromB3: the request
// brought some), any B3 headers.
func (s *Span) Inject(h http.Header, removeB3 bool) {
	if s == nil {
		return
	}
	h[headerTraceparent] = []string{s.traceparent()}
	if s.traceState != "" {
		if v := h[headerTracestate]; len(v) != 1 || v[0] != s.traceState {
			h[headerTracestate] = []string{s.traceState}
		}
	} else if _, ok := h[headerTracestate]; ok {
		delete(h, headerTracestate)
	}
	if removeB3 {
		for _, k := range b3Headers {
			delete(h, k)
		}
	}
}

const hexDigits = "0123456789abcdef"

func encodeHex(dst, src []byte) {
	for i, c := range src {
		dst[2*i], dst[2*i+1] = hexDigits[c>>4], hexDigits[c&0x0f]
	}
}

// decodeHex decodes lower-case hex into dst (len(src) == 2*len(dst)).
func decodeHex(dst []byte, src string) bool {
	for i := range dst {
		b, ok := hexByte(src[2*i], src[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexNibble(hi)
	l, ok2 := hexNibble(lo)
	return h<<4 | l, ok1 && ok2
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// TraceIDString and SpanIDString format the span's ids in lower-case hex,
// as in traceparent and in the access log.
func (s *Span) TraceIDString() string {
	var b [32]byte
	encodeHex(b[:], s.traceID[:])
	return string(b[:])
}

// SpanIDString is the span id in hex.
func (s *Span) SpanIDString() string {
	var b [16]byte
	encodeHex(b[:], s.spanID[:])
	return string(b[:])
}
