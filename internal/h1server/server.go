// Package h1server is a strict, lean HTTP/1.0 and HTTP/1.1 server for
// plaintext and TLS (ALPN http/1.1) connections that serves a standard
// http.Handler.
//
// Compared with net/http's server it runs exactly one goroutine per
// connection (no background read per request), uses the connection's context
// for every request on it (no per-request context.WithCancel), builds each
// request from a single string copy of its head, and computes response framing
// without chunkWriter machinery. Because no goroutine watches the socket while
// a handler runs, a client that disconnects mid-request is noticed only when
// the handler reads the body or writes the response; r.Context() is canceled
// when the connection is done or the server is closed. A handler that must
// notice sooner asks for it with WatchClient (one goroutine and one read for
// that request only).
//
// It is strict where a proxy must be (request smuggling): bare LF, obs-fold,
// whitespace before the colon, Content-Length with Transfer-Encoding, repeated
// Content-Length, any transfer coding other than a single "chunked", a
// missing or repeated Host, CTLs in values — each is answered with 400 (431
// for an oversized head, 505 for an unsupported version) and the connection is
// closed.
//
// HTTP/2 is out of scope: h2c and ALPN h2 stay on net/http.
package h1server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.x on connections handed to ServeConn or accepted by
// Serve. Its exported fields must not be changed once it serves.
type Server struct {
	Handler http.Handler

	// ReadHeaderTimeout bounds reading a request head, counted from the first
	// read that finds no complete head buffered. It also bounds the wait for
	// the first request on a new connection when set, and the post-handler
	// discard of an unread request body.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the first byte of the next request on a
	// kept-alive connection. Zero falls back to ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus header section. Over it the
	// server answers 431 and closes. Zero means http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// WriteTimeout bounds each write to the client: a client that stops
	// reading its response is dropped once a write makes no progress for
	// that long (the handler's writes then fail). Zero: no bound.
	WriteTimeout time.Duration
	// BodyReadTimeout bounds the wait for each read of a request body while
	// the handler reads it (unless the handler set its own read deadline):
	// a body that stalls fails with ErrBodyTimeout. Zero: no bound.
	BodyReadTimeout time.Duration

	// OnReject, if set, is called for every request the server refuses
	// itself, with the status it answered and a short reason. It runs on the
	// connection's goroutine and must not block.
	OnReject func(c net.Conn, status int, reason string)
	// ConnState, if set, is called on connection state changes, like
	// net/http's Server.ConnState. It must not block.
	ConnState func(net.Conn, http.ConnState)
	// ConnContext, if set, derives the connection's context (the parent of
	// every r.Context() on it).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ErrorLog receives handler panics and accept errors; nil means
	// slog.Default().
	ErrorLog *slog.Logger

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	baseCtx    context.Context
	baseCancel context.CancelFunc
	connGone   chan struct{} // signaled (non-blocking) when a conn is untracked
	inShutdown atomic.Bool
}

const (
	bufSize          = 4 << 10   // bufio reader/writer and response buffer size
	maxPostHandlerRd = 256 << 10 // unread body discarded to keep a connection
	maxLeadingCRLF   = 4
)

var (
	brPool  sync.Pool // *bufio.Reader
	bwPool  sync.Pool // *bufio.Writer
	bufPool sync.Pool // *[]byte of cap bufSize
)

func (s *Server) logger() *slog.Logger {
	if s.ErrorLog != nil {
		return s.ErrorLog
	}
	return slog.Default()
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

// init lazily sets up tracking state; s.mu must be held.
func (s *Server) initLocked() {
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
		s.listeners = make(map[*net.Listener]struct{})
		s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
		s.connGone = make(chan struct{}, 1)
	}
}

// Serve accepts connections from ln and serves each in its own goroutine
// until ln fails or the server is shut down (then it returns
// http.ErrServerClosed). ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.initLocked()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.listeners[&ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("h1server: accept error; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		go s.ServeConn(rwc)
	}
}

// ServeConn serves one accepted connection until it is closed or hijacked,
// blocking. rwc may be a *tls.Conn negotiated for http/1.1.
func (s *Server) ServeConn(rwc net.Conn) {
	c := &conn{srv: s, rwc: rwc}
	c.reader.c = c
	c.writer.c = c
	s.mu.Lock()
	s.initLocked()
	// During Shutdown a connection handed over is still served (one
	// request, then closed): it was accepted, and dropping it would reset a
	// client that did nothing wrong.
	s.conns[c] = struct{}{}
	ctx := s.baseCtx
	s.mu.Unlock()

	ctx = context.WithValue(ctx, http.LocalAddrContextKey, rwc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, rwc)
		if ctx == nil {
			panic("h1server: ConnContext returned nil")
		}
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.setState(http.StateNew)
	c.serve()
}

// untrack forgets c and wakes a waiting Shutdown.
func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	select {
	case s.connGone <- struct{}{}:
	default:
	}
}

func (s *Server) closeListenersLocked() {
	for ln := range s.listeners {
		(*ln).Close()
	}
}

// Shutdown stops accepting, closes idle connections now and every active one
// once its current response is written, and waits until all are closed (it
// then returns nil) or ctx is done (it then returns ctx.Err()).
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	s.initLocked()
	s.closeListenersLocked()
	s.mu.Unlock()
	for {
		s.mu.Lock()
		for c := range s.conns {
			c.closeIfIdle()
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.connGone:
		}
	}
}

// Close closes all listeners and connections now and cancels every
// connection's context.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	s.closeListenersLocked()
	// Connections first: a handler that returns when its context ends
	// must find its connection closed, not write a response after Close.
	for c := range s.conns {
		c.rwc.Close()
	}
	s.baseCancel()
	return nil
}

// Read phases, which decide the read deadline the next socket read gets.
const (
	phaseFirst   = iota // waiting for the first request on a new connection
	phaseIdle           // waiting for the next request on a kept-alive one
	phaseHead           // reading a request head
	phaseHandler        // handler running: no deadline unless it set one
	phaseDiscard        // discarding an unread body after the handler
)

// conn is the per-connection state. All fields but state are owned by the
// connection's goroutine.
type conn struct {
	srv        *Server
	rwc        net.Conn
	reader     connReader
	writer     connWriter
	br         *bufio.Reader
	bw         *bufio.Writer
	ctx        context.Context
	cancel     context.CancelFunc
	remoteAddr string
	tlsState   *tls.ConnectionState
	state      atomic.Int32 // http.ConnState
	hijacked   bool

	head       []byte  // raw request head, reused
	keyScratch []byte  // header-name canonicalization, reused
	bodyBuf    *[]byte // response buffer (pooled), nil until needed
	respHeader http.Header

	phase           int
	deadlineSet     bool      // phaseDeadline computed for this phase
	phaseDeadline   time.Time // deadline for reads in this phase
	curDeadline     time.Time // deadline currently set on rwc
	handlerDeadline time.Time // set by ResponseController.SetReadDeadline
	readingBody     bool      // the handler is reading the request body (BodyReadTimeout)

	watch     *watch // the current request's WatchClient, if any
	unread    byte   // a byte the watch read, returned by the next read
	hasUnread bool
}

// bodyDeadline marks the socket's read deadline as a body read's (set per
// read, BodyReadTimeout): equal to no phase's deadline, so the next read
// outside the body sets its phase's again.
var bodyDeadline = time.Unix(2, 0)

// connWriter is what the bufio.Writer writes to when the server has a
// WriteTimeout: each write gets its own deadline, so a slow reader is fine
// and one that stopped is not.
type connWriter struct{ c *conn }

func (w *connWriter) Write(p []byte) (int, error) {
	if err := w.c.rwc.SetWriteDeadline(time.Now().Add(w.c.srv.WriteTimeout)); err != nil {
		return 0, err
	}
	return w.c.rwc.Write(p)
}

// connReader is what the bufio.Reader reads from. Before every socket read it
// flushes pending output (so pipelined responses are batched but a client
// never waits for a response we hold) and applies the phase's read deadline.
type connReader struct{ c *conn }

func (r *connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.hasUnread && len(p) > 0 {
		c.hasUnread = false
		p[0] = c.unread
		return 1, nil
	}
	if c.hijacked {
		return c.rwc.Read(p)
	}
	if c.bw.Buffered() > 0 {
		c.bw.Flush() // a write error resurfaces on the next write
	}
	if c.readingBody && c.phase == phaseHandler && c.handlerDeadline.IsZero() && c.srv.BodyReadTimeout > 0 {
		// Each read of the body gets its own bound: a slow body is fine,
		// one that stops is not.
		c.deadlineSet = false
		if err := c.rwc.SetReadDeadline(time.Now().Add(c.srv.BodyReadTimeout)); err != nil {
			return 0, err
		}
		c.curDeadline = bodyDeadline // the next read outside the body resets it
		return c.rwc.Read(p)
	}
	if !c.deadlineSet {
		c.deadlineSet = true
		c.phaseDeadline = c.computeDeadline()
	}
	if !c.phaseDeadline.Equal(c.curDeadline) {
		if err := c.rwc.SetReadDeadline(c.phaseDeadline); err != nil {
			return 0, err
		}
		c.curDeadline = c.phaseDeadline
	}
	return c.rwc.Read(p)
}

func (c *conn) computeDeadline() time.Time {
	s := c.srv
	var d time.Duration
	switch c.phase {
	case phaseFirst, phaseHead, phaseDiscard:
		d = s.ReadHeaderTimeout
		if d == 0 {
			d = s.IdleTimeout
		}
	case phaseIdle:
		d = s.IdleTimeout
		if d == 0 {
			d = s.ReadHeaderTimeout
		}
	case phaseHandler:
		return c.handlerDeadline
	}
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

func (c *conn) setPhase(p int) {
	c.phase = p
	c.deadlineSet = false
}

func (c *conn) setState(st http.ConnState) {
	c.state.Store(int32(st))
	if f := c.srv.ConnState; f != nil {
		f(c.rwc, st)
	}
}

// activate moves an idle or new connection to active; false means Shutdown
// closed it first.
func (c *conn) activate() bool {
	old := c.state.Load()
	if (old != int32(http.StateIdle) && old != int32(http.StateNew)) ||
		!c.state.CompareAndSwap(old, int32(http.StateActive)) {
		return false
	}
	if f := c.srv.ConnState; f != nil {
		f(c.rwc, http.StateActive)
	}
	return true
}

// closeIfIdle is called by Shutdown with s.mu held. A new connection is not
// idle: its client is about to send the first request (bounded by
// ReadHeaderTimeout), which is answered with Connection: close.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(int32(http.StateIdle), int32(http.StateClosed)) {
		c.rwc.Close()
	}
}

// serve serves the connection until it must be closed or is hijacked.
func (c *conn) serve() {
	linger := false
	defer func() { c.closeConn(linger) }()
	c.remoteAddr = c.rwc.RemoteAddr().String()
	c.br = getReader(&c.reader)
	if c.srv.WriteTimeout > 0 {
		c.bw = getWriter(&c.writer)
	} else {
		c.bw = getWriter(c.rwc)
	}
	if !c.handshake() {
		return
	}
	linger = c.serveRequests()
}

// closeConn closes the connection once serve is done with it (unless it was
// hijacked), lingering if asked, and returns its buffers.
func (c *conn) closeConn(linger bool) {
	s := c.srv
	c.cancel()
	if c.hijacked {
		return // the handler owns rwc, br and bw now
	}
	c.bw.Flush()
	if linger {
		lingerClose(c.rwc)
	} else {
		c.rwc.Close()
	}
	c.release()
	c.state.Store(int32(http.StateClosed))
	if f := s.ConnState; f != nil {
		f(c.rwc, http.StateClosed)
	}
	s.untrack(c)
}

// handshake runs the TLS handshake on a TLS connection; false means it
// failed.
func (c *conn) handshake() bool {
	tc, ok := c.rwc.(*tls.Conn)
	if !ok {
		return true
	}
	if d := c.srv.ReadHeaderTimeout; d > 0 {
		tc.SetDeadline(time.Now().Add(d))
	}
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return false
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.tlsState = &st
	return true
}

// serveRequests reads and answers requests until the connection must be
// closed. linger reports whether it should be closed with lingerClose.
func (c *conn) serveRequests() (linger bool) {
	s := c.srv
	c.setPhase(phaseFirst)
	for {
		if _, err := c.br.Peek(1); err != nil {
			return false
		}
		if !c.activate() {
			return false
		}
		c.setPhase(phaseHead)
		rq, req, rerr := c.readRequest()
		if rerr != nil {
			if rerr.status != 0 {
				c.reject(rerr)
				return true
			}
			return false
		}
		c.setPhase(phaseHandler)
		c.handlerDeadline = time.Time{}
		w := &rq.w
		if !c.runHandler(w, req) {
			if c.hijacked {
				return false
			}
			return true
		}
		if c.hijacked {
			// The connection is the handler's now (it may still be writing
			// to it from another goroutine): nothing more of ours goes out.
			return false
		}
		w.finish()
		if w.closeAfter {
			return true
		}
		if !c.state.CompareAndSwap(int32(http.StateActive), int32(http.StateIdle)) {
			return false
		}
		if f := s.ConnState; f != nil {
			f(c.rwc, http.StateIdle)
		}
		if s.inShutdown.Load() {
			return false
		}
		c.setPhase(phaseIdle)
	}
}

// runHandler calls the handler; false means it panicked and the connection
// must be closed.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if ok {
			return
		}
		v := recover()
		if c.watch != nil {
			c.finishWatch()
		}
		if c.hijacked {
			if v != http.ErrAbortHandler {
				c.srv.logger().Error("h1server: panic serving hijacked connection", "remote", c.remoteAddr, "panic", v, "stack", stack())
			}
			return
		}
		if v != http.ErrAbortHandler {
			c.srv.logger().Error("h1server: panic serving request", "remote", c.remoteAddr, "method", req.Method, "uri", req.RequestURI, "panic", v, "stack", stack())
			if !w.committed {
				c.writeError(http.StatusInternalServerError, "internal server error", req.ProtoMinor == 0)
			}
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// release returns pooled buffers once the connection is closed.
func (c *conn) release() {
	putReader(c.br)
	putWriter(c.bw)
	c.br, c.bw = nil, nil
	if c.bodyBuf != nil {
		*c.bodyBuf = (*c.bodyBuf)[:0]
		bufPool.Put(c.bodyBuf)
		c.bodyBuf = nil
	}
}

func getReader(r *connReader) *bufio.Reader {
	if v := brPool.Get(); v != nil {
		br := v.(*bufio.Reader)
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, bufSize)
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	brPool.Put(br)
}

func getWriter(w io.Writer) *bufio.Writer {
	if v := bwPool.Get(); v != nil {
		bw := v.(*bufio.Writer)
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, bufSize)
}

func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	bwPool.Put(bw)
}

// lingerClose half-closes a TCP connection and briefly drains input before
// closing, so that a response followed by close is not destroyed by a RST
// because the client's unread bytes were still queued.
func lingerClose(rwc net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := rwc.(closeWriter); ok {
		if cw.CloseWrite() == nil {
			rwc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			var buf [512]byte
			for n := 0; n < 64<<10; {
				m, err := rwc.Read(buf[:])
				n += m
				if err != nil {
					break
				}
			}
		}
	}
	rwc.Close()
}
