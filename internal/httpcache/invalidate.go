package httpcache

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// InvalidatesOnUnsafe reports whether a response to a request with this
// method invalidates the stored responses for the target URI (RFC 9111
// §4.4): the method is unsafe, or of unknown safety, and the status is a
// non-error one, 2xx or 3xx. The safe methods are GET, HEAD, OPTIONS and
// TRACE (RFC 9110 §9.2.1); method names are case-sensitive (§9.1), so "get"
// is an unknown method and unsafe.
func InvalidatesOnUnsafe(method string, status int) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return status >= 200 && status < 400
}

// InvalidationTargets lists what to invalidate after InvalidatesOnUnsafe
// said so, as RequestTarget strings: the target URI first, then the URIs of
// the response's Location and Content-Location (resolved against the
// target), which §4.4 names as candidates, each only if it has the target's
// origin (scheme, host and port; §4.4 forbids invalidating another origin's
// URIs, which would let one origin flush another's entries). Duplicates
// are listed once.
//
// reqURL is the absolute target URI (scheme and host set). If it has no
// host, as a server request's URL has not, only relative Location and
// Content-Location values can be shown to share its origin, and absolute
// ones are left out.
func InvalidationTargets(reqURL *url.URL, respHeader http.Header) []string {
	targets := []string{RequestTarget(reqURL)}
	origin := originOf(reqURL)
	for _, name := range []string{"Location", "Content-Location"} {
		v, ok := firstValue(respHeader.Values(name))
		if !ok || v == "" {
			continue
		}
		ref, err := url.Parse(v)
		if err != nil {
			continue
		}
		u := reqURL.ResolveReference(ref)
		if originOf(u) != origin {
			continue
		}
		if t := RequestTarget(u); !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	return targets
}

// originOf is the URI's origin (RFC 9110 §4.3.1) in comparable form:
// lower-cased scheme and host, and the port with the scheme's default
// filled in.
func originOf(u *url.URL) string {
	scheme := lowerASCII(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(lowerASCII(u.Hostname()), port)
}

// RequestTarget is the URI's path and query in a normal form (RFC 3986
// §6.2.2, RFC 9110 §4.2.3): percent-encodings of unreserved characters
// decoded and the others' hex digits upper-cased, dot segments removed, and
// an empty path made "/". A present but empty query ("/a?") is kept, as RFC
// 3986 §6.2.3 does not make it equivalent to none. The fragment is dropped.
// The cache stage keys its entries with it (together with the host and the
// method), so that InvalidationTargets names exactly those entries.
func RequestTarget(u *url.URL) string {
	path := u.EscapedPath()
	if u.Opaque != "" {
		path = u.Opaque
	}
	path = removeDotSegments(normalizePercent(path))
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if u.RawQuery != "" || u.ForceQuery {
		return path + "?" + normalizePercent(u.RawQuery)
	}
	return path
}

// normalizePercent decodes percent-encoded unreserved characters (RFC 3986
// §2.3: ALPHA, DIGIT, "-", ".", "_", "~"), which are equivalent to the
// characters themselves, and upper-cases the hex digits of the others
// (§6.2.2.1). A '%' not followed by two hex digits is left alone.
func normalizePercent(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			b.WriteByte(s[i])
			continue
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(s[i+1 : i+3]))
		}
		i += 2
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments is RFC 3986 §5.2.4's algorithm, on an already
// percent-normalized path (so that "%2E" segments are dots by then).
func removeDotSegments(in string) string {
	var out []string // each output segment with its leading "/", if any
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = out[:max(len(out)-1, 0)]
		case in == "/..":
			in = "/"
			out = out[:max(len(out)-1, 0)]
		case in == "." || in == "..":
			in = ""
		default:
			i := strings.IndexByte(in[1:], '/') + 1
			if i == 0 {
				i = len(in)
			}
			out = append(out, in[:i])
			in = in[i:]
		}
	}
	return strings.Join(out, "")
}
