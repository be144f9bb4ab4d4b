package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/h1server"
)

// h1Pool is a purpose-built HTTP/1.1 client for requests without a body
// (the large majority: GET, HEAD, DELETE, …). Compared with http.Transport it
// does the whole exchange on the caller's goroutine — no writeLoop/readLoop
// goroutines and channel hand-offs per request — and writes the request head
// straight into the connection's buffer. Requests with bodies, upgrades and
// HTTP/2 use http.Transport, which handles 100-continue and early responses.
//
// Connections are kept per endpoint in a LIFO stack (the most recently used,
// warmest connection first) of at most maxIdle, and dropped after
// idleTimeout unused.
type h1Pool struct {
	dialer      *net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	now         func() time.Time // time.Now; a test's clock moves idle connections past idleTimeout

	// dialTLS, when set, makes connections mTLS (with tlsConfig).
	dialTLS   func(ctx context.Context, cfg *tls.Config, addr string) (net.Conn, error)
	tlsConfig *tls.Config

	mu        sync.Mutex
	idle      map[string][]*h1Conn
	closed    bool
	lastSweep time.Time
}

type h1Conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	lastUsed time.Time
	reused   bool
}

func newH1Pool(d *net.Dialer, maxIdle int, idleTimeout time.Duration) *h1Pool {
	return &h1Pool{dialer: d, maxIdle: maxIdle, idleTimeout: idleTimeout, now: time.Now, idle: map[string][]*h1Conn{}}
}

// canServe reports whether the pool handles r: HTTP/1.1-able requests with
// no body and no upgrade.
func (p *h1Pool) canServe(r *http.Request) bool {
	return (r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 && len(r.Trailer) == 0
}

// errStale marks a reused idle connection the server had already closed:
// nothing of the response arrived, so a bodiless request is safely sent again.
var errStale = errors.New("idle upstream connection closed by the server")

// roundTripUntil sends req (one canServe accepts) and reads the response
// headers before deadline (zero: none); the body then reads without one. The
// request's context is not consulted: the deadline is set on the socket,
// which costs no allocation and no goroutine.
func (p *h1Pool) roundTripUntil(req *http.Request, deadline time.Time) (*http.Response, error) {
	return p.roundTripWatching(req, deadline, nil)
}

// roundTripWatching is roundTripUntil for a request that client (the
// writer of the exchange it forwards; nil: none) answers: once the head has
// been awaited for watchAfter, the client's connection is watched
// (h1server.WatchClient) and its leaving ends the wait at once with an
// error wrapping h1server.ErrClientGone. A head that arrives sooner, as most
// do, costs no goroutine.
func (p *h1Pool) roundTripWatching(req *http.Request, deadline time.Time, client http.ResponseWriter) (*http.Response, error) {
	for {
		c, err := p.get(req.URL.Host, deadline)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(p, req, deadline, client)
		if errors.Is(err, errStale) {
			continue // a fresh connection next: stale ones are dropped
		}
		return resp, err
	}
}

// watchAfter is how long a request awaits its response head before its
// client's connection is watched: long enough that a quick upstream never
// pays for the watch (a goroutine and a read), short enough that a client
// leaving a slow one cancels it within 100 ms.
const watchAfter = 50 * time.Millisecond

// interrupted is a read deadline in the past: setting it makes a blocked
// read return at once.
var interrupted = time.Unix(1, 0)

func (p *h1Pool) get(addr string, deadline time.Time) (*h1Conn, error) {
	now := p.now()
	p.mu.Lock()
	stack := p.idle[addr]
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack[len(stack)-1] = nil
		stack = stack[:len(stack)-1]
		if now.Sub(c.lastUsed) > p.idleTimeout {
			c.nc.Close()
			continue
		}
		p.idle[addr] = stack
		p.mu.Unlock()
		c.reused = true
		return c, nil
	}
	p.idle[addr] = stack
	p.mu.Unlock()

	var nc net.Conn
	var err error
	if p.dialTLS != nil {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if !deadline.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, deadline)
		}
		nc, err = p.dialTLS(ctx, p.tlsConfig, addr)
		cancel()
	} else {
		d := *p.dialer
		if !deadline.IsZero() && (d.Deadline.IsZero() || deadline.Before(d.Deadline)) {
			d.Deadline = deadline
		}
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &h1Conn{
		nc:   nc,
		br:   bufio.NewReaderSize(nc, 16<<10),
		bw:   bufio.NewWriterSize(nc, 4<<10),
		addr: addr,
	}, nil
}

func (p *h1Pool) put(c *h1Conn) {
	if c.br.Buffered() > 0 {
		// Bytes nobody asked for (a response after a 204, a body on a
		// HEAD): reusing the connection would answer the next request
		// with them.
		c.nc.Close()
		return
	}
	now := p.now()
	c.lastUsed = now
	p.mu.Lock()
	if p.closed || len(p.idle[c.addr]) >= p.maxIdle {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	p.idle[c.addr] = append(p.idle[c.addr], c)
	var expired []*h1Conn
	if now.Sub(p.lastSweep) > p.idleTimeout {
		// Once per idle timeout, drop expired connections of every
		// endpoint, including endpoints no longer picked.
		p.lastSweep = now
		expired = p.sweepLocked(now)
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.nc.Close()
	}
}

// sweepLocked removes and returns the idle connections past idleTimeout.
func (p *h1Pool) sweepLocked(now time.Time) []*h1Conn {
	var expired []*h1Conn
	for addr, stack := range p.idle {
		keep := stack[:0]
		for _, c := range stack {
			if now.Sub(c.lastUsed) > p.idleTimeout {
				expired = append(expired, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(stack[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = keep
		}
	}
	return expired
}

// closeIdle closes every idle connection; with final, later releases close
// their connection instead of pooling it.
func (p *h1Pool) closeIdle(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]*h1Conn{}
	if final {
		p.closed = true
	}
	p.mu.Unlock()
	for _, stack := range idle {
		for _, c := range stack {
			c.nc.Close()
		}
	}
}

func (c *h1Conn) roundTrip(p *h1Pool, req *http.Request, deadline time.Time, client http.ResponseWriter) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		c.nc.Close()
		return nil, err
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return fail(err)
	}
	if err := writeHead(c.bw, req); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		if c.reused && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fail(errStale)
		}
		return fail(err)
	}
	if err := c.awaitHead(req, deadline, client); err != nil {
		if errors.Is(err, h1server.ErrClientGone) {
			return fail(err)
		}
		// The server closed a reused connection: usually its idle close
		// raced our request, which it then never saw. It may also have
		// read the request and died, so only an idempotent request is
		// sent again; anything else is left to the retry policy.
		if c.reused && idempotent(req.Method) && (err == io.EOF || errors.Is(err, net.ErrClosed) || isConnReset(err)) {
			return fail(errStale)
		}
		return fail(err)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = readResponseHead(c.br, req.Method)
		if err != nil {
			return fail(err)
		}
		// Interim responses (100 Continue, 103 Early Hints) are not
		// forwarded by this client; the final one follows.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("unexpected 101 response to a request without Upgrade"))
	}
	if !deadline.IsZero() || client != nil {
		// Headers are in: the body streams without the deadline (or
		// awaitHead's first one).
		if err := c.nc.SetDeadline(time.Time{}); err != nil {
			return fail(err)
		}
	}
	resp.Request = req
	keep := !resp.Close
	if resp.Body == http.NoBody {
		c.release(p, keep)
		return resp, nil
	}
	b := &h1Body{c: c, p: p, keep: keep}
	b.body.init(c.br, resp)
	resp.Body = b
	return resp, nil
}

// awaitHead waits until the response's first byte is readable, before
// deadline. For a request that client answers, a wait past watchAfter
// watches the client, whose leaving interrupts the read.
func (c *h1Conn) awaitHead(req *http.Request, deadline time.Time, client http.ResponseWriter) error {
	if client != nil {
		if first := time.Now().Add(watchAfter); deadline.IsZero() || first.Before(deadline) {
			if err := c.nc.SetReadDeadline(first); err != nil {
				return err
			}
			_, err := c.br.Peek(1)
			if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if err := c.nc.SetReadDeadline(deadline); err != nil {
				return err
			}
			// An HTTP/1.x client is watched from now on (the watch stops
			// when the handler returns); an HTTP/2 client's leaving
			// cancels the request's context by itself.
			ctx, _ := h1server.WatchClient(client, req.Context())
			stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(interrupted) })
			_, err = c.br.Peek(1)
			stop()
			if ctx.Err() != nil {
				return clientGoneErr(ctx)
			}
			return err
		}
	}
	_, err := c.br.Peek(1)
	return err
}

// clientGoneErr is the error of a wait ended by its client's leaving: it
// wraps h1server.ErrClientGone whichever server noticed.
func clientGoneErr(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, h1server.ErrClientGone) {
		return err
	}
	return fmt.Errorf("%w: %w", h1server.ErrClientGone, context.Cause(ctx))
}

// interrupt makes a read of the body blocked now (or the next one) return
// an error: its client has gone. Safe from any goroutine.
// Once the body has handed its connection back (to the pool, where another
// request may take it), it does nothing: that connection is not the body's
// to interrupt any more.
func (b *h1Body) interrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		_ = b.c.nc.SetReadDeadline(interrupted)
	}
}

// release returns the connection to the pool once its response is done.
func (c *h1Conn) release(p *h1Pool, keep bool) {
	if keep {
		p.put(c)
	} else {
		c.nc.Close()
	}
}

// h1Body hands the connection back to the pool when the body reaches EOF;
// closing it earlier closes the connection, which is cheaper and safer than
// draining an unknown remainder.
type h1Body struct {
	body bodyReader
	c    *h1Conn
	p    *h1Pool
	keep bool
	done bool

	// mu orders the hand-back of the connection (released) with
	// interrupt, which a client's watch may call from its goroutine.
	mu       sync.Mutex
	released bool
}

// finish hands the connection back: to the pool if keep, else closed.
func (b *h1Body) finish(keep bool) {
	b.done = true
	b.mu.Lock()
	b.released = true
	b.mu.Unlock()
	b.c.release(b.p, keep)
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.finish(err == io.EOF && b.keep)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// writeHead writes the request line and headers. The forwarder has already
// removed hop-by-hop headers.
func writeHead(w *bufio.Writer, req *http.Request) error {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	if req.URL.Opaque != "" {
		w.WriteString(req.URL.Opaque)
	} else {
		w.WriteString(req.URL.EscapedPath())
	}
	if req.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(req.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validHeaderValue(host) {
		return errors.New("invalid Host")
	}
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		if k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vv {
			if !validHeaderValue(v) || (v == "" && k == "User-Agent") {
				continue // never let a value split the head
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if methodExpectsBody(req.Method) {
		w.WriteString("Content-Length: 0\r\n")
	}
	_, err := w.WriteString("\r\n")
	return err
}

func methodExpectsBody(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\r\n\x00")
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}
