package policy

import (
	"bytes"
	"net/http"
	"strconv"
)

// OnHeader returns w wrapped so that f runs once, just before the response's
// status line goes out (on the first WriteHeader, Write or Flush), with the
// status and the headers still open to change; the status f returns is the
// one written. Flush and the writer underneath (http.ResponseController,
// hijacking for upgrades) stay reachable.
func OnHeader(w http.ResponseWriter, f func(status int, h http.Header) int) http.ResponseWriter {
	return &headerHook{ResponseWriter: w, f: f}
}

type headerHook struct {
	http.ResponseWriter
	f    func(int, http.Header) int
	done bool
}

func (w *headerHook) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		code = w.f(code, w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerHook) Write(p []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *headerHook) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *headerHook) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Buffered is a response held back from the client so that a stage can read
// or rewrite all of it (a body transform, a cache store). A response larger
// than its limit, or one that is flushed (a stream), is not held: it spills,
// going to the client as it comes with what was held so far, and the stage
// leaves it alone.
type Buffered struct {
	w      http.ResponseWriter
	limit  int
	header http.Header
	Status int
	Body   bytes.Buffer
	spill  bool
	wrote  bool // the status line reached w (spilled)
}

// Buffer returns a writer to hand to the next stage, holding up to limit
// bytes of body.
func Buffer(w http.ResponseWriter, limit int) *Buffered {
	return &Buffered{w: w, limit: limit, header: http.Header{}}
}

// Header is the held response's header (the client's once spilled).
func (b *Buffered) Header() http.Header {
	if b.spill {
		return b.w.Header()
	}
	return b.header
}

func (b *Buffered) WriteHeader(code int) {
	if b.spill {
		if !b.wrote {
			b.wrote = true
			b.w.WriteHeader(code)
		}
		return
	}
	if b.Status == 0 && code >= 200 {
		b.Status = code
	}
}

func (b *Buffered) Write(p []byte) (int, error) {
	if b.Status == 0 {
		b.Status = http.StatusOK
	}
	if b.spill {
		return b.w.Write(p)
	}
	if b.Body.Len()+len(p) > b.limit {
		if err := b.spillNow(); err != nil {
			return 0, err
		}
		return b.w.Write(p)
	}
	return b.Body.Write(p)
}

// Flush spills: a handler that flushes is streaming, and a stream is not
// held back.
func (b *Buffered) Flush() {
	if b.Status == 0 {
		b.Status = http.StatusOK
	}
	if !b.spill {
		_ = b.spillNow()
	}
	if f, ok := b.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the client's writer (for upgrades, which cannot be held).
func (b *Buffered) Unwrap() http.ResponseWriter { return b.w }

// Spilled reports whether the response already went to the client.
func (b *Buffered) Spilled() bool { return b.spill }

func (b *Buffered) spillNow() error {
	b.spill = true
	h := b.w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	b.wrote = true
	b.w.WriteHeader(b.Status)
	if b.Body.Len() == 0 {
		return nil
	}
	_, err := b.w.Write(b.Body.Bytes())
	b.Body.Reset()
	return err
}

// Send writes the held response to the client: its status, header and
// Body as they are now (a stage may have changed any of them). It does
// nothing once spilled.
func (b *Buffered) Send() error {
	return b.SendWithLength(false)
}

// SendWithLength is Send that also sets Content-Length to the body's
// length when length is true (else only when the header has one).
func (b *Buffered) SendWithLength(length bool) error {
	if b.spill {
		return nil
	}
	if b.Status == 0 {
		b.Status = http.StatusOK
	}
	h := b.w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	if _, ok := h["Content-Length"]; ok || length {
		h["Content-Length"] = []string{strconv.Itoa(b.Body.Len())}
	}
	b.spill, b.wrote = true, true
	b.w.WriteHeader(b.Status)
	_, err := b.w.Write(b.Body.Bytes())
	return err
}

// SetBody makes p the held body: copied into Body's storage when it fits
// (so that a reused buffer keeps its capacity), else taken as it is, in
// which case p must not be used after.
func (b *Buffered) SetBody(p []byte) {
	if len(p) <= b.Body.Cap() {
		b.Body.Reset()
		b.Body.Write(p)
		return
	}
	b.Body = *bytes.NewBuffer(p)
}

// SwapBody makes p the held body, taken as it is (p must not be used
// after but through Body), and returns the storage of the body it held,
// emptied, for the caller to reuse.
func (b *Buffered) SwapBody(p []byte) []byte {
	old := b.Body.Bytes()[:0]
	b.Body = *bytes.NewBuffer(p)
	return old
}

// MaxReusedBody bounds a body buffer kept for the next response.
const MaxReusedBody = 64 << 10

// Reusable reports whether b is worth keeping for another response (Reset):
// its body buffer is not larger than a typical response needs.
func (b *Buffered) Reusable() bool { return b.Body.Cap() <= MaxReusedBody }

// Reset makes b hold a new response to w, reusing its header map and body
// buffer. The previous response must be over (sent or spilled).
func (b *Buffered) Reset(w http.ResponseWriter, limit int) {
	clear(b.header)
	b.Body.Reset()
	*b = Buffered{w: w, limit: limit, header: b.header, Body: b.Body}
}
