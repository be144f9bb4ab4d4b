package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/meshgate/meshgate/internal/exchange"
)

// RequestBufferBytes is how much of a request body the forwarder reads
// before it contacts the upstream (nginx's client_body_buffer_size is 8 or
// 16 KiB). A body that ends within it is checked whole — its framing, its
// length, the route's max_body_bytes — and refused before any byte reaches
// the upstream when it is wrong; it is then sent with a Content-Length, and
// can be sent again on a retry or to a fallback upstream. A larger body
// streams on: a later error in it aborts the upstream request.
const RequestBufferBytes = 16 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, RequestBufferBytes); return &b }}

// errBufferReleased is a read of a buffered prefix after its request ended
// (a transport still writing the abandoned attempt's body).
var errBufferReleased = errors.New("request body buffer released")

// BufferedBody is a request body read whole before forwarding. Later
// stages (a fallback upstream) may send it again: Replayable reports so.
type BufferedBody struct {
	data []byte
	r    bytes.Reader
}

func newBufferedBody(b []byte) *BufferedBody {
	bb := &BufferedBody{data: b}
	bb.r.Reset(b)
	return bb
}

func (b *BufferedBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *BufferedBody) Close() error               { return nil }

// Replayable reports that the body can be sent again: every forwarder reads
// it from its start.
func (b *BufferedBody) Replayable() bool { return true }

// Len is the body's length.
func (b *BufferedBody) Len() int { return len(b.data) }

// prefixBody is a body too large for the buffer: the bytes already read
// (in a pooled buffer), then the rest from the client. The buffer goes back
// to the pool once read, or when the request ends (release): a transport
// may still read an abandoned attempt's body after that, and gets an error.
type prefixBody struct {
	mu       sync.Mutex
	bp       *[]byte
	off, n   int
	rest     io.ReadCloser
	released bool
}

func (b *prefixBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.released {
		b.mu.Unlock()
		return 0, errBufferReleased
	}
	if b.bp != nil {
		m := copy(p, (*b.bp)[b.off:b.n])
		b.off += m
		if b.off == b.n {
			bodyBufs.Put(b.bp)
			b.bp = nil
		}
		b.mu.Unlock()
		return m, nil
	}
	b.mu.Unlock()
	return b.rest.Read(p)
}

func (b *prefixBody) Close() error { return b.rest.Close() }

func (b *prefixBody) release() {
	b.mu.Lock()
	b.released = true
	if b.bp != nil {
		bodyBufs.Put(b.bp)
		b.bp = nil
	}
	b.mu.Unlock()
}

// bufferBody reads up to RequestBufferBytes of r's body before anything is
// sent upstream. A body that ends within it replaces r.Body as a
// *BufferedBody (or http.NoBody when empty) and r.ContentLength becomes its
// length, unless the request declared trailers: it then stays chunked to
// carry them. A longer body becomes a *prefixBody, returned so that the
// caller releases it when the request is over. A body with a known length
// over the buffer is left to stream untouched. fail: the client's body is
// at fault (malformed, too large, stalled, cut short).
func bufferBody(r *http.Request, x *exchange.Exchange) (pre *prefixBody, fail *exchange.Kind) {
	if r.ContentLength > RequestBufferBytes {
		return nil, nil
	}
	bp := bodyBufs.Get().(*[]byte)
	buf := *bp
	n := 0
	var err error
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Body.Read(buf[n:])
		n += m
	}
	switch {
	case err == io.EOF:
		if x != nil {
			x.BytesIn = int64(n)
		}
		if n == 0 && len(r.Trailer) == 0 {
			r.Body, r.ContentLength = http.NoBody, 0
		} else {
			r.Body = newBufferedBody(bytes.Clone(buf[:n]))
			if len(r.Trailer) == 0 {
				r.ContentLength = int64(n)
			}
		}
		bodyBufs.Put(bp)
		return nil, nil
	case err != nil:
		bodyBufs.Put(bp)
		if x != nil {
			x.BytesIn = int64(n)
		}
		return nil, bodyFault(r, err)
	}
	pre = &prefixBody{bp: bp, n: n, rest: r.Body}
	r.Body = pre
	return pre, nil
}

// bodyFault names what is wrong with a client's body that failed to read
// with err.
func bodyFault(r *http.Request, err error) *exchange.Kind {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return exchange.BodyTooLarge
	}
	if r.Context().Err() != nil {
		return clientClosed
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return exchange.BodyTimeout
	}
	return exchange.BadBody
}
