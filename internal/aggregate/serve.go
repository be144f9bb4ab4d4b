package aggregate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/h1server"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/transform"
)

// state is where a call of one request is.
type state uint8

const (
	statePending   state = iota // not started (waiting, or never started)
	stateRunning                // its goroutine runs
	stateOK                     // answered; doc holds its document
	stateFailed                 // failed by itself (kind, reason, metric)
	stateCancelled              // the composite's context ended while it ran
	stateSkipped                // not made: a call it depends on failed
)

// result is what a call of one request came to. A call's goroutine writes
// its result, then reports on run.done; the serving goroutine reads it
// after that only.
type result struct {
	state  state
	kind   *exchange.Kind
	reason string // the client's error text, naming the call
	metric string
	doc    []byte // the call's JSON document (trimmed), on stateOK
	header http.Header
	buf    []byte // the body read, kept for the next request
	// Scratch space for the call's target and values, kept too.
	target, val []byte
}

func (res *result) fail(k *exchange.Kind, reason, metric string) {
	res.state, res.kind, res.reason, res.metric = stateFailed, k, reason, metric
}

// run is the state of one composite request, pooled per stage.
type run struct {
	ctx     context.Context
	r       *http.Request
	rd      renderer
	done    chan int // calls report here when they return; buffered: never blocks
	res     []result
	pending []int // dependencies each call still waits for
	tree    tree
	out     []byte
}

func newRun(n int) *run {
	rn := &run{done: make(chan int, n), res: make([]result, n), pending: make([]int, n)}
	rn.rd.res = rn.res
	return rn
}

// maxKeptBuffer bounds a buffer a pooled run keeps for the next request.
const maxKeptBuffer = 64 << 10

func (rn *run) reset() {
	rn.ctx, rn.r, rn.rd.vars = nil, nil, nil
	for i := range rn.res {
		res := &rn.res[i]
		*res = result{buf: keep(res.buf), target: keep(res.target), val: keep(res.val)}
	}
	rn.tree.reset()
	rn.out = keep(rn.out)
}

// keep is b emptied for reuse, or nil if it grew too large to keep.
func keep(b []byte) []byte {
	if cap(b) > maxKeptBuffer {
		return nil
	}
	return b[:0]
}

// Shared header values (len == cap: an append by anyone copies them).
var (
	identity = []string{"identity"}
	typeJSON = []string{"application/json"}
	noStore  = []string{"no-store"}
	retryIn1 = []string{"1"}
	accept   = []string{"Accept"}
)

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange.From(r.Context())
	if x != nil {
		x.Upstream = UpstreamLabel
	}
	if s.inFlight.Add(1) > s.maxInFlight {
		s.inFlight.Add(-1)
		w.Header()["Retry-After"] = retryIn1
		exchange.Write(w, x, exchange.AggregateOverloaded)
		return
	}
	defer s.inFlight.Add(-1)
	// An HTTP/1.1 client that goes away is noticed only by a read of its
	// connection: watch it while the calls run, so that they end with it
	// (HTTP/2 cancels the request's context by itself).
	client, stopWatch := h1server.WatchClient(w, r.Context())
	defer stopWatch()
	ctx, cancel := context.WithTimeout(client, s.timeout)
	defer cancel()
	rn := s.runs.Get().(*run)
	defer func() {
		rn.reset()
		s.runs.Put(rn)
	}()
	rn.ctx, rn.r = ctx, r
	rn.rd.vars = transform.RequestVars(r)
	failed := s.fanOut(rn, cancel)
	stopWatch() // before anything is written
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	s.countCalls(rn, failed, timedOut)
	if client.Err() != nil && !errors.Is(context.Cause(client), context.DeadlineExceeded) {
		// The client went away: nobody to answer.
		if x != nil {
			x.Status, x.Reason = 499, "client closed request"
		}
		return
	}
	if failed >= 0 {
		res := &rn.res[failed]
		s.log.Debug("aggregate call failed", "route", s.route, "call", s.calls[failed].name,
			"reason", res.reason, "request_id", requestID(x))
		exchange.WriteReason(w, x, res.kind, res.reason)
		return
	}
	for i, c := range s.calls {
		if !c.optional && rn.res[i].state != stateOK {
			reason := "aggregate: timed out waiting for call " + c.name
			s.log.Debug("aggregate call failed", "route", s.route, "call", c.name, "reason", reason, "request_id", requestID(x))
			exchange.WriteReason(w, x, exchange.AggregateTimeout, reason)
			return
		}
	}
	s.respond(w, r, x, rn)
}

// fanOut makes the calls, each as soon as the calls it depends on have
// answered, and returns when every call it started has returned. It
// returns the call whose failure fails the request (-1: none), after
// cancelling the others.
func (s *stage) fanOut(rn *run, cancel context.CancelFunc) int {
	failed, running := -1, 0
	for i, c := range s.calls {
		rn.pending[i] = len(c.deps)
	}
	for _, i := range s.roots {
		running += s.start(rn, i)
	}
	for running > 0 {
		i := <-rn.done
		running--
		switch rn.res[i].state {
		case stateOK:
			for _, n := range s.calls[i].next {
				if rn.pending[n]--; rn.pending[n] == 0 && failed < 0 {
					running += s.start(rn, n)
				}
			}
		case stateFailed:
			f := s.skipDependents(rn, i)
			if !s.calls[i].optional {
				f = i
			}
			if f >= 0 && failed < 0 {
				failed = f
				cancel() // the others' results no longer matter
			}
		}
	}
	return failed
}

// start starts call i unless the composite's context is done or the call
// was skipped; it returns the number of goroutines started.
func (s *stage) start(rn *run, i int) int {
	if rn.ctx.Err() != nil || rn.res[i].state != statePending {
		return 0
	}
	rn.res[i].state = stateRunning
	go s.exec(rn, i)
	return 1
}

// skipDependents marks the calls waiting for failed call i (and theirs)
// skipped; it returns a required one, or -1.
func (s *stage) skipDependents(rn *run, i int) int {
	required := -1
	for _, n := range s.calls[i].next {
		res := &rn.res[n]
		if res.state != statePending {
			continue
		}
		c := s.calls[n]
		res.fail(exchange.AggregateCallFailed, "aggregate: call "+c.name+" failed: depends on failed call "+s.calls[i].name, ResultSkipped)
		res.state = stateSkipped
		if !c.optional && required < 0 {
			required = n
		}
		if f := s.skipDependents(rn, n); f >= 0 && required < 0 {
			required = f
		}
	}
	return required
}

// exec runs call i in its own goroutine and reports it done.
func (s *stage) exec(rn *run, i int) {
	c, res := s.calls[i], &rn.res[i]
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("aggregate call panicked", "route", s.route, "call", c.name, "panic", p, "stack", string(debug.Stack()))
			res.fail(exchange.AggregateCallFailed, c.failure("internal error"), ResultFailed)
		}
		rn.done <- i
	}()
	c.do(rn, res)
}

// failure is the client's error text of a call that failed for reason.
func (c *call) failure(reason string) string {
	return "aggregate: call " + c.name + " failed: " + reason
}

// do makes the call and reads its response into res.
func (c *call) do(rn *run, res *result) {
	req, why := c.request(rn, res)
	if why != "" {
		res.fail(exchange.AggregateCallFailed, c.failure(why), ResultFailed)
		return
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		if rn.ctx.Err() != nil {
			res.state = stateCancelled
			return
		}
		reason, metric := "upstream request failed", ResultFailed
		var ce *proxy.CallError
		if errors.As(err, &ce) && ce.Kind != nil {
			reason = ce.Kind.Text
			if ce.Kind.Status == http.StatusGatewayTimeout {
				metric = ResultTimeout
			}
		}
		res.fail(exchange.AggregateCallFailed, c.failure(reason), metric)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10) // a short error body: keep the connection
		res.fail(exchange.AggregateCallFailed, c.failure("status "+strconv.Itoa(resp.StatusCode)), ResultFailed)
		return
	}
	if ce := resp.Header["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && (ce[0] == "" || equalFold(ce[0], "identity"))) {
		res.fail(exchange.AggregateCallFailed, c.failure("response has Content-Encoding "+safeToken(ce[0])), ResultFailed)
		return
	}
	body, tooLarge, err := readBody(resp.Body, res.buf[:0], c.maxBody, resp.ContentLength)
	res.buf = body
	switch {
	case tooLarge:
		res.fail(exchange.AggregateTooLarge, c.tooLarge, ResultTooLarge)
		return
	case err != nil && rn.ctx.Err() != nil:
		res.state = stateCancelled
		return
	case err != nil:
		res.fail(exchange.AggregateCallFailed, c.failure("response body cut short"), ResultFailed)
		return
	}
	doc := body
	if !c.fromXML {
		if why := checkJSON(doc); why != "" {
			res.fail(exchange.AggregateCallFailed, c.failure("response is not JSON: "+why), ResultFailed)
			return
		}
	}
	if c.transform != nil {
		out, err := c.transform.Reshape(rn.ctx, doc, rn.rd.vars)
		if err != nil {
			var be *transform.BodyError
			switch {
			case rn.ctx.Err() != nil:
				res.state = stateCancelled
			case errors.As(err, &be) && be.Invalid:
				res.fail(exchange.AggregateCallFailed, c.failure("invalid response: "+be.Reason), ResultFailed)
			case errors.As(err, &be) && be.TooLarge:
				res.fail(exchange.AggregateTooLarge, c.tooLarge, ResultTooLarge)
			default:
				res.fail(exchange.AggregateCallFailed, c.failure("transform failed"), ResultFailed)
			}
			return
		}
		doc = out
	}
	if doc = bytes.TrimSpace(doc); len(doc) == 0 {
		doc = null // a filter left nothing
	}
	if c.into == nil && doc[0] != '{' {
		res.fail(exchange.AggregateCallFailed, c.failure("its response is not an object to merge at the root"), ResultFailed)
		return
	}
	res.state, res.doc, res.header = stateOK, doc, resp.Header
}

var null = []byte("null")

// request renders the call's request; it returns the reason it cannot be
// made.
func (c *call) request(rn *run, res *result) (*http.Request, string) {
	target, why := c.path.appendText(res.target[:0], &rn.rd, true)
	if why != "" {
		return nil, why
	}
	for j, q := range c.query {
		if j == 0 {
			target = append(target, '?')
		} else {
			target = append(target, '&')
		}
		target = appendEscaped(target, q.name)
		target = append(target, '=')
		if res.val, why = q.t.appendText(res.val[:0], &rn.rd, false); why != "" {
			return nil, why
		}
		target = appendEscaped(target, res.val)
	}
	res.target = target
	var body io.Reader
	if c.body != nil {
		b, why := appendBody(nil, c.body, &rn.rd)
		if why != "" {
			return nil, why
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(rn.ctx, c.method, string(target), body)
	if err != nil {
		return nil, "invalid request target"
	}
	req.URL.Scheme, req.URL.Host, req.Host = "http", c.upstream, c.upstream
	h := make(http.Header, len(c.pass)+len(c.headers)+2)
	req.Header = h
	for _, name := range c.pass {
		if vs := rn.r.Header[name]; len(vs) > 0 {
			h[name] = slices.Clone(vs)
		}
	}
	h["Accept-Encoding"] = identity // the body is read here
	for _, nt := range c.headers {
		if res.val, why = nt.t.appendText(res.val[:0], &rn.rd, false); why != "" {
			return nil, why
		}
		if hasControl(res.val) {
			return nil, "header " + nt.name + ": value carries a control character"
		}
		h[nt.name] = []string{string(res.val)}
	}
	if body != nil {
		h["Content-Type"] = typeJSON
	}
	return req, ""
}

// readBody reads r into buf up to limit bytes; tooLarge when there is
// more (or the response says so).
func readBody(r io.Reader, buf []byte, limit int, length int64) (_ []byte, tooLarge bool, _ error) {
	if length > int64(limit) {
		return buf, true, nil
	}
	if length >= 0 && cap(buf) < int(length)+1 {
		buf = make([]byte, 0, length+1) // room for the EOF read
	} else if cap(buf) == 0 {
		buf = make([]byte, 0, 512)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

// checkJSON returns why doc is not JSON ("" when it is), without quoting
// any of it.
func checkJSON(doc []byte) string {
	at, ok := validJSON(doc)
	switch {
	case ok:
		return ""
	case len(bytes.TrimSpace(doc)) == 0:
		return "empty body"
	case at >= len(doc):
		return "unexpected end of the document"
	}
	return "syntax error at offset " + strconv.Itoa(at)
}

// countCalls counts every call of the request by its result.
func (s *stage) countCalls(rn *run, failed int, timedOut bool) {
	for i, c := range s.calls {
		res := &rn.res[i]
		result := ResultSkipped
		switch res.state {
		case stateOK:
			result = ResultOK
		case stateFailed, stateSkipped:
			result = res.metric
		default: // never made, or cut off
			if failed < 0 && timedOut {
				result = ResultTimeout
			}
		}
		s.count.Call(s.route, c.name, result)
	}
}

// safeToken is an upstream's token fit to quote in a reason: short, and
// of printable ASCII.
func safeToken(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "(unreadable)"
		}
	}
	return s
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

func requestID(x *exchange.Exchange) string {
	if x == nil {
		return ""
	}
	return x.RequestID
}
