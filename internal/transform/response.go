package transform

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// Modes of a response as its header is seen.
const (
	modeUndecided = iota
	modeHold      // held in the Buffered, transformed when next returns
	modePass      // passed through to the client untouched (but for the hook)
)

// errDiscarded stops a response body over max_body that the route
// rejects: what comes is not kept, and the client gets a 502.
var errDiscarded = errors.New("transform: response body over max_body discarded")

// respState is one response's transform. While the response is held it is
// the writer the next stage writes to.
type respState struct {
	s  *stage
	sd *side
	x  *exchange.Exchange
	r  *http.Request
	w  http.ResponseWriter // the client's
	// hook is w with the header ops (and the status rules that need no
	// body) applied as the status line goes out.
	hook  http.ResponseWriter
	buf   *policy.Buffered
	v     vars     // the request as it reached the stage
	hvals []string // the header templates' values
	// scratch is the buffer a mapping writes the body into: it becomes the
	// held body, and the body's storage the next scratch (pooled with rs).
	scratch []byte
	toXML   bool
	xmlType string
	mode    uint8
	held    bool // the status was mapped with the body: the hook leaves it
	over    bool // over max_body with on_too_large reject: writes discarded
	// result and reason of a response let through untransformed.
	result, reason string
}

// prepareResponse takes what the response side needs from the request as
// it reached the stage, before the request side changes it.
func (s *stage) prepareResponse(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, v *vars) *respState {
	sd := s.resp
	rs := respStates.Get().(*respState)
	*rs = respState{s: s, sd: sd, x: x, r: r, w: w, hook: w, buf: rs.buf, scratch: rs.scratch}
	rs.hvals = sd.headers.values(v, rs.hvals[:0])
	rs.v = *v
	if s.respReadsHeaders {
		rs.v.h = r.Header.Clone()
	}
	if b := sd.body; b != nil {
		switch b.to {
		case formatXML:
			rs.toXML, rs.xmlType = true, typeXML
		case formatAccept:
			rs.toXML, rs.xmlType = prefersXML(r.Header["Accept"])
		}
	}
	return rs
}

// respStates keeps each response's state, with its buffer, for the next:
// a transformed response would otherwise allocate both.
var respStates = sync.Pool{New: func() any { return new(respState) }}

// release puts rs back for another response, once the response is sent
// (nothing of it is written after the stage returns).
func (rs *respState) release() {
	if rs.buf != nil && !rs.buf.Reusable() {
		rs.buf = nil
	}
	scratch := rs.scratch[:0]
	if cap(scratch) > policy.MaxReusedBody {
		scratch = nil
	}
	hvals := rs.hvals[:0]
	clear(rs.hvals)
	*rs = respState{buf: rs.buf, hvals: hvals, scratch: scratch}
	respStates.Put(rs)
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// serve runs the next stage with the response side around it, having
// asked the upstream for a body that can be read whole: no codings but
// gzip and deflate, no ranges.
func (rs *respState) serve(r *http.Request) {
	s, sd := rs.s, rs.sd
	if sd.body != nil {
		delete(r.Header, "Range")
		delete(r.Header, "If-Range")
	}
	if ae, changed := acceptEncoding(r.Header["Accept-Encoding"]); changed {
		r.Header["Accept-Encoding"] = ae
	}
	if !sd.headers.empty() || len(sd.status) > 0 {
		rs.hook = policy.OnHeader(rs.w, rs.onHeader)
	}
	if rs.buf == nil {
		rs.buf = policy.Buffer(rs.hook, s.maxBody)
	} else {
		rs.buf.Reset(rs.hook, s.maxBody)
	}
	s.next.ServeHTTP(rs, r)
	rs.finish()
}

// onHeader is the hook: status rules that need no body (unless the status
// was mapped already, with the body), then the header ops; nothing for
// the proxy's own answers.
func (rs *respState) onHeader(status int, h http.Header) int {
	if rs.x != nil && rs.x.Error != nil {
		return status
	}
	if !rs.held {
		status = rs.sd.mapStatus(status, nil, 0)
	}
	rs.sd.headers.applyHeaders(h, rs.hvals)
	return status
}

// headerWriter is the writer of a response whose body is not read: like
// policy.OnHeader's, it applies the response side (status rules without
// if_field, but not to gRPC, and the header ops) once, as the status line
// goes out, and leaves the proxy's own answers alone. It is pooled, so
// that a route with only header operations allocates nothing.
type headerWriter struct {
	http.ResponseWriter
	sd   *side
	x    *exchange.Exchange
	vals []string // the header templates' values (nil: constants)
	grpc bool
	done bool
}

var headerWriters = sync.Pool{New: func() any { return new(headerWriter) }}

func (w *headerWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		if w.x == nil || w.x.Error == nil {
			if !w.grpc {
				code = w.sd.mapStatus(code, nil, 0)
			}
			w.sd.headers.applyHeaders(w.Header(), w.vals)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *headerWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the client's writer (hijacking for upgrades, deadlines).
func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// mapStatus is the status of the first rule that matches (doc nil: rules
// with if_field do not).
func (sd *side) mapStatus(status int, doc []byte, limit int) int {
	for _, m := range sd.status {
		if m.from != 0 && m.from != status {
			continue
		}
		if m.field != nil && (doc == nil || !hasField(m.field, doc, limit)) {
			continue
		}
		return m.to
	}
	return status
}

// hasField: the document has the path, with a value other than null.
func hasField(p *jsonx.Program, doc []byte, limit int) bool {
	out, err := p.Apply(doc, nil, jsonx.Limits{MaxBytes: limit})
	if err != nil {
		return false
	}
	out = bytes.TrimSpace(out)
	return len(out) > 0 && string(out) != "null"
}

// The writer the next stage writes to.

func (rs *respState) Header() http.Header {
	if rs.mode == modePass {
		return rs.hook.Header()
	}
	return rs.buf.Header()
}

func (rs *respState) WriteHeader(code int) {
	if rs.mode == modePass {
		rs.hook.WriteHeader(code)
		return
	}
	rs.buf.WriteHeader(code)
	if code >= 200 && rs.mode == modeUndecided {
		rs.decide()
	}
}

func (rs *respState) Write(p []byte) (int, error) {
	if rs.mode == modeUndecided {
		rs.decide()
	}
	switch {
	case rs.mode == modePass:
		return rs.hook.Write(p)
	case rs.over:
		return 0, errDiscarded
	case rs.buf.Spilled():
	case rs.buf.Body.Len()+len(p) > rs.s.maxBody:
		if rs.sd.rejectOver {
			rs.over = true
			rs.buf.Body.Reset()
			return 0, errDiscarded
		}
		rs.result, rs.reason = resultSkipped, "too large" // it spills
	}
	return rs.buf.Write(p)
}

// Flush streams a response that is passed through; a held one is a whole
// body to be read, so the flush waits for it (an upstream answering with
// chunks flushes as they come).
func (rs *respState) Flush() {
	if rs.mode == modeUndecided {
		rs.decide()
	}
	if rs.mode == modePass {
		if f, ok := rs.hook.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// Unwrap exposes the writer underneath (http.ResponseController).
func (rs *respState) Unwrap() http.ResponseWriter {
	if rs.mode == modePass {
		return rs.hook
	}
	return rs.buf
}

// decide looks at the response's status and header: a response the
// transform cannot or need not read goes through as it comes; any other
// is held.
func (rs *respState) decide() {
	status := rs.buf.Status
	if status == 0 {
		status = http.StatusOK
	}
	h := rs.buf.Header()
	mt := mediaType(firstValue(h["Content-Type"]))
	reason := ""
	switch {
	case rs.x != nil && rs.x.Error != nil:
		reason = "generated" // the proxy's own answer, from the error table
	case status == http.StatusNoContent || status == http.StatusNotModified:
		reason = "no body"
	case status == http.StatusPartialContent:
		reason = "partial content"
	case isStreamType(mt):
		reason = "stream"
	case mt != "" && !rs.readsType(mt):
		reason = "content type"
	default:
		if c, _ := contentCoding(h["Content-Encoding"]); c == codingUnknown {
			reason = "content encoding"
		} else if n, err := strconv.ParseInt(firstValue(h["Content-Length"]), 10, 64); err == nil && n > int64(rs.s.maxBody) {
			if rs.sd.rejectOver {
				rs.over = true
			} else {
				reason = "too large"
			}
		}
	}
	if reason == "" {
		rs.mode = modeHold
		return
	}
	rs.mode, rs.result, rs.reason = modePass, resultSkipped, reason
	dst := rs.hook.Header()
	for k, v := range h {
		dst[k] = v
	}
	rs.hook.WriteHeader(status)
}

// readsType: a media type the response side reads.
func (rs *respState) readsType(mt string) bool {
	if b := rs.sd.body; b != nil && b.from == formatXML {
		return isXMLType(mt)
	}
	return isJSONType(mt)
}

// finish transforms a held response and sends it, or answers 502 instead
// when it cannot be read: nothing of it was sent yet.
func (rs *respState) finish() {
	s, sd, buf := rs.s, rs.sd, rs.buf
	span := telemetry.SpanFromContext(rs.r.Context())
	var start time.Time
	if span.Recording() {
		start = time.Now()
	}
	observe := func(result, reason string) { s.observe(span, sideResponse, result, reason, start) }
	switch {
	case rs.mode == modePass:
		observe(rs.result, rs.reason)
		return
	case rs.over:
		rs.fail(exchange.UpstreamBodyTooLarge, exchange.UpstreamBodyTooLarge.Text)
		observe(resultFailed, exchange.UpstreamBodyTooLarge.Text)
		return
	case buf.Spilled():
		observe(resultSkipped, "too large")
		return
	}
	body := buf.Body.Bytes()
	if len(body) == 0 {
		rs.send() // the hook maps the status with the rules that need no body
		if sd.body != nil {
			observe(resultSkipped, "no body")
		} else {
			observe(resultApplied, "")
		}
		return
	}
	h := buf.Header()
	status := buf.Status
	coding, _ := contentCoding(h["Content-Encoding"])
	data := body
	if coding != codingIdentity {
		var err error
		if data, err = decode(body, coding, s.maxBody); err != nil {
			if errors.Is(err, errDecodedTooLarge) {
				rs.tooLarge(observe)
				return
			}
			reason := "invalid upstream body: bad " + codingName(coding) + " data"
			rs.fail(exchange.BadUpstreamBody, reason)
			observe(resultFailed, reason)
			return
		}
	}
	b := sd.body
	doc := data
	var berr *bodyError
	if b != nil {
		doc, berr = b.toJSON(data)
	}
	if berr == nil && len(sd.status) > 0 {
		status = sd.mapStatus(status, doc, s.maxBody*workFactor)
	}
	rs.held = true
	if b == nil { // status rules only: the body goes as it came
		buf.Status = status
		rs.send()
		observe(resultApplied, "")
		return
	}
	if berr == nil && b.reshapes() && status >= 200 && status < 300 {
		// rs is on the heap: the mapping reads rs.v without a copy.
		doc, berr = b.reshapeWith(rs.r.Context(), &rs.scratch, doc, &rs.v, &rs.v)
	}
	var out []byte
	if berr == nil {
		out, berr = b.fromJSON(doc, rs.toXML)
	}
	if berr != nil {
		rs.held = false
		switch berr.outcome {
		case bodyTooLarge:
			rs.tooLarge(observe)
		case bodyInvalid:
			reason := "invalid upstream body: " + berr.reason
			rs.fail(exchange.BadUpstreamBody, reason)
			observe(resultFailed, reason)
		default:
			s.log.Warn("response transform failed", "route", s.route, "reason", berr.reason, "request_id", requestID(rs.x))
			rs.fail(exchange.TransformFailed, exchange.TransformFailed.Text)
			observe(resultFailed, berr.reason)
		}
		return
	}
	if coding != codingIdentity || !bytes.Equal(out, body) {
		// Another representation: validators and digests of the upstream's
		// no longer describe it, nor do its byte ranges.
		delete(h, "Content-Encoding")
		weakenETag(h)
		delete(h, "Content-Md5")
		delete(h, "Digest")
		delete(h, "Content-Digest")
		delete(h, "Repr-Digest")
		delete(h, "Accept-Ranges")
	}
	setContentType(h, b.from, rs.toXML, rs.xmlType)
	if b.to == formatAccept {
		addVary(h, "Accept")
	}
	if len(out) > 0 && len(rs.scratch) > 0 && &out[0] == &rs.scratch[0] {
		rs.scratch = buf.SwapBody(out) // the mapping's output, as it is
	} else {
		buf.SetBody(out)
	}
	buf.Status = status
	rs.send()
	observe(resultApplied, "")
}

// tooLarge handles a held body that decodes or grows past the limits:
// sent as it came (pass), or refused.
func (rs *respState) tooLarge(observe func(string, string)) {
	if rs.sd.rejectOver {
		rs.fail(exchange.UpstreamBodyTooLarge, exchange.UpstreamBodyTooLarge.Text)
		observe(resultFailed, exchange.UpstreamBodyTooLarge.Text)
		return
	}
	rs.held = false
	rs.send()
	observe(resultSkipped, "too large")
}

// send sends the held response, whose length is known.
func (rs *respState) send() {
	_ = rs.buf.SendWithLength(rs.buf.Status != http.StatusNoContent && rs.buf.Status != http.StatusNotModified)
}

// fail answers the client with k instead of the held response, which is
// dropped whole.
func (rs *respState) fail(k *exchange.Kind, reason string) {
	rs.buf.Body.Reset()
	rs.s.log.Debug("transform refused an upstream body", "route", rs.s.route, "error", k.Name, "reason", reason, "request_id", requestID(rs.x))
	exchange.WriteReason(rs.w, rs.x, k, reason)
}

// weakenETag: a strong validator becomes weak ("x" → W/"x"): the body is
// equivalent to the upstream's, not the same bytes.
func weakenETag(h http.Header) {
	if et := h["Etag"]; len(et) > 0 && strings.HasPrefix(et[0], `"`) {
		h["Etag"] = []string{"W/" + et[0]}
	}
}

// addVary adds a field name to Vary unless it is there (or "*" is).
func addVary(h http.Header, name string) {
	for _, v := range h["Vary"] {
		for tok := range strings.SplitSeq(v, ",") {
			if t := strings.TrimSpace(tok); t == "*" || strings.EqualFold(t, name) {
				return
			}
		}
	}
	h["Vary"] = append(h["Vary"][:len(h["Vary"]):len(h["Vary"])], name)
}
