package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
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
// allocating.

// Canonical header names (net/http's form of the W3C and B3 names).
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
)

// b3Headers are the B3 headers a request may carry.
var b3Headers = [...]string{"B3", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags"}

// remoteContext is a parent trace context read from a request.
type remoteContext struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	flags   trace.TraceFlags
	state   string
	// deferred: the caller left the sampling decision to us (B3 without
	// a sampled flag).
	deferred bool
	fromB3   bool
}

// extract reads the trace context of a request's headers.
func extract(h http.Header) (remoteContext, bool) {
	if v := h[headerTraceparent]; len(v) == 1 {
		if rc, ok := parseTraceparent(v[0]); ok {
			if ts := h[headerTracestate]; len(ts) > 0 {
				rc.state = validTraceState(ts)
			}
			return rc, true
		}
		// An invalid traceparent starts a new trace (and its tracestate is
		// ignored), as the specification asks; B3 is not consulted either.
		return remoteContext{}, false
	} else if len(v) > 1 {
		return remoteContext{}, false
	}
	if _, ok := h["B3"]; !ok {
		if _, ok := h["X-B3-Traceid"]; !ok {
			return remoteContext{}, false
		}
	}
	return extractB3(h)
}

// b3Propagator reads both B3 encodings (it is never used to write).
var b3Propagator = b3.New()

func extractB3(h http.Header) (remoteContext, bool) {
	ctx := b3Propagator.Extract(context.Background(), propagation.HeaderCarrier(h))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return remoteContext{}, false
	}
	return remoteContext{traceID: sc.TraceID(), spanID: sc.SpanID(), flags: sc.TraceFlags() & trace.FlagsSampled,
		deferred: b3Deferred(h, sc.TraceID()), fromB3: true}, true
}

// b3Deferred reports whether B3 headers leave the sampling decision to the
// receiver: a single header "{trace}-{span}" without a sampling state, or
// multiple headers without X-B3-Sampled and debug flag. The propagator
// reads the single header when it is valid, which its trace id shows.
func b3Deferred(h http.Header, id trace.TraceID) bool {
	if v := h["B3"]; len(v) > 0 {
		parts := strings.Split(v[0], "-")
		if len(parts) >= 2 && strings.HasSuffix(id.String(), strings.ToLower(parts[0])) {
			return len(parts) == 2
		}
	}
	return len(h["X-B3-Sampled"]) == 0 && (len(h["X-B3-Flags"]) == 0 || h["X-B3-Flags"][0] != "1")
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
// tracestate, and any B3 headers when the request brought them.
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
