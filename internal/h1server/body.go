package h1server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// request is everything allocated per request besides the *http.Request,
// its header map and the head string, in one allocation.
type request struct {
	url  url.URL
	w    response
	body body
	req  *http.Request
	strs [16]string // backing for header values
}

var (
	errChunkSize    = errors.New("h1server: malformed chunk size line")
	errChunkEnd     = errors.New("h1server: missing CRLF after chunk data")
	errChunkTrailer = errors.New("h1server: malformed chunked trailer section")
)

const (
	chunkSize = iota // expecting a chunk-size line
	chunkData        // inside chunk data, remaining bytes left
	chunkCRLF        // expecting the CRLF after chunk data
	chunkDone
)

// body reads a request body framed by Content-Length or strictly decoded
// from chunked encoding. It is only valid while the handler runs.
type body struct {
	c              *conn
	rq             *request
	chunked        bool
	expectContinue bool
	// mu serializes reads: a handler may hand the body to another goroutine
	// (a proxy's transport) that is still reading when the handler returns.
	mu           sync.Mutex
	closed       atomic.Bool // Close called or request finished
	state        int
	remaining    int64 // Content-Length left, or current chunk left
	err          error // sticky: io.EOF or a read/format error
	trailerBytes int
}

func (b *body) init(c *conn, rq *request, chunked bool, cl int64, expectContinue bool) {
	b.c, b.rq, b.chunked, b.expectContinue = c, rq, chunked, expectContinue
	b.remaining = cl
	if chunked {
		b.remaining = 0
	}
}

// failed reports whether reading stopped on an error other than EOF (the
// connection's framing can no longer be trusted).
func (b *body) failed() bool { return b.err != nil && b.err != io.EOF }

func (b *body) Close() error {
	b.closed.Store(true)
	return nil
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	b.c.readingBody = true
	n, err := b.read(p)
	b.c.readingBody = false
	var ne net.Error
	if err != nil && err != io.EOF && b.c.srv.BodyReadTimeout > 0 && errors.As(err, &ne) && ne.Timeout() {
		b.err = ErrBodyTimeout // the framing is lost: the connection closes
		return n, ErrBodyTimeout
	}
	return n, err
}

// ErrBodyTimeout is a body read that waited BodyReadTimeout for a byte. It
// is a net.Error whose Timeout is true.
var ErrBodyTimeout error = bodyTimeout{}

type bodyTimeout struct{}

func (bodyTimeout) Error() string   { return "h1server: request body timed out" }
func (bodyTimeout) Timeout() bool   { return true }
func (bodyTimeout) Temporary() bool { return false }

// read is Read with b.mu held.
func (b *body) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.expectContinue {
		b.expectContinue = false
		b.rq.w.writeContinue()
	}
	if !b.chunked {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err := b.c.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.err = io.EOF
			return n, io.EOF
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			b.err = err
		}
		return n, err
	}
	for {
		switch b.state {
		case chunkSize:
			if err := b.readChunkSize(); err != nil {
				if b.state == chunkDone {
					return 0, io.EOF
				}
				return 0, b.fail(err)
			}
		case chunkData:
			if int64(len(p)) > b.remaining {
				p = p[:b.remaining]
			}
			n, err := b.c.br.Read(p)
			b.remaining -= int64(n)
			if b.remaining == 0 {
				b.state = chunkCRLF
				// Consume the CRLF (and a following last chunk) now if
				// buffered, so the final data read can report io.EOF.
				if b.c.br.Buffered() >= 2 {
					if err := b.readCRLF(); err != nil {
						return n, b.fail(err)
					}
					if b.c.br.Buffered() >= 5 {
						if nx, _ := b.c.br.Peek(5); string(nx) == "0\r\n\r\n" {
							b.c.br.Discard(5)
							b.state = chunkDone
							b.err = io.EOF
							return n, io.EOF
						}
					}
				}
			}
			if err != nil {
				return n, b.fail(err)
			}
			return n, nil
		case chunkCRLF:
			if err := b.readCRLF(); err != nil {
				return 0, b.fail(err)
			}
		case chunkDone:
			return 0, io.EOF
		}
	}
}

func (b *body) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return err
}

func (b *body) readCRLF() error {
	br := b.c.br
	c1, err := br.ReadByte()
	if err != nil {
		return err
	}
	c2, err := br.ReadByte()
	if err != nil {
		return err
	}
	if c1 != '\r' || c2 != '\n' {
		return errChunkEnd
	}
	b.state = chunkSize
	return nil
}

// readChunkSize reads "hex-size [BWS ; ext] CRLF". A zero size reads the
// trailer section and ends the body.
func (b *body) readChunkSize() error {
	line, err := b.c.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return errChunkSize
		}
		return err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return errChunkSize
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		v, ok := unhex(line[i])
		if !ok {
			break
		}
		if i >= 15 {
			return errChunkSize
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return errChunkSize
	}
	if ext := line[i:]; len(ext) > 0 {
		j := 0
		for j < len(ext) && (ext[j] == ' ' || ext[j] == '\t') {
			j++
		}
		if j == len(ext) || ext[j] != ';' {
			return errChunkSize
		}
		for _, c := range ext[j:] {
			if !validFieldValueByte(c) {
				return errChunkSize
			}
		}
	}
	if size > 0 {
		b.remaining = size
		b.state = chunkData
		return nil
	}
	if err := b.readTrailers(); err != nil {
		return err
	}
	b.state = chunkDone
	b.err = io.EOF
	return io.EOF
}

// readTrailers parses the trailer section into r.Trailer with the same rules
// as the header section.
func (b *body) readTrailers() error {
	max := b.c.srv.maxHeaderBytes()
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return errChunkTrailer
			}
			return err
		}
		if b.trailerBytes += len(line); b.trailerBytes > max {
			return errChunkTrailer
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return errChunkTrailer
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errChunkTrailer
		}
		colon := -1
		for i, c := range line {
			if c == ':' {
				colon = i
				break
			}
			if !isToken[c] {
				return errChunkTrailer
			}
		}
		if colon <= 0 {
			return errChunkTrailer
		}
		for _, c := range line[colon+1:] {
			if !validFieldValueByte(c) {
				return errChunkTrailer
			}
		}
		key := http.CanonicalHeaderKey(string(line[:colon]))
		switch key {
		case "Content-Length", "Transfer-Encoding", "Host", "Trailer":
			continue
		}
		req := b.rq.req
		if req.Trailer == nil {
			req.Trailer = make(http.Header)
		}
		req.Trailer[key] = append(req.Trailer[key], trimOWS(string(line[colon+1:])))
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// discardWaits reports whether discardRest would wait for the client to
// send more of the body: the rest may be dropped to keep the connection
// and has not all arrived in the connection's buffer (a chunked body's end
// is not known until it is read). When it would not wait, it either drops
// what is buffered or gives up at once (a body too large, or one the
// client waits to send for a 100 Continue it never got). b.mu is held.
func (b *body) discardWaits() bool {
	if b.err != nil || b.expectContinue {
		return false
	}
	if b.chunked {
		return true
	}
	return b.remaining <= maxPostHandlerRd && b.remaining > int64(b.c.br.Buffered())
}

// discardRest reads and drops what the handler left of the body, up to
// maxPostHandlerRd. It reports whether the connection can be kept. b.mu is
// held.
func (b *body) discardRest() bool {
	if b.err == io.EOF {
		return true
	}
	if b.err != nil {
		return false
	}
	if b.expectContinue {
		// The client waits for 100 Continue before sending the body; it
		// never got one, so we cannot know whether the body will follow.
		return false
	}
	b.c.setPhase(phaseDiscard)
	if !b.chunked {
		if b.remaining > maxPostHandlerRd {
			return false
		}
		n, err := b.c.br.Discard(int(b.remaining))
		b.remaining -= int64(n)
		if err != nil {
			b.err = err
			return false
		}
		b.err = io.EOF
		return true
	}
	var scratch [2048]byte
	total := 0
	for total <= maxPostHandlerRd {
		n, err := b.read(scratch[:])
		total += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
