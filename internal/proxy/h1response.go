package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// maxResponseHead bounds an upstream's status line and headers.
const maxResponseHead = 64 << 10

var errResponseHead = errors.New("malformed upstream response head")

// readResponseHead reads one response head from br into a Response whose
// strings all point into one copy of the head: one allocation for the text,
// one for the header map, one for the values. It is strict where a proxy
// must be: a response with both Content-Length and Transfer-Encoding, or
// with conflicting lengths, is an error, so an upstream cannot desynchronize
// the connection.
func readResponseHead(br *bufio.Reader, method string) (*http.Response, error) {
	end, err := headEnd(br)
	if err != nil {
		return nil, err
	}
	raw, _ := br.Peek(end)
	head := string(raw)
	if _, err := br.Discard(end); err != nil {
		return nil, err
	}

	line, rest, _ := strings.Cut(head, "\r\n")
	resp := &http.Response{}
	if err := parseStatusLine(line, resp); err != nil {
		return nil, err
	}
	n := strings.Count(rest, "\n")
	resp.Header = make(http.Header, n)
	vals := make([]string, 0, n)
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || strings.ContainsAny(line[:colon], " \t") || line[0] == ' ' || line[0] == '\t' {
			return nil, errResponseHead // no name, space before colon, or obs-fold
		}
		key := textproto.CanonicalMIMEHeaderKey(line[:colon])
		value := strings.Trim(line[colon+1:], " \t")
		if prior, ok := resp.Header[key]; ok {
			resp.Header[key] = append(prior, value)
			continue
		}
		vals = append(vals, value)
		resp.Header[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return resp, framing(resp, method)
}

// headEnd returns the length of the head (through the blank line) buffered
// in br, reading more as needed.
func headEnd(br *bufio.Reader) (int, error) {
	for n := 1; ; {
		buf, err := br.Peek(n)
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return i + 4, nil
		}
		if err != nil {
			if err == bufio.ErrBufferFull || len(buf) >= maxResponseHead {
				return 0, errors.New("upstream response head too large")
			}
			if len(buf) > 0 && err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		n = br.Buffered()
		if n == len(buf) {
			n++ // nothing new buffered: block for more
		}
	}
}

func parseStatusLine(line string, resp *http.Response) error {
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return errResponseHead
	}
	switch proto {
	case "HTTP/1.1":
		resp.ProtoMinor = 1
	case "HTTP/1.0":
	default:
		return fmt.Errorf("unsupported upstream protocol %q", proto)
	}
	resp.Proto, resp.ProtoMajor = proto, 1
	code, _, _ := strings.Cut(status, " ")
	if len(code) != 3 {
		return errResponseHead
	}
	c, err := strconv.Atoi(code)
	if err != nil || c < 100 || c > 599 {
		return errResponseHead
	}
	resp.StatusCode, resp.Status = c, status
	return nil
}

// framing sets the body length and connection reuse of resp.
func framing(resp *http.Response, method string) error {
	h := resp.Header
	resp.Close = resp.ProtoMinor == 0
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "close":
				resp.Close = true
			case "keep-alive":
				if resp.ProtoMinor == 0 {
					resp.Close = false
				}
			}
		}
	}
	te, cl := h["Transfer-Encoding"], h["Content-Length"]
	if len(te) > 0 && len(cl) > 0 {
		return errors.New("upstream response has both Content-Length and Transfer-Encoding")
	}
	noBody := method == http.MethodHead || resp.StatusCode < 200 || resp.StatusCode == 204 || resp.StatusCode == 304
	switch {
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return fmt.Errorf("unsupported upstream transfer encoding %q", te)
		}
		delete(h, "Transfer-Encoding")
		resp.TransferEncoding = chunkedTE
		resp.ContentLength = -1
	case len(cl) > 0:
		for _, v := range cl[1:] {
			if v != cl[0] {
				return errors.New("upstream response has conflicting Content-Length")
			}
		}
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 || cl[0][0] == '+' {
			return errors.New("invalid upstream Content-Length")
		}
		resp.ContentLength = n
	default:
		resp.ContentLength = -1
		if !noBody {
			resp.Close = true // delimited by the end of the connection
		}
	}
	if noBody {
		resp.Body = http.NoBody
	}
	return nil
}

var chunkedTE = []string{"chunked"}

// bodyReader reads a response body framed as resp says, from br.
type bodyReader struct {
	br      *bufio.Reader
	resp    *http.Response
	left    int64 // bytes left of a Content-Length body, or of the chunk
	chunked bool
	// inChunk: chunk data was read, so its CRLF comes before the next size.
	inChunk bool
	eof     bool
	err     error
}

func (b *bodyReader) init(br *bufio.Reader, resp *http.Response) {
	*b = bodyReader{br: br, resp: resp, left: resp.ContentLength, chunked: resp.TransferEncoding != nil}
	if b.chunked {
		b.left = 0
	}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.chunked && b.left == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.eof {
			return 0, io.EOF
		}
	}
	if b.left >= 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	if b.left >= 0 {
		b.left -= int64(n)
		if b.left == 0 && !b.chunked {
			b.eof = true
			return n, io.EOF
		}
	}
	if err == io.EOF {
		if b.left > 0 || b.chunked {
			err = io.ErrUnexpectedEOF
		} else {
			b.eof = true // close-delimited body ends here
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// nextChunk reads the CRLF ending the previous chunk (if any), the next
// chunk-size line, and at the last chunk the trailer section.
func (b *bodyReader) nextChunk() error {
	if b.inChunk {
		if err := b.expectCRLF(); err != nil {
			return err
		}
		b.inChunk = false
	}
	line, err := b.line()
	if err != nil {
		return err
	}
	if i := strings.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions are ignored
	}
	if line == "" || len(line) > 16 {
		return errors.New("malformed upstream chunk size")
	}
	size, err := strconv.ParseUint(line, 16, 63)
	if err != nil {
		return errors.New("malformed upstream chunk size")
	}
	if size > 0 {
		b.left = int64(size)
		b.inChunk = true
		return nil
	}
	// Last chunk: trailers until the blank line.
	for {
		line, err := b.line()
		if err != nil {
			return err
		}
		if line == "" {
			b.eof = true
			return nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return errors.New("malformed upstream trailer")
		}
		if b.resp.Trailer == nil {
			b.resp.Trailer = http.Header{}
		}
		b.resp.Trailer.Add(k, strings.Trim(v, " \t"))
	}
}

func (b *bodyReader) expectCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(b.br, crlf[:]); err != nil {
		return io.ErrUnexpectedEOF
	}
	if crlf != [2]byte{'\r', '\n'} {
		return errors.New("malformed upstream chunk: no CRLF after data")
	}
	return nil
}

// line reads one CRLF-terminated line (without it) of at most 4 KiB.
func (b *bodyReader) line() (string, error) {
	s, err := b.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return "", io.ErrUnexpectedEOF
		}
		return "", errors.New("upstream chunk line too long")
	}
	if len(s) < 2 || s[len(s)-2] != '\r' {
		return "", errors.New("malformed upstream chunk line")
	}
	return string(s[:len(s)-2]), nil
}
