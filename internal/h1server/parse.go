package h1server

import (
	"bufio"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// reqError is a request the server refuses itself. status 0 means "close
// silently" (the client went away mid-head).
type reqError struct {
	status int
	reason string
}

func (e *reqError) Error() string { return e.reason }

func bad(reason string) *reqError { return &reqError{http.StatusBadRequest, reason} }

var (
	errBareLF        = bad("bare LF line ending")
	errLeadingCRLF   = bad("too many empty lines before request line")
	errRequestLine   = bad("malformed request line")
	errMethod        = bad("invalid method")
	errTarget        = bad("invalid request target")
	errAsterisk      = bad("asterisk target only allowed for OPTIONS")
	errVersion       = bad("malformed HTTP version")
	errPercent       = bad("invalid percent-encoding in path")
	errObsFold       = bad("obs-fold in headers")
	errHeaderLine    = bad("malformed header line")
	errHeaderSpace   = bad("whitespace before colon in header")
	errHeaderName    = bad("invalid header name")
	errHeaderValue   = bad("invalid character in header value")
	errCLAndTE       = bad("both Content-Length and Transfer-Encoding")
	errMultiCL       = bad("multiple Content-Length headers")
	errBadCL         = bad("invalid Content-Length")
	errMultiTE       = bad("multiple Transfer-Encoding headers")
	errBadTE         = bad("unsupported Transfer-Encoding")
	errTE10          = bad("Transfer-Encoding in HTTP/1.0 request")
	errNoHost        = bad("missing Host header")
	errMultiHost     = bad("multiple Host headers")
	errBadHost       = bad("invalid Host")
	errBadTrailerKey = bad("invalid Trailer header")
	errTooLarge      = &reqError{http.StatusRequestHeaderFieldsTooLarge, "headers too large"}
	errHTTPVersion   = &reqError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
	errConnect       = &reqError{http.StatusMethodNotAllowed, "CONNECT not supported"}
	errExpect        = &reqError{http.StatusExpectationFailed, "unsupported Expect"}
	errHeadTimeout   = &reqError{http.StatusRequestTimeout, "request header timeout"}
	errHeadEOF       = &reqError{0, "connection closed mid-head"}
)

// readHead reads the request head up to and including its empty line into
// c.head. Every line must end in CRLF. Up to maxLeadingCRLF empty lines before
// the request line are skipped.
func (c *conn) readHead() *reqError {
	max := c.srv.maxHeaderBytes()
	c.head = c.head[:0]
	lineStart := 0
	leading := 0
	for {
		frag, err := c.br.ReadSlice('\n')
		if len(c.head)+len(frag) > max {
			return errTooLarge
		}
		c.head = append(c.head, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return errHeadTimeout
			}
			return errHeadEOF
		}
		line := c.head[lineStart:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return errBareLF
		}
		if len(line) == 2 {
			if lineStart != 0 {
				return nil
			}
			if leading++; leading > maxLeadingCRLF {
				return errLeadingCRLF
			}
			c.head = c.head[:0]
			continue
		}
		lineStart = len(c.head)
	}
}

// readRequest reads and parses one request head and builds the request.
func (c *conn) readRequest() (*request, *http.Request, *reqError) {
	if err := c.readHead(); err != nil {
		return nil, nil, err
	}
	rq := new(request)
	req, err := c.parse(rq, string(c.head))
	if len(c.head) > 64<<10 {
		c.head = nil // do not keep a huge buffer for the connection's life
	}
	if err != nil {
		return nil, nil, err
	}
	return rq, req, nil
}

// pathNeedsRaw reports whether url.URL.EscapedPath of the decoded path would
// differ from the raw one unless RawPath is set: the raw path holds '%' or a
// byte that url escapes in paths.
var pathNeedsRaw = func() (t [256]bool) {
	for i := range t {
		c := byte(i)
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.~$&+,/:;=@", c) >= 0:
		default:
			t[i] = true
		}
	}
	return t
}()

func internMethod(m string) string {
	switch m {
	case "GET":
		return http.MethodGet
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "HEAD":
		return http.MethodHead
	case "OPTIONS":
		return http.MethodOptions
	case "PATCH":
		return http.MethodPatch
	}
	return m
}

// parse parses head (request line, header lines, empty line; all CRLF
// terminated, as readHead guarantees) into a request.
func (c *conn) parse(rq *request, head string) (*http.Request, *reqError) {
	i := strings.IndexByte(head, '\n')
	line, rest := head[:i-1], head[i+1:]

	// Request line: method SP target SP version.
	sp1 := strings.IndexByte(line, ' ')
	if sp1 < 0 {
		return nil, errRequestLine
	}
	method := line[:sp1]
	sp2 := strings.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return nil, errRequestLine
	}
	target := line[sp1+1 : sp1+1+sp2]
	proto := line[sp1+2+sp2:]
	if method == "" {
		return nil, errRequestLine
	}
	if target == "" {
		return nil, errTarget
	}
	for i := 0; i < len(method); i++ {
		if !isToken[method[i]] {
			return nil, errMethod
		}
	}
	method = internMethod(method)
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
		minor = 0
	default:
		if len(proto) == 8 && strings.HasPrefix(proto, "HTTP/") && isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]) {
			return nil, errHTTPVersion
		}
		return nil, errVersion
	}
	if method == "CONNECT" {
		return nil, errConnect
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f || b == '#' {
			return nil, errTarget
		}
	}

	u := &rq.url
	var host string
	absolute := false
	switch {
	case target[0] == '/':
		if err := setPath(u, target); err != nil {
			return nil, err
		}
	case target == "*":
		if method != http.MethodOptions {
			return nil, errAsterisk
		}
		u.Path = "*"
	default:
		var ok bool
		if host, ok = parseAbsolute(u, target); !ok {
			return nil, errTarget
		}
		absolute = true
	}

	// Header section.
	n := strings.Count(rest, "\n") - 1
	strs := rq.strs[:]
	if n > len(strs) {
		strs = make([]string, n)
	}
	h := make(http.Header, n)
	var (
		hostCount, clCount, teCount int
		hostVal, clVal, teVal       string
		expect, trailerDecl         string
		connClose, connKeepAlive    bool
		haveExpect                  bool
	)
	for k := 0; ; k++ {
		j := strings.IndexByte(rest, '\n')
		line, rest = rest[:j-1], rest[j+1:]
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, errObsFold
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, errHeaderLine
		}
		name := line[:colon]
		for i := 0; i < len(name); i++ {
			if !isToken[name[i]] {
				if b := name[len(name)-1]; b == ' ' || b == '\t' {
					return nil, errHeaderSpace
				}
				return nil, errHeaderName
			}
		}
		value := line[colon+1:]
		for i := 0; i < len(value); i++ {
			if !validFieldValueByte(value[i]) {
				return nil, errHeaderValue
			}
		}
		value = trimOWS(value)
		key := canonicalKey(name, &c.keyScratch)
		switch key {
		case "Host":
			hostCount++
			hostVal = value
			continue // r.Host, as net/http
		case "Transfer-Encoding":
			teCount++
			teVal = value
			continue // r.TransferEncoding, as net/http
		case "Content-Length":
			clCount++
			clVal = value
		case "Connection":
			forEachToken(value, func(t string) {
				if asciiEqualFold(t, "close") {
					connClose = true
				} else if asciiEqualFold(t, "keep-alive") {
					connKeepAlive = true
				}
			})
		case "Expect":
			haveExpect = true
			expect = value
		case "Trailer":
			if trailerDecl == "" {
				trailerDecl = value
			} else {
				trailerDecl += "," + value
			}
		}
		if v := h[key]; v != nil {
			h[key] = append(v, value)
		} else {
			strs[k] = value
			h[key] = strs[k : k+1 : k+1]
		}
	}

	switch {
	case hostCount > 1:
		return nil, errMultiHost
	case hostCount == 0 && minor == 1:
		return nil, errNoHost
	case !validHost(hostVal):
		return nil, errBadHost
	}
	if !absolute {
		host = hostVal
	}

	// Message framing (RFC 9112 §6), strictly.
	var contentLength int64
	chunked := false
	switch {
	case teCount > 0 && clCount > 0:
		return nil, errCLAndTE
	case teCount > 1:
		return nil, errMultiTE
	case teCount == 1:
		if minor == 0 {
			return nil, errTE10
		}
		if !asciiEqualFold(teVal, "chunked") {
			return nil, errBadTE
		}
		chunked = true
		contentLength = -1
	case clCount > 1:
		return nil, errMultiCL
	case clCount == 1:
		var ok bool
		if contentLength, ok = parseContentLength(clVal); !ok {
			return nil, errBadCL
		}
	}

	expectContinue := false
	if haveExpect && minor == 1 {
		if !asciiEqualFold(expect, "100-continue") {
			return nil, errExpect
		}
		expectContinue = true
	}

	var trailer http.Header
	if chunked && trailerDecl != "" {
		trailer = make(http.Header)
		var bad bool
		forEachToken(trailerDecl, func(t string) {
			k := http.CanonicalHeaderKey(t)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				bad = true
			}
			trailer[k] = nil
		})
		if bad {
			return nil, errBadTrailerKey
		}
	}

	reqClose := connClose || minor == 0 && !connKeepAlive
	rq.w.init(c, rq, method == http.MethodHead, minor, reqClose)

	tmpl := http.Request{
		Method:        method,
		URL:           u,
		ProtoMajor:    1,
		ProtoMinor:    minor,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: contentLength,
		Close:         reqClose,
		Host:          host,
		Trailer:       trailer,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    target,
		TLS:           c.tlsState,
	}
	if proto == "HTTP/1.1" {
		tmpl.Proto = "HTTP/1.1"
	} else {
		tmpl.Proto = "HTTP/1.0"
	}
	if chunked {
		tmpl.TransferEncoding = []string{"chunked"}
	}
	if chunked || contentLength > 0 {
		rq.body.init(c, rq, chunked, contentLength, expectContinue)
		tmpl.Body = &rq.body
	}
	req := tmpl.WithContext(c.ctx)
	rq.req = req
	rq.w.req = req
	return req, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// parseContentLength accepts 1 to 18 ASCII digits.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// setPath sets u's Path, RawPath and RawQuery from an origin-form target.
func setPath(u *url.URL, target string) *reqError {
	path := target
	if q := strings.IndexByte(target, '?'); q >= 0 {
		path, u.RawQuery = target[:q], target[q+1:]
		u.ForceQuery = u.RawQuery == ""
	}
	needsRaw, hasPct := false, false
	for i := 0; i < len(path); i++ {
		if pathNeedsRaw[path[i]] {
			needsRaw = true
			if path[i] == '%' {
				hasPct = true
				break
			}
		}
	}
	if hasPct {
		p, err := url.PathUnescape(path)
		if err != nil {
			return errPercent
		}
		u.Path, u.RawPath = p, path
	} else {
		u.Path = path
		if needsRaw {
			u.RawPath = path
		}
	}
	return nil
}

// parseAbsolute parses an absolute-form target (http or https scheme) into
// u and returns the authority.
func parseAbsolute(u *url.URL, target string) (string, bool) {
	var rest string
	switch {
	case len(target) > 7 && asciiEqualFold(target[:7], "http://"):
		u.Scheme, rest = "http", target[7:]
	case len(target) > 8 && asciiEqualFold(target[:8], "https://"):
		u.Scheme, rest = "https", target[8:]
	default:
		return "", false
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	host := rest[:end]
	if host == "" || strings.IndexByte(host, '@') >= 0 || !validHost(host) {
		return "", false
	}
	u.Host = host
	path := rest[end:]
	if path == "" || path[0] == '?' {
		path = "/" + path
	}
	if setPath(u, path) != nil {
		return "", false
	}
	return host, true
}
