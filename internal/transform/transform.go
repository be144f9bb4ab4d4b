package transform

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// DefaultMaxBody bounds a body held for transformation when max_body is 0.
const DefaultMaxBody = 1 << 20

// workFactor bounds what a body may grow to while it is transformed (XML
// to JSON, a mapping, jq, JSON to XML), as a multiple of max_body.
const workFactor = 4

// Counter counts transforms: meshgate_transforms_total{route, side,
// result}, side "request" or "response", result "applied", "failed" or
// "skipped".
type Counter interface {
	Transform(route, side, result string)
}

// A Binder is a Counter that can resolve a route's series once, when its
// stage is built, so that a request increments a counter instead of
// looking up its labels (which cost more than the rest of a header-only
// transform).
type Binder interface {
	Counter
	TransformCounter(route, side, result string) Incrementer
}

// The node's metrics bind.
var _ Binder = (*telemetry.Metrics)(nil)

// Incrementer is one series of meshgate_transforms_total.
type Incrementer = interface{ Inc() }

// Results counted.
const (
	resultApplied = "applied"
	resultFailed  = "failed"
	resultSkipped = "skipped"
)

// Sides.
const (
	sideRequest  = "request"
	sideResponse = "response"
)

// Deps are what the transform policy needs besides each route's section.
type Deps struct {
	// Metrics counts transforms (meshgate_transforms_total); nil: not
	// counted.
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	// Counter, when set, counts instead of Metrics (tests).
	Counter Counter
}

type nopCounter struct{}

func (nopCounter) Transform(string, string, string) {}

// Policy returns the transform policy: the stage of every route with a
// transform section.
func Policy(d Deps) policy.Builder {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	count := d.Counter
	if count == nil && d.Metrics != nil {
		count = d.Metrics
	}
	if count == nil {
		count = nopCounter{}
	}
	return &builder{count: count, log: log, ownLog: d.Logger != nil}
}

// builder is the policy's Builder. Besides the route's transform section
// it reads the route's max_body_bytes, which bounds a request body before
// the transform reads it (the forwarder checks it again on what is sent).
type builder struct {
	count  Counter
	log    *slog.Logger
	ownLog bool
}

func (b *builder) Name() string { return "transform" }

func (b *builder) Build(rt *config.Route, env policy.Env, next http.Handler) (http.Handler, error) {
	if rt.Transform == nil {
		return next, nil
	}
	log := b.log
	if !b.ownLog && env.Logger != nil {
		log = env.Logger
	}
	s, err := newStage(rt.Transform, env.Route, next, b.count, log)
	if err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	s.routeMaxBody = rt.MaxBodyBytes.Bytes()
	return s, nil
}

// side is one side of a route's transform, compiled.
type side struct {
	headers    ops
	query      ops // request side
	body       *bodyProg
	status     []statusRule // response side
	rejectOver bool         // on_too_large: reject
	// readsBody: the body is held and read (a body transform, or a status
	// rule with if_field).
	readsBody bool
}

// statusRule is one entry of the response side's status map.
type statusRule struct {
	from, to int
	field    *jsonx.Program // extracts if_field; nil: none
}

// stage is the transform stage of one route.
type stage struct {
	next  http.Handler
	route string
	log   *slog.Logger
	count Counter
	// counts are the route's series, [side][result] (sideIndex,
	// resultIndex), when count is a Binder.
	counts  *[2][3]Incrementer
	maxBody int
	// routeMaxBody is the route's max_body_bytes (0: none): a request body
	// over it is refused (413) whatever on_too_large says.
	routeMaxBody int64
	req          *side
	resp         *side
	// respReadsHeaders: the response side reads request headers that the
	// request side changes (a copy is kept of the headers as received).
	respReadsHeaders bool
	// streams: whether a request is a stream matters (a body is read).
	streams bool
}

func newStage(c *config.Transform, route string, next http.Handler, count Counter, log *slog.Logger) (*stage, error) {
	s := &stage{next: next, route: route, log: log, count: count, maxBody: int(c.MaxBody)}
	if b, ok := count.(Binder); ok {
		s.counts = new([2][3]Incrementer)
		for i, sd := range [2]string{sideRequest, sideResponse} {
			for j, res := range [3]string{resultApplied, resultFailed, resultSkipped} {
				s.counts[i][j] = b.TransformCounter(route, sd, res)
			}
		}
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if c.MaxBody < 0 || int64(c.MaxBody) > 1<<30 {
		return nil, fmt.Errorf("max_body %d is out of range (at most 1GiB)", c.MaxBody)
	}
	var err error
	if c.Request != nil {
		if s.req, err = s.compileSide("request", c.Request, false); err != nil {
			return nil, err
		}
	}
	if c.Response != nil {
		if s.resp, err = s.compileSide("response", c.Response, true); err != nil {
			return nil, err
		}
		if s.req != nil && (!s.req.headers.empty()) {
			s.respReadsHeaders = readsHeaders(c.Response)
		}
	}
	s.streams = s.req != nil && s.req.body != nil || s.resp != nil
	return s, nil
}

func (s *stage) compileSide(what string, c *config.TransformSide, response bool) (*side, error) {
	sd := &side{}
	var err error
	if sd.headers, err = compileOps(what+".headers", c.Headers, true); err != nil {
		return nil, err
	}
	if sd.query, err = compileOps(what+".query", c.Query, false); err != nil {
		return nil, err
	}
	if response && !sd.query.empty() {
		return nil, fmt.Errorf("%s.query: query parameters are changed on the request side only", what)
	}
	switch c.OnTooLarge {
	case "":
		sd.rejectOver = !response
	case "reject":
		sd.rejectOver = true
	case "pass":
	default:
		return nil, fmt.Errorf("%s.on_too_large: %q is not reject or pass", what, c.OnTooLarge)
	}
	if c.Body != nil {
		if sd.body, err = compileBody(what+".body", c.Body, s.maxBody, response); err != nil {
			return nil, err
		}
		sd.readsBody = true
	}
	if len(c.Status) > 0 && !response {
		return nil, fmt.Errorf("%s.status: statuses are mapped on the response side only", what)
	}
	for i, m := range c.Status {
		if m.From != 0 && (m.From < 100 || m.From > 599) || m.To < 200 || m.To > 599 {
			return nil, fmt.Errorf("%s.status[%d]: from %d to %d is not a status mapping", what, i, m.From, m.To)
		}
		r := statusRule{from: m.From, to: m.To}
		if m.IfField != "" {
			p, err := jsonx.Compile(jsonx.Spec{Ops: []jsonx.Op{{Kind: "extract", Path: m.IfField}}})
			if err != nil {
				return nil, fmt.Errorf("%s.status[%d].if_field: %w", what, i, err)
			}
			r.field = p
			sd.readsBody = true
		}
		sd.status = append(sd.status, r)
	}
	return sd, nil
}

// readsHeaders: some value of the response side reads request headers.
func readsHeaders(c *config.TransformSide) bool {
	for _, m := range []map[string]string{c.Headers.Set, c.Headers.Add} {
		for _, v := range m {
			if strings.Contains(v, "{header.") {
				return true
			}
		}
	}
	if b := c.Body; b != nil {
		if strings.Contains(b.JQ, "$headers") {
			return true
		}
		for _, m := range b.Map {
			if strings.HasPrefix(m.Var, "header.") {
				return true
			}
		}
	}
	return false
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange.From(r.Context())
	v := vars{x: x, h: r.Header, q: r.URL.RawQuery}
	stream := s.streams && isStreamRequest(r, x)
	switch {
	case s.resp == nil:
		if s.req.serve(s, w, r, x, &v, stream) {
			s.next.ServeHTTP(w, r)
		}
	case !s.resp.readsBody || stream || r.Method == http.MethodHead:
		s.serveBodiless(w, r, x, &v, stream)
	default:
		rs := s.prepareResponse(w, r, x, &v)
		if s.req.serve(s, w, r, x, &v, stream) {
			rs.serve(r)
		}
		rs.release()
	}
}

// serve applies the request side (nil: none); false when it answered the
// request itself.
func (sd *side) serve(s *stage, w http.ResponseWriter, r *http.Request, x *exchange.Exchange, v *vars, stream bool) bool {
	return sd == nil || s.serveRequest(w, r, x, v, stream)
}

// serveBodiless serves a request whose response body is not read: the
// response side is its status rules without if_field and its headers,
// applied by a pooled hook as the status line goes out.
func (s *stage) serveBodiless(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, v *vars, stream bool) {
	hw := headerWriters.Get().(*headerWriter)
	*hw = headerWriter{ResponseWriter: w, sd: s.resp, x: x,
		grpc: stream && (x != nil && x.GRPC || hasPrefixFold(firstValue(r.Header["Content-Type"]), "application/grpc"))}
	if s.resp.headers.dynamic {
		hw.vals = s.resp.headers.values(v, nil) // before the request side changes the request
	}
	if s.req.serve(s, w, r, x, v, stream) {
		s.next.ServeHTTP(hw, r)
		result, reason := resultApplied, ""
		if s.resp.readsBody {
			result, reason = resultSkipped, "stream"
			if r.Method == http.MethodHead {
				reason = "no body"
			}
		}
		s.observe(telemetry.SpanFromContext(r.Context()), sideResponse, result, reason, time.Now())
	}
	*hw = headerWriter{}
	headerWriters.Put(hw)
}

// isStreamRequest: gRPC, an upgrade (WebSocket) or a tunnel, whose bodies
// are streams a transform leaves alone.
func isStreamRequest(r *http.Request, x *exchange.Exchange) bool {
	if x != nil && x.GRPC || r.Method == http.MethodConnect {
		return true
	}
	if len(r.Header["Upgrade"]) > 0 {
		return true
	}
	if ct := r.Header["Content-Type"]; len(ct) > 0 && hasPrefixFold(ct[0], "application/grpc") {
		return true
	}
	return false
}

// hasBody: the request announces a body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// serveRequest applies the request side; false when it answered the
// request itself.
func (s *stage) serveRequest(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, v *vars, stream bool) bool {
	sd := s.req
	span := telemetry.SpanFromContext(r.Context())
	var start time.Time
	if span.Recording() {
		start = time.Now()
	}
	// Every template reads the request as it reached the stage.
	var hbuf, qbuf [8]string
	hvals := sd.headers.values(v, hbuf[:0])
	qvals := sd.query.values(v, qbuf[:0])
	result, reason := resultApplied, ""
	if sd.body != nil {
		switch {
		case stream:
			result, reason = resultSkipped, "stream"
		case !hasBody(r):
			result, reason = resultSkipped, "no body"
		default:
			var ok bool
			if result, reason, ok = s.requestBody(w, r, x, v); !ok {
				s.observe(span, sideRequest, resultFailed, reason, start)
				return false
			}
		}
	}
	sd.headers.applyHeaders(r.Header, hvals)
	if !sd.query.empty() {
		q := sd.query.applyQuery(r.URL.RawQuery, qvals)
		r.URL.RawQuery = q
		r.URL.ForceQuery = false
	}
	s.observe(span, sideRequest, result, reason, start)
	return true
}

// requestBody transforms the request's body. It returns the result and,
// when it answered the request itself, false with the reason.
func (s *stage) requestBody(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, v *vars) (string, string, bool) {
	sd := s.req
	reject := func(k *exchange.Kind, reason string) (string, string, bool) {
		exchange.WriteReason(w, x, k, reason)
		s.log.Debug("transform refused a request body", "route", s.route, "error", k.Name, "reason", reason, "request_id", requestID(x))
		return resultFailed, reason, false
	}
	if s.routeMaxBody > 0 && r.ContentLength > s.routeMaxBody {
		return reject(exchange.BodyTooLarge, exchange.BodyTooLarge.Text)
	}
	if r.ContentLength > int64(s.maxBody) {
		if sd.rejectOver {
			return reject(exchange.BodyTooLarge, exchange.BodyTooLarge.Text)
		}
		return resultSkipped, "too large", true
	}
	limit := s.maxBody
	if s.routeMaxBody > 0 && s.routeMaxBody < int64(limit) {
		limit = int(s.routeMaxBody)
	}
	raw, err := readUpTo(r.Body, limit, r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return reject(exchange.BodyTooLarge, exchange.BodyTooLarge.Text)
		case r.Context().Err() != nil:
			if x != nil {
				x.Status, x.Reason = 499, "client closed request" // nobody to answer
			}
			return resultFailed, "client closed request", false
		}
		w.Header()["Connection"] = []string{"close"}
		return reject(exchange.BadBody, exchange.BadBody.Text)
	}
	if len(raw) > limit {
		// Over max_body with reject, or over the route's max_body_bytes.
		if sd.rejectOver || limit < s.maxBody {
			return reject(exchange.BodyTooLarge, exchange.BodyTooLarge.Text)
		}
		r.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(raw), r.Body), c: r.Body}
		return resultSkipped, "too large", true
	}
	if len(raw) == 0 {
		r.Body, r.ContentLength = http.NoBody, 0
		return resultSkipped, "no body", true
	}
	// From here on the whole body is in raw: passing it on untransformed
	// is sending raw.
	passRaw := func(reason string) (string, string, bool) {
		setRequestBody(r, raw)
		return resultSkipped, reason, true
	}
	coding, codingTok := contentCoding(r.Header["Content-Encoding"])
	data := raw
	switch coding {
	case codingUnknown:
		w.Header()["Accept-Encoding"] = []string{"gzip, deflate"}
		return reject(exchange.UnsupportedEncoding, "unsupported content encoding: "+codingTok)
	case codingGzip, codingDeflate:
		if data, err = decode(raw, coding, s.maxBody); err != nil {
			if errors.Is(err, errDecodedTooLarge) {
				if sd.rejectOver {
					return reject(exchange.BodyTooLarge, exchange.BodyTooLarge.Text)
				}
				return passRaw("too large")
			}
			return reject(exchange.InvalidBody, "invalid request body: bad "+codingName(coding)+" data")
		}
	}
	b := sd.body
	doc, berr := b.toJSON(data)
	if berr == nil {
		doc, berr = b.reshape(r.Context(), doc, v)
	}
	var out []byte
	if berr == nil {
		out, berr = b.fromJSON(doc, b.to == formatXML)
	}
	if berr != nil {
		switch berr.outcome {
		case bodyInvalid:
			return reject(exchange.InvalidBody, "invalid request body: "+berr.reason)
		case bodyTooLarge:
			if sd.rejectOver {
				return reject(exchange.BodyTooLarge, exchange.BodyTooLarge.Text)
			}
			return passRaw("too large")
		default:
			s.log.Warn("request transform failed", "route", s.route, "reason", berr.reason, "request_id", requestID(x))
			return reject(exchange.TransformFailed, exchange.TransformFailed.Text)
		}
	}
	setRequestBody(r, out)
	h := r.Header
	delete(h, "Content-Encoding")
	setContentType(h, b.from, b.to == formatXML, typeXML)
	return resultApplied, "", true
}

// setContentType labels a transformed body: the type it had when the
// format did not change and it was of that format, else the format's.
func setContentType(h http.Header, from string, toXML bool, xmlType string) {
	to := formatJSON
	if toXML {
		to = formatXML
	}
	if ct := h["Content-Type"]; len(ct) > 0 && from == to {
		mt := mediaType(ct[0])
		if to == formatJSON && isJSONType(mt) || to == formatXML && isXMLType(mt) {
			return
		}
	}
	if toXML {
		h["Content-Type"] = []string{xmlType}
	} else {
		h["Content-Type"] = []string{typeJSON}
	}
}

// setRequestBody makes b the request's body, whole and replayable.
func setRequestBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	r.TransferEncoding = nil
	r.Header["Content-Length"] = []string{strconv.Itoa(len(b))}
}

// prefixedBody is a body of which a part was read: that part, then the
// rest, closing the original.
type prefixedBody struct {
	io.Reader
	c io.Closer
}

func (b *prefixedBody) Close() error { return b.c.Close() }

// readUpTo reads r to its end, or to limit+1 bytes (then the caller knows
// it is over).
func readUpTo(r io.Reader, limit int, size int64) ([]byte, error) {
	n := 512
	if size > 0 {
		n = int(size) + 1 // the EOF read needs room
	}
	buf := make([]byte, 0, min(n, limit+1))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+m]
		if len(buf) > limit {
			return buf, nil
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// observe counts one side's transform and adds its event to the trace.
func (s *stage) observe(span *telemetry.Span, side, result, reason string, start time.Time) {
	if s.counts != nil {
		s.counts[sideIndex(side)][resultIndex(result)].Inc()
	} else {
		s.count.Transform(s.route, side, result)
	}
	if !span.Recording() {
		return
	}
	now := time.Now()
	kv := []string{"meshgate.transform.side", side, "meshgate.transform.result", result,
		"meshgate.transform.duration_ms", strconv.FormatFloat(float64(now.Sub(start))/1e6, 'f', 3, 64)}
	if reason != "" {
		kv = append(kv, "meshgate.reason", reason)
	}
	span.AddEvent("meshgate.transform", now, kv...)
}

// sideIndex and resultIndex place a side and a result in stage.counts.
func sideIndex(side string) int {
	if side == sideRequest {
		return 0
	}
	return 1
}

func resultIndex(result string) int {
	switch result {
	case resultApplied:
		return 0
	case resultFailed:
		return 1
	}
	return 2
}

func requestID(x *exchange.Exchange) string {
	if x == nil {
		return ""
	}
	return x.RequestID
}
