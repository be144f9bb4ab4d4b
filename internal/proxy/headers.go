package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
)

// hopHeaders are meaningful for one connection only and never forwarded
// (RFC 9110 §7.6.1), besides whatever a Connection header names.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Http2-Settings", // only meaningful with Upgrade: h2c, which is never forwarded
}

// teTrailersValue is shared: header values are replaced, never modified in
// place, and appending to a full slice copies it.
var teTrailersValue = []string{"trailers"}

// removeHopHeaders deletes hop-by-hop headers from h. "TE: trailers" is kept
// because gRPC needs it end to end.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			// X-Meshgate-* fields are meshgate's own (the verified caller
			// and consumer): a client cannot have them dropped.
			if name = strings.TrimSpace(name); name != "" && !reservedField(name) {
				h.Del(name)
			}
		}
	}
	teTrailers := false
	for _, v := range h["Te"] {
		if strings.Contains(strings.ToLower(v), "trailers") {
			teTrailers = true
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if teTrailers {
		h["Te"] = teTrailersValue
	}
}

// TrustedProxies decides whose X-Forwarded-*/Forwarded headers are believed.
type TrustedProxies struct{ prefixes []netip.Prefix }

// ParseTrustedProxies parses CIDRs or single addresses (validated by config).
func ParseTrustedProxies(list []string) TrustedProxies {
	var t TrustedProxies
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			t.prefixes = append(t.prefixes, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return t
}

func (t TrustedProxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the client: the peer, or, when the peer is
// a trusted proxy, the rightmost address in X-Forwarded-For that is not a
// trusted proxy. It also reports whether the peer is trusted.
func (t TrustedProxies) ClientIP(remoteAddr string, h http.Header) (string, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || len(t.prefixes) == 0 || !t.trusted(peer) {
		return host, false
	}
	xff := h["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return host, true // malformed: stop believing the chain here
			}
			if !t.trusted(a) {
				return a.Unmap().String(), true
			}
		}
	}
	return host, true
}

// setForwarded writes X-Forwarded-For/-Proto/-Host and Forwarded on the
// outbound headers. From an untrusted peer any client-supplied values are
// replaced; from a trusted one they are extended. vals (len 4) is the backing
// store of the new values, so the common case makes one allocation for all.
func setForwarded(out http.Header, in *http.Request, peerTrusted bool, proto string, vals []string) {
	peer, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		peer = in.RemoteAddr
	}
	if prior := in.Header["X-Forwarded-For"]; peerTrusted && len(prior) > 0 {
		vals[0] = strings.Join(prior, ", ") + ", " + peer
	} else {
		vals[0] = peer
	}
	out["X-Forwarded-For"] = vals[0:1:1]
	if !peerTrusted || out.Get("X-Forwarded-Proto") == "" {
		vals[1] = proto
		out["X-Forwarded-Proto"] = vals[1:2:2]
	}
	if !peerTrusted || out.Get("X-Forwarded-Host") == "" {
		vals[2] = in.Host
		out["X-Forwarded-Host"] = vals[2:3:3]
	}
	elem := "for=" + forwardedNode(peer) + ";host=" + quoteForwarded(in.Host) + ";proto=" + proto
	if prior := in.Header["Forwarded"]; peerTrusted && len(prior) > 0 {
		vals[3] = strings.Join(prior, ", ") + ", " + elem
	} else {
		vals[3] = elem
	}
	out["Forwarded"] = vals[3:4:4]
}

// forwardedNode formats an address per RFC 7239 §6 (IPv6 quoted, bracketed).
func forwardedNode(ip string) string {
	if strings.Contains(ip, ":") {
		return `"[` + ip + `]"`
	}
	return ip
}

func quoteForwarded(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '-' || c == '_' || c == '~' || c == ':' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')) {
			return strconv.Quote(s)
		}
	}
	return s
}

// RequestIDs makes unique request ids cheaply: a random per-process prefix and
// a counter, instead of reading the random source on every request.
type RequestIDs struct {
	prefix string
	n      atomic.Uint64
}

func NewRequestIDs() *RequestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &RequestIDs{prefix: hex.EncodeToString(b[:])}
}

func (g *RequestIDs) Next() string {
	var buf [16 + 1 + 16]byte
	n := copy(buf[:], g.prefix)
	buf[n] = '-'
	num := strconv.AppendUint(buf[n+1:n+1], g.n.Add(1), 16)
	return string(buf[:n+1+len(num)])
}

// ValidRequestID accepts client ids that are short and printable; anything
// else is replaced so that logs cannot be forged through it.
func ValidRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// reservedField reports whether name is an X-Meshgate-* field.
func reservedField(name string) bool {
	const prefix = "x-meshgate-"
	return len(name) > len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
}
