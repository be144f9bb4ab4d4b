package telemetry

// Well-known attributes. The proxy sets the same few attributes on every
// span: they are stored as plain fields while the request runs (a store,
// no encoding) and encoded by End in one pass with their keys encoded in
// advance. Other attributes go through SetString and friends.

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

// Set sets a well-known string attribute (again: replaces it).
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
