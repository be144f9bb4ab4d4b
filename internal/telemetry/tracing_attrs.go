package telemetry

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Well-known attributes. The proxy sets the same few attributes on every
// span: they are stored as plain fields while the request runs (a store,
// no encoding) and encoded by End in one pass with their keys encoded in
// advance. They are the only attributes a span has.
//
// Many values come from the client (user_agent.original, url.path, the
// gRPC service and method, error texts): a value is cut to
// MaxAttributeValueLength bytes, as the OpenTelemetry SDK's
// AttributeValueLengthLimit does, and invalid UTF-8 in it is replaced
// with U+FFFD. OTLP's strings are protobuf strings, which a receiver
// decoding them with the protobuf runtime (the collector, Jaeger) checks:
// one span with invalid UTF-8 would make it refuse the whole batch. A
// value that is valid and short enough, the usual case, costs one scan
// and no allocation.

// Attr names a well-known string attribute.
type Attr uint8

// The well-known string attributes (OpenTelemetry's HTTP and RPC semantic
// conventions, and meshgate's).
const (
	AttrHTTPMethod Attr = iota
	AttrHTTPMethodOriginal
	AttrURLScheme
	AttrURLPath
	AttrHTTPRoute
	AttrServerAddress
	AttrNetworkPeerAddress
	AttrClientAddress
	AttrUserAgent
	AttrNetworkProtocolVersion
	AttrRPCSystem
	AttrRPCService
	AttrRPCMethod
	AttrErrorType
	AttrRoute
	AttrUpstream
	AttrCaller
	AttrAuthzDecision
	// AttrConsumer is the authenticated consumer of an edge's route, for
	// the authentication middleware to set (through SpanFromContext) once
	// there is one; nothing sets it yet.
	AttrConsumer
	// AttrCall names a policy's own call (a composite's part) on its
	// client spans: ROUTE/CALL, so that two calls to one upstream are told
	// apart.
	AttrCall
	numAttrs
)

// IntAttr names a well-known integer attribute.
type IntAttr uint8

// The well-known integer attributes.
const (
	AttrServerPort IntAttr = iota
	AttrHTTPStatusCode
	AttrHTTPResendCount
	AttrRPCGRPCStatusCode
	numIntAttrs
)

var attrKeys = [numAttrs]string{
	AttrHTTPMethod:             "http.request.method",
	AttrHTTPMethodOriginal:     "http.request.method_original",
	AttrURLScheme:              "url.scheme",
	AttrURLPath:                "url.path",
	AttrHTTPRoute:              "http.route",
	AttrServerAddress:          "server.address",
	AttrNetworkPeerAddress:     "network.peer.address",
	AttrClientAddress:          "client.address",
	AttrUserAgent:              "user_agent.original",
	AttrNetworkProtocolVersion: "network.protocol.version",
	AttrRPCSystem:              "rpc.system",
	AttrRPCService:             "rpc.service",
	AttrRPCMethod:              "rpc.method",
	AttrErrorType:              "error.type",
	AttrRoute:                  "meshgate.route",
	AttrUpstream:               "meshgate.upstream",
	AttrCaller:                 "meshgate.caller",
	AttrAuthzDecision:          "meshgate.authz.decision",
	AttrConsumer:               "meshgate.consumer",
	AttrCall:                   "meshgate.call",
}

var intAttrKeys = [numIntAttrs]string{
	AttrServerPort:        "server.port",
	AttrHTTPStatusCode:    "http.response.status_code",
	AttrHTTPResendCount:   "http.request.resend_count",
	AttrRPCGRPCStatusCode: "rpc.grpc.status_code",
}

// Key is the attribute's name.
func (a Attr) Key() string { return attrKeys[a] }

// Key is the attribute's name.
func (a IntAttr) Key() string { return intAttrKeys[a] }

// The keys' encodings, KeyValue.key (field 1) with its tag and length.
var (
	attrKeyEnc    [numAttrs]string
	intAttrKeyEnc [numIntAttrs]string
)

func init() {
	for i, k := range attrKeys {
		attrKeyEnc[i] = string(appendStr(nil, tag(1, tagLen), k))
	}
	for i, k := range intAttrKeys {
		intAttrKeyEnc[i] = string(appendStr(nil, tag(1, tagLen), k))
	}
}

// wellKnown holds a span's well-known attributes until End.
type wellKnown struct {
	strs   [numAttrs]string
	ints   [numIntAttrs]int64
	strSet uint32 // bit a: strs[a] is set
	intSet uint8  // bit a: ints[a] is set
}

// Set sets a well-known string attribute (again: replaces it). The value
// is cut to MaxAttributeValueLength bytes and made valid UTF-8 (when the
// span ends).
func (s *Span) Set(a Attr, v string) {
	if s.Recording() {
		s.std.strs[a] = v
		s.std.strSet |= 1 << a
	}
}

// SetInt64 sets a well-known integer attribute (again: replaces it).
func (s *Span) SetInt64(a IntAttr, v int64) {
	if s.Recording() {
		s.std.ints[a] = v
		s.std.intSet |= 1 << a
	}
}

// appendWellKnown encodes the well-known attributes that are set.
func appendWellKnown(b []byte, w *wellKnown) []byte {
	for a := Attr(0); a < numAttrs; a++ {
		if w.strSet&(1<<a) == 0 {
			continue
		}
		key, v := attrKeyEnc[a], w.strs[a]
		if !isAttrValue(v) {
			v = clipValue(v, MaxAttributeValueLength)
		}
		val := sizeLen(len(v))
		b = append(b, tag(9, tagLen))
		b = appendVarint(b, uint64(len(key)+sizeLen(val)))
		b = append(b, key...)
		b = append(b, tag(2, tagLen))
		b = appendVarint(b, uint64(val))
		b = append(b, tag(1, tagLen))
		b = appendVarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	for a := IntAttr(0); a < numIntAttrs; a++ {
		if w.intSet&(1<<a) == 0 {
			continue
		}
		key, v := intAttrKeyEnc[a], uint64(w.ints[a])
		val := 1 + sizeVarint(v)
		b = append(b, tag(9, tagLen))
		b = appendVarint(b, uint64(len(key)+sizeLen(val)))
		b = append(b, key...)
		b = append(b, tag(2, tagLen), byte(val), tag(3, tagVarint))
		b = appendVarint(b, v)
	}
	return b
}

// MaxAttributeValueLength bounds the string values of span attributes
// and event attributes, in bytes; a longer value is cut at a character
// boundary.
const MaxAttributeValueLength = 1024

// attrValue is v as an attribute value: at most MaxAttributeValueLength
// bytes of valid UTF-8. It is v itself when v is both already.
func attrValue(v string) string {
	if !isAttrValue(v) {
		v = clipValue(v, MaxAttributeValueLength)
	}
	return v
}

// isAttrValue reports whether v is an attribute value as it is: valid
// UTF-8 of at most MaxAttributeValueLength bytes. Most values are short
// and ASCII: a byte loop checks them faster than utf8.ValidString.
func isAttrValue(v string) bool {
	if len(v) >= 16 {
		return len(v) <= MaxAttributeValueLength && utf8.ValidString(v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return utf8.ValidString(v)
		}
	}
	return true
}

// validUTF8 is v with invalid UTF-8 replaced with U+FFFD (v itself when it
// is valid), for names, which are not cut.
func validUTF8(v string) string {
	if !isUTF8(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return v
}

// isUTF8 is utf8.ValidString, faster on short ASCII strings.
func isUTF8(v string) bool {
	if len(v) >= 16 {
		return utf8.ValidString(v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return utf8.ValidString(v)
		}
	}
	return true
}

// clipValue makes v valid UTF-8 of at most limit bytes (limit ≥
// utf8.UTFMax), cutting it at a character boundary.
func clipValue(v string, limit int) string {
	if len(v) > limit {
		// Cut first, so that a huge invalid value is not copied whole; a
		// character this cuts in two is replaced below.
		v = v[:runeCut(v, limit)]
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
		if len(v) > limit { // U+FFFD is 3 bytes, for as little as 1
			v = v[:runeCut(v, limit)]
		}
	}
	return v
}

// runeCut is the largest n' ≤ n at which v (len(v) > n) can be cut without
// splitting a character: at most utf8.UTFMax-1 bytes before n.
func runeCut(v string, n int) int {
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(v[i]) {
			return i
		}
	}
	return n // not UTF-8 there: any cut will do
}

// SplitHostPort splits "host:port", "[v6]:port", "host", "[v6]" or a bare
// IPv6 address without allocating, for server.address and server.port;
// port is 0 when absent or not a port number.
func SplitHostPort(addr string) (host string, port int) {
	colon := strings.LastIndexByte(addr, ':')
	if colon < 0 || colon < strings.LastIndexByte(addr, ']') {
		return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), 0
	}
	if strings.IndexByte(addr[:colon], ':') >= 0 && !strings.HasPrefix(addr, "[") {
		return addr, 0 // a bare IPv6 address
	}
	port, err := strconv.Atoi(addr[colon+1:])
	if err != nil || port < 0 || port > 65535 {
		port = 0
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr[:colon], "["), "]"), port
}

// GRPCMethod splits a gRPC path, /package.Service/Method, into the
// rpc.service and rpc.method of its spans.
func GRPCMethod(path string) (service, method string, ok bool) {
	if len(path) < 2 || path[0] != '/' {
		return "", "", false
	}
	i := strings.LastIndexByte(path, '/')
	if i <= 1 || i == len(path)-1 {
		return "", "", false
	}
	return path[1:i], path[i+1:], true
}
