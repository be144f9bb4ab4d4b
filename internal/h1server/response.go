package h1server

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// response is the http.ResponseWriter. Before the header is committed, body
// bytes are held in the connection's response buffer so that a small response
// gets a computed Content-Length; once committed, the framing is fixed:
// the handler's Content-Length, chunked (HTTP/1.1) or close-delimited
// (HTTP/1.0).
//
// Unlike net/http, the header map is not cloned at WriteHeader: changes made
// after WriteHeader but before the header is committed (first flush, buffer
// overflow or handler return) are sent. Keys announced in "Trailer" and keys
// with http.TrailerPrefix are never sent as headers.
type response struct {
	c    *conn
	rq   *request
	req  *http.Request
	hdr  http.Header
	buf  []byte // pending body bytes (pre-commit, or current chunk)
	trls []string

	status        int
	minor         int   // request's HTTP minor version
	contentLength int64 // from the handler's header, -1 if none
	written       int64 // body bytes accepted from the handler

	isHEAD        bool
	reqClose      bool
	wroteHeader   bool // final status decided
	committed     bool // status line and headers are in c.bw
	bodyAllowed   bool // status and method allow a body
	chunked       bool
	closeAfter    bool
	wroteContinue bool
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

func (w *response) init(c *conn, rq *request, isHEAD bool, minor int, reqClose bool) {
	w.c, w.rq = c, rq
	w.isHEAD, w.minor, w.reqClose = isHEAD, minor, reqClose
	w.contentLength = -1
	if c.respHeader == nil || len(c.respHeader) > 32 {
		c.respHeader = make(http.Header, 8)
	} else {
		clear(c.respHeader)
	}
	w.hdr = c.respHeader
}

func (w *response) Header() http.Header { return w.hdr }

func bodyAllowedForStatus(code int) bool {
	switch {
	case code >= 100 && code <= 199, code == 204, code == 304:
		return false
	}
	return true
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		if w.minor == 1 {
			w.writeInterim(code)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyAllowed = bodyAllowedForStatus(code) && !w.isHEAD
	if v := w.hdr["Content-Length"]; len(v) > 0 {
		if n, ok := parseContentLength(strings.TrimSpace(v[0])); ok {
			w.contentLength = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
}

func (w *response) writeInterim(code int) {
	bw := w.c.bw
	writeStatusLine(bw, 1, code)
	for k, vv := range w.hdr {
		if validFieldName(k) {
			for _, v := range vv {
				writeHeaderLine(bw, k, v)
			}
		}
	}
	bw.WriteString("\r\n")
	bw.Flush()
}

// writeContinue answers Expect: 100-continue on the first body read.
func (w *response) writeContinue() {
	if w.committed || w.c.hijacked {
		return
	}
	w.wroteContinue = true
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.c.bw.Flush()
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed {
		if w.isHEAD {
			w.written += int64(len(p))
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if w.contentLength >= 0 {
			w.commit(false, p)
			return w.c.bw.Write(p)
		}
		if w.buf == nil {
			w.buf = w.c.responseBuffer()
		}
		if len(w.buf)+len(p) <= bufSize {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commit(false, nil)
	}
	if !w.chunked {
		return w.c.bw.Write(p)
	}
	if w.buf == nil {
		w.buf = w.c.responseBuffer()
	}
	if len(w.buf)+len(p) <= bufSize {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.emitPending(); err != nil {
		return 0, err
	}
	if len(p) >= bufSize {
		if err := w.writeChunk(p); err != nil {
			return 0, err
		}
	} else {
		w.buf = append(w.buf, p...)
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	// Small strings go through the buffer without an intermediate copy.
	if w.committed && !w.chunked && w.bodyAllowed && !w.c.hijacked &&
		(w.contentLength < 0 || w.written+int64(len(s)) <= w.contentLength) {
		w.written += int64(len(s))
		return w.c.bw.WriteString(s)
	}
	return w.Write([]byte(s))
}

// responseBuffer returns the connection's (pooled) response buffer, empty.
func (c *conn) responseBuffer() []byte {
	if c.bodyBuf == nil {
		if v := bufPool.Get(); v != nil {
			c.bodyBuf = v.(*[]byte)
		} else {
			b := make([]byte, 0, bufSize)
			c.bodyBuf = &b
		}
	}
	return (*c.bodyBuf)[:0]
}

func (w *response) writeChunk(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	bw := w.c.bw
	var hex [16]byte
	bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
	bw.WriteString("\r\n")
	bw.Write(p)
	_, err := bw.WriteString("\r\n")
	return err
}

// emitPending writes the buffered body bytes with the committed framing.
func (w *response) emitPending() (err error) {
	if len(w.buf) == 0 {
		return nil
	}
	if w.bodyAllowed {
		if w.chunked {
			err = w.writeChunk(w.buf)
		} else {
			_, err = w.c.bw.Write(w.buf)
		}
	}
	w.buf = w.buf[:0]
	return err
}

func (w *response) Flush() { w.FlushError() }

// FlushError commits the header if needed, writes buffered body bytes and
// flushes them to the connection (used by http.ResponseController).
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	w.emitPending()
	return w.c.bw.Flush()
}

// SetReadDeadline sets the deadline for the handler's body reads
// (http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	c := w.c
	if err := c.rwc.SetReadDeadline(t); err != nil {
		return err
	}
	c.curDeadline, c.handlerDeadline = t, t
	c.deadlineSet = false
	return nil
}

// SetWriteDeadline sets the write deadline (http.ResponseController). It
// stays in effect for later responses on the connection unless reset.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex is a no-op: the body can always be read while the
// response is written.
func (w *response) EnableFullDuplex() error { return nil }

// Hijack hands the connection to the handler, with buffered reader and
// writer over it. Pending response bytes are flushed first.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.committed {
		w.emitPending()
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	if c.watch != nil {
		c.hijackWatch()
	}
	c.hijacked = true
	if !c.curDeadline.IsZero() {
		c.rwc.SetReadDeadline(time.Time{})
	}
	c.state.Store(int32(http.StateHijacked))
	if f := c.srv.ConnState; f != nil {
		f(c.rwc, http.StateHijacked)
	}
	c.srv.untrack(c)
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// commit decides framing and writes the status line and headers into c.bw.
// final means the handler has returned, so w.buf is the whole body. p is the
// first body bytes when w.buf is empty (for Content-Type sniffing).
func (w *response) commit(final bool, p []byte) {
	w.committed = true
	bw := w.c.bw
	w.decideClose()
	w.collectTrailers()
	w.sniffContentType(p)
	writeStatusLine(bw, w.minor, w.status)
	prefixTrailers := w.writeHeaderFields(bw)
	w.writeFraming(bw, final, prefixTrailers)
	bw.WriteString("\r\n")
}

// decideClose sets closeAfter when the server shuts down, the request asked
// for close or the handler set Connection: close.
func (w *response) decideClose() {
	if w.c.srv.inShutdown.Load() || w.reqClose {
		w.closeAfter = true
	}
	if v := w.hdr["Connection"]; len(v) > 0 {
		for _, s := range v {
			forEachToken(s, func(t string) {
				if asciiEqualFold(t, "close") {
					w.closeAfter = true
				}
			})
		}
	}
}

// collectTrailers records the trailer keys the handler declared in
// "Trailer" (HTTP/1.1 with a body only).
func (w *response) collectTrailers() {
	if tv := w.hdr["Trailer"]; len(tv) > 0 && w.minor == 1 && w.bodyAllowed {
		for _, s := range tv {
			forEachToken(s, func(t string) {
				w.trls = append(w.trls, http.CanonicalHeaderKey(t))
			})
		}
	}
}

// sniffContentType sets Content-Type from the first body bytes (w.buf, or
// p when it is empty) if the handler set neither it nor Content-Encoding.
func (w *response) sniffContentType(p []byte) {
	// Content-Type sniffing, as net/http.
	if w.bodyAllowed {
		if _, haveType := w.hdr["Content-Type"]; !haveType && len(w.hdr["Content-Encoding"]) == 0 {
			data := w.buf
			if len(data) == 0 {
				data = p
			}
			if len(data) > 0 {
				w.hdr["Content-Type"] = []string{http.DetectContentType(data)}
			}
		}
	}
}

// writeHeaderFields writes the handler's header fields but those the server
// frames itself and the trailers. It reports whether any key had
// http.TrailerPrefix.
func (w *response) writeHeaderFields(bw *bufio.Writer) (prefixTrailers bool) {
	for k, vv := range w.hdr {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			if k == "Trailer" && len(w.trls) > 0 {
				break // announce declared trailers
			}
			continue
		case "Connection":
			if w.status != http.StatusSwitchingProtocols {
				continue
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			prefixTrailers = true
			continue
		}
		if w.isTrailer(k) || !validFieldName(k) {
			continue
		}
		for _, v := range vv {
			writeHeaderLine(bw, k, v)
		}
	}
	return prefixTrailers
}

// writeFraming decides the body's framing (Content-Length, chunked or
// close-delimited) and writes it with the Connection header.
func (w *response) writeFraming(bw *bufio.Writer, final, prefixTrailers bool) {
	is11 := w.minor == 1
	var num [20]byte
	switch {
	case !bodyAllowedForStatus(w.status):
		if w.status == http.StatusNotModified && w.contentLength >= 0 {
			writeContentLength(bw, num[:0], w.contentLength)
		}
	case w.isHEAD:
		if w.contentLength >= 0 {
			writeContentLength(bw, num[:0], w.contentLength)
		} else if final && w.written > 0 && w.written <= bufSize {
			writeContentLength(bw, num[:0], w.written)
		}
	case w.contentLength >= 0:
		writeContentLength(bw, num[:0], w.contentLength)
	case final && !(is11 && (len(w.trls) > 0 || prefixTrailers)):
		writeContentLength(bw, num[:0], int64(len(w.buf)))
	case is11:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		w.closeAfter = true // HTTP/1.0: the body ends at close
	}
	if w.closeAfter {
		if w.status != http.StatusSwitchingProtocols {
			bw.WriteString("Connection: close\r\n")
		}
	} else if !is11 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
}

func (w *response) isTrailer(k string) bool {
	for _, t := range w.trls {
		if t == k {
			return true
		}
	}
	return false
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	c := w.c
	if c.watch != nil {
		c.finishWatch()
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	// discardAfter is an unread body whose rest the client has not sent
	// yet: it is dropped once the response is out, not before, or an early
	// answer (a 401, an upstream that answered before the upload ended)
	// would wait for the rest of the upload. Its lock is held until then.
	var discardAfter *body
	if b := &w.rq.body; b.c != nil {
		if !b.mu.TryLock() {
			// A goroutine the handler started is still reading the body
			// (a proxy whose upstream answered early). Unblock its read and
			// take the body back; what is left of it cannot frame the next
			// request, so the connection closes after this response.
			_ = c.rwc.SetReadDeadline(longAgo)
			b.mu.Lock()
			if b.err == nil {
				b.err = errBodyAbandoned
			}
		}
		if b.discardWaits() {
			discardAfter = b
		} else {
			if !b.discardRest() {
				w.closeAfter = true
			}
			b.closed.Store(true)
			b.mu.Unlock()
		}
	}
	if !w.committed {
		w.commit(true, nil)
	}
	w.emitPending()
	if w.chunked {
		bw := c.bw
		bw.WriteString("0\r\n")
		for _, k := range w.trls {
			for _, v := range w.hdr[k] {
				writeHeaderLine(bw, k, v)
			}
		}
		for k, vv := range w.hdr {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				if name := k[len(http.TrailerPrefix):]; validFieldName(name) {
					for _, v := range vv {
						writeHeaderLine(bw, name, v)
					}
				}
			}
		}
		bw.WriteString("\r\n")
	}
	if w.bodyAllowed && w.contentLength >= 0 && w.written != w.contentLength {
		w.closeAfter = true // short body: the client must see the truncation
	}
	if c.srv.inShutdown.Load() {
		w.closeAfter = true
	}
	if w.buf != nil {
		*c.bodyBuf = w.buf[:0]
		w.buf = nil
	}
	if w.closeAfter || c.br.Buffered() == 0 || discardAfter != nil {
		c.bw.Flush()
	}
	if b := discardAfter; b != nil {
		if !b.discardRest() {
			w.closeAfter = true
		}
		b.closed.Store(true)
		b.mu.Unlock()
	}
}

func writeContentLength(bw *bufio.Writer, num []byte, n int64) {
	bw.WriteString("Content-Length: ")
	bw.Write(strconv.AppendInt(num, n, 10))
	bw.WriteString("\r\n")
}

func writeStatusLine(bw *bufio.Writer, minor, code int) {
	if minor == 1 {
		switch code {
		case 200:
			bw.WriteString("HTTP/1.1 200 OK\r\n")
			return
		case 204:
			bw.WriteString("HTTP/1.1 204 No Content\r\n")
			return
		case 304:
			bw.WriteString("HTTP/1.1 304 Not Modified\r\n")
			return
		case 404:
			bw.WriteString("HTTP/1.1 404 Not Found\r\n")
			return
		}
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	var num [3]byte
	bw.Write(strconv.AppendInt(num[:0], int64(code), 10))
	bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.Write(strconv.AppendInt(num[:0], int64(code), 10))
	}
	bw.WriteString("\r\n")
}

// writeHeaderLine writes "k: v\r\n", replacing CR and LF in v with spaces
// (as net/http does) so a handler cannot split the response.
func writeHeaderLine(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		bw.WriteString(v)
	} else {
		for i := 0; i < len(v); i++ {
			b := v[i]
			if b == '\r' || b == '\n' {
				b = ' '
			}
			bw.WriteByte(b)
		}
	}
	bw.WriteString("\r\n")
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isToken[k[i]] {
			return false
		}
	}
	return true
}

// writeError answers a request the server refuses, or a handler panic before
// any output.
func (c *conn) writeError(status int, reason string, http10 bool) {
	bw := c.bw
	minor := 1
	if http10 {
		minor = 0
	}
	writeStatusLine(bw, minor, status)
	body := `{"status":` + strconv.Itoa(status) + `,"error":"` + reason + `"}`
	bw.WriteString("Content-Type: application/json\r\nConnection: close\r\n")
	writeContentLength(bw, nil, int64(len(body)))
	bw.WriteString("\r\n")
	bw.WriteString(body)
	bw.Flush()
}

// reject answers a refused request and reports it to OnReject.
func (c *conn) reject(e *reqError) {
	if e.status != http.StatusRequestTimeout {
		c.writeError(e.status, e.reason, false)
	}
	if f := c.srv.OnReject; f != nil {
		f(c.rwc, e.status, e.reason)
	}
}

func stack() string { return string(debug.Stack()) }

// longAgo is a deadline in the past: setting it unblocks a pending read.
var longAgo = time.Unix(1, 0)

var errBodyAbandoned = errors.New("h1server: request body still being read when the handler returned")
