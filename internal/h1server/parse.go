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

// parsedHead carries what parse has learned from a request head from one
// step to the next. It lives on parse's stack.
type parsedHead struct {
	// Request line.
	method, target string
	minor          int

	// Request target: host is the authority of an absolute-form target,
	// replaced by the Host header's value otherwise.
	host     string
	absolute bool

	// Header fields the server interprets itself.
	hostCount, clCount, teCount int
	hostVal, clVal, teVal       string
	expect, trailerDecl         string
	connClose, connKeepAlive    bool
	haveExpect                  bool

	// Framing and body setup.
	contentLength  int64
	chunked        bool
	expectContinue bool
	trailer        http.Header
}

// parse parses head (request line, header lines, empty line; all CRLF
// terminated, as readHead guarantees) into a request.
func (c *conn) parse(rq *request, head string) (*http.Request, *reqError) {
	i := strings.IndexByte(head, '\n')
	line, rest := head[:i-1], head[i+1:]

	var p parsedHead
	if err := p.parseRequestLine(line); err != nil {
		return nil, err
	}
	if err := p.parseTarget(&rq.url); err != nil {
		return nil, err
	}
	h, err := c.parseHeaderFields(rq, &p, rest)
	if err != nil {
		return nil, err
	}
	if err := p.checkHost(); err != nil {
		return nil, err
	}
	if err := p.checkFraming(); err != nil {
		return nil, err
	}
	if err := p.checkExpect(); err != nil {
		return nil, err
	}
	if err := p.parseTrailerDecl(); err != nil {
		return nil, err
	}
	return c.newRequest(rq, &p, h), nil
}

// parseRequestLine parses the request line: method SP target SP version.
func (p *parsedHead) parseRequestLine(line string) *reqError {
	sp1 := strings.IndexByte(line, ' ')
	if sp1 < 0 {
		return errRequestLine
	}
	method := line[:sp1]
	sp2 := strings.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return errRequestLine
	}
	target := line[sp1+1 : sp1+1+sp2]
	proto := line[sp1+2+sp2:]
	if method == "" {
		return errRequestLine
	}
	if target == "" {
		return errTarget
	}
	for i := 0; i < len(method); i++ {
		if !isToken[method[i]] {
			return errMethod
		}
	}
	method = internMethod(method)
	switch proto {
	case "HTTP/1.1":
		p.minor = 1
	case "HTTP/1.0":
		p.minor = 0
	default:
		if len(proto) == 8 && strings.HasPrefix(proto, "HTTP/") && isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]) {
			return errHTTPVersion
		}
		return errVersion
	}
	if method == "CONNECT" {
		return errConnect
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f || b == '#' {
			return errTarget
		}
	}
	p.method, p.target = method, target
	return nil
}

// parseTarget parses the request target (origin, asterisk or absolute form)
// into u.
func (p *parsedHead) parseTarget(u *url.URL) *reqError {
	target := p.target
	switch {
	case target[0] == '/':
		if err := setPath(u, target); err != nil {
			return err
		}
	case target == "*":
		if p.method != http.MethodOptions {
			return errAsterisk
		}
		u.Path = "*"
	default:
		host, ok := parseAbsolute(u, target)
		if !ok {
			return errTarget
		}
		p.host, p.absolute = host, true
	}
	return nil
}

// parseHeaderFields parses the header section (rest: the head after the
// request line) into a header map backed by rq.strs, and records in p the
// fields the server interprets itself.
func (c *conn) parseHeaderFields(rq *request, p *parsedHead, rest string) (http.Header, *reqError) {
	n := strings.Count(rest, "\n") - 1
	strs := rq.strs[:]
	if n > len(strs) {
		strs = make([]string, n)
	}
	h := make(http.Header, n)
	for k := 0; ; k++ {
		j := strings.IndexByte(rest, '\n')
		var line string
		line, rest = rest[:j-1], rest[j+1:]
		if line == "" {
			break
		}
		name, value, err := splitHeaderField(line)
		if err != nil {
			return nil, err
		}
		key := canonicalKey(name, &c.keyScratch)
		switch key {
		case "Host":
			p.hostCount++
			p.hostVal = value
			continue // r.Host, as net/http
		case "Transfer-Encoding":
			p.teCount++
			p.teVal = value
			continue // r.TransferEncoding, as net/http
		case "Content-Length":
			p.clCount++
			p.clVal = value
		case "Connection":
			forEachToken(value, func(t string) {
				if asciiEqualFold(t, "close") {
					p.connClose = true
				} else if asciiEqualFold(t, "keep-alive") {
					p.connKeepAlive = true
				}
			})
		case "Expect":
			p.haveExpect = true
			p.expect = value
		case "Trailer":
			if p.trailerDecl == "" {
				p.trailerDecl = value
			} else {
				p.trailerDecl += "," + value
			}
		}
		if v := h[key]; v != nil {
			h[key] = append(v, value)
		} else {
			strs[k] = value
			h[key] = strs[k : k+1 : k+1]
		}
	}
	return h, nil
}

// splitHeaderField splits one header line (without its CRLF) into its name
// and its value trimmed of optional whitespace, refusing obs-fold,
// whitespace before the colon and invalid characters.
func splitHeaderField(line string) (name, value string, err *reqError) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", errObsFold
	}
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", errHeaderLine
	}
	name = line[:colon]
	for i := 0; i < len(name); i++ {
		if !isToken[name[i]] {
			if b := name[len(name)-1]; b == ' ' || b == '\t' {
				return "", "", errHeaderSpace
			}
			return "", "", errHeaderName
		}
	}
	value = line[colon+1:]
	for i := 0; i < len(value); i++ {
		if !validFieldValueByte(value[i]) {
			return "", "", errHeaderValue
		}
	}
	return name, trimOWS(value), nil
}

// checkHost refuses a repeated or invalid Host header, or a missing one in
// HTTP/1.1, and takes its value as the request's host unless the target was
// in absolute form.
func (p *parsedHead) checkHost() *reqError {
	switch {
	case p.hostCount > 1:
		return errMultiHost
	case p.hostCount == 0 && p.minor == 1:
		return errNoHost
	case !validHost(p.hostVal):
		return errBadHost
	}
	if !p.absolute {
		p.host = p.hostVal
	}
	return nil
}

// checkFraming decides the body's framing from Content-Length and
// Transfer-Encoding.
func (p *parsedHead) checkFraming() *reqError {
	// Message framing (RFC 9112 §6), strictly.
	switch {
	case p.teCount > 0 && p.clCount > 0:
		return errCLAndTE
	case p.teCount > 1:
		return errMultiTE
	case p.teCount == 1:
		if p.minor == 0 {
			return errTE10
		}
		if !asciiEqualFold(p.teVal, "chunked") {
			return errBadTE
		}
		p.chunked = true
		p.contentLength = -1
	case p.clCount > 1:
		return errMultiCL
	case p.clCount == 1:
		var ok bool
		if p.contentLength, ok = parseContentLength(p.clVal); !ok {
			return errBadCL
		}
	}
	return nil
}

// checkExpect accepts only Expect: 100-continue (ignored in HTTP/1.0).
func (p *parsedHead) checkExpect() *reqError {
	if p.haveExpect && p.minor == 1 {
		if !asciiEqualFold(p.expect, "100-continue") {
			return errExpect
		}
		p.expectContinue = true
	}
	return nil
}

// parseTrailerDecl builds the request's Trailer map from the Trailer header
// of a chunked request, refusing framing fields as trailers.
func (p *parsedHead) parseTrailerDecl() *reqError {
	if !p.chunked || p.trailerDecl == "" {
		return nil
	}
	trailer := make(http.Header)
	var bad bool
	forEachToken(p.trailerDecl, func(t string) {
		k := http.CanonicalHeaderKey(t)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			bad = true
		}
		trailer[k] = nil
	})
	if bad {
		return errBadTrailerKey
	}
	p.trailer = trailer
	return nil
}

// newRequest sets up rq's response writer and body and builds the request.
func (c *conn) newRequest(rq *request, p *parsedHead, h http.Header) *http.Request {
	reqClose := p.connClose || p.minor == 0 && !p.connKeepAlive
	rq.w.init(c, rq, p.method == http.MethodHead, p.minor, reqClose)

	tmpl := http.Request{
		Method:        p.method,
		URL:           &rq.url,
		ProtoMajor:    1,
		ProtoMinor:    p.minor,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: p.contentLength,
		Close:         reqClose,
		Host:          p.host,
		Trailer:       p.trailer,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    p.target,
		TLS:           c.tlsState,
	}
	if p.minor == 1 {
		tmpl.Proto = "HTTP/1.1"
	} else {
		tmpl.Proto = "HTTP/1.0"
	}
	if p.chunked {
		tmpl.TransferEncoding = []string{"chunked"}
	}
	if p.chunked || p.contentLength > 0 {
		rq.body.init(c, rq, p.chunked, p.contentLength, p.expectContinue)
		tmpl.Body = &rq.body
	}
	req := tmpl.WithContext(c.ctx)
	rq.req = req
	rq.w.req = req
	return req
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
