package h1server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// ErrClientGone is the cause (context.Cause) of a context from WatchClient
// canceled because the client closed its connection or the connection
// failed; the failure, if any, is wrapped.
var ErrClientGone = errors.New("h1server: client closed the connection")

// WatchClient returns a child of parent that is canceled, with cause
// ErrClientGone, as soon as the client closes the connection of the request
// that w answers (or the connection fails), the way net/http's HTTP/2 server
// and its background read cancel r.Context(). A handler that makes slow calls
// before writing anything (a composite route) uses it to stop them when their
// caller has gone, instead of holding its concurrency slots until a deadline.
//
//	ctx, stop := h1server.WatchClient(w, r.Context())
//	result, err := callBackends(ctx)
//	stop()
//	writeResult(w, result, err)
//
// Cost: one goroutine and one pending read of the connection per watched
// request (the read is interrupted by stop). That is why it is opt-in: this
// server's speed comes from running no goroutine and no read beside a handler
// (see the package doc), and most handlers answer before a client could leave.
// Handlers that never call WatchClient pay nothing measurable: a flag test
// per socket read and a nil test per request.
//
// The request is watched only when w is, or unwraps to (through
// Unwrap() http.ResponseWriter, as http.ResponseController does), this
// server's writer, the connection is not hijacked, the request's body has
// been read to its end (or there is none) and no byte of the connection is
// buffered unread (a pipelined request). Otherwise WatchClient returns parent
// and a no-op stop: it never fails and never blocks. Once the background read
// has taken a byte (the start of a pipelined request, kept for the next
// request) the client's leaving is no longer noticed, as with net/http.
//
// stop ends the watch; it is idempotent. Call it before any later call
// touches the connection's reads: it interrupts the background read, waits
// for it to return, and hands a byte it read to the next request. Writing
// the response while the watch runs is fine (the watch only reads; a proxy
// relaying a stream keeps watching so that a client leaving between events
// ends it at once). When the handler returns (or hijacks) a watch it did not stop
// is stopped for it. ctx itself stays valid after stop, until the handler
// returns: then it is canceled, like r.Context() under net/http. A client
// that went away also makes the connection close after this response.
//
// Call WatchClient, like the writer's methods, from the handler's goroutine
// (or one it waits for). A second call while a watch runs shares it (its stop
// ends the one watch); a call after stop returns parent. A read deadline set
// through http.ResponseController while watching ends the watch when it
// passes, without canceling ctx. parent must not be nil.
func WatchClient(w http.ResponseWriter, parent context.Context) (ctx context.Context, stop func()) {
	rw := responseOf(w)
	if rw == nil {
		return parent, noStop
	}
	c := rw.c
	if wt := c.watch; wt != nil {
		if wt.w != rw {
			return parent, noStop
		}
		return wt.add(parent)
	}
	if !rw.watchable() {
		return parent, noStop
	}
	// The head's read deadline (ReadHeaderTimeout) must not end the watch.
	// Phase deadlines are restored by stop.
	if !c.curDeadline.IsZero() {
		if c.rwc.SetReadDeadline(time.Time{}) != nil {
			return parent, noStop
		}
		c.curDeadline = time.Time{}
	}
	wt := &watch{c: c, w: rw, done: make(chan struct{})}
	wt.stopFn = wt.stop
	c.watch = wt
	go wt.run()
	return wt.add(parent)
}

func noStop() {}

// responseOf returns the h1server writer that w is or unwraps to, or nil.
func responseOf(w http.ResponseWriter) *response {
	for {
		switch t := w.(type) {
		case *response:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// watchable reports whether a background read may start: nothing the
// request still has to read could be taken by it.
func (w *response) watchable() bool {
	c := w.c
	if c.hijacked || c.hasUnread || c.br == nil || c.br.Buffered() > 0 {
		return false
	}
	if b := &w.rq.body; b.c != nil {
		if !b.mu.TryLock() {
			return false // a goroutine is reading it
		}
		eof := b.err == io.EOF
		b.mu.Unlock()
		return eof
	}
	return true
}

// watch is one request's background read of its connection.
type watch struct {
	c      *conn
	w      *response
	stopFn func()
	once   sync.Once     // stop
	done   chan struct{} // closed when run has returned

	// Written by run before done is closed.
	b    [1]byte
	n    int
	gone bool

	mu      sync.Mutex
	stopped bool
	cause   error                     // set once the client has gone
	cancels []context.CancelCauseFunc // contexts to cancel when it goes
}

// run is the background read: one read of one byte, retried only if a read
// returns nothing and no error.
func (wt *watch) run() {
	defer close(wt.done)
	var n int
	var err error
	for n == 0 && err == nil {
		n, err = wt.c.rwc.Read(wt.b[:])
	}
	wt.n = n
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return // a byte, stop, or a handler's read deadline
	}
	wt.gone = true
	cause := ErrClientGone
	if err != io.EOF {
		cause = fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	wt.mu.Lock()
	wt.cause = cause
	for _, cancel := range wt.cancels {
		cancel(cause)
	}
	wt.mu.Unlock()
}

// add returns a context canceled when the client goes, and the watch's stop.
func (wt *watch) add(parent context.Context) (context.Context, func()) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.stopped {
		return parent, noStop
	}
	ctx, cancel := context.WithCancelCause(parent)
	if wt.cause != nil {
		cancel(wt.cause)
	} else {
		wt.cancels = append(wt.cancels, cancel)
	}
	return ctx, wt.stopFn
}

func (wt *watch) stop() { wt.once.Do(wt.end) }

// end interrupts the background read, waits for it, and leaves the
// connection as the next read expects it.
func (wt *watch) end() {
	wt.mu.Lock()
	wt.stopped = true
	wt.mu.Unlock()
	c := wt.c
	_ = c.rwc.SetReadDeadline(longAgo)
	<-wt.done
	// rwc's deadline is longAgo now: the next connReader read differs from
	// it and sets its phase's deadline.
	c.curDeadline = longAgo
	if wt.n > 0 {
		c.unread, c.hasUnread = wt.b[0], true
	}
	if wt.gone {
		wt.w.closeAfter = true
	}
}

// finishWatch ends the current request's watch once its handler has
// returned, and cancels the contexts it returned.
func (c *conn) finishWatch() {
	wt := c.watch
	c.watch = nil
	wt.stop()
	wt.mu.Lock()
	cancels := wt.cancels
	wt.cancels = nil
	wt.mu.Unlock()
	for _, cancel := range cancels {
		cancel(nil)
	}
}

// hijackWatch stops the watch before the handler takes the connection and
// moves a byte it read into c.br, where the hijacker finds it.
func (c *conn) hijackWatch() {
	c.watch.stop()
	if c.hasUnread {
		c.br.Peek(c.br.Buffered() + 1)
	}
}
