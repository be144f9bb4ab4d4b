package cache

import (
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/httpcache"
)

// tee is the writer the next stage gets for a forwarded GET or HEAD. It
// holds the response header until the status line, decides there whether
// the response is storable (and says so in Cache-Status), then passes the
// body to the client and a copy of it to a BodyWriter as it comes. When it
// revalidates, a 304 is kept from the client: the stage answers from the
// freshened entry instead. When a stale entry may answer instead of an
// upstream failure (holdErrors), a failure is kept from the client too
// (heldError) and the stage answers from the entry; every other response
// streams as ever.
type tee struct {
	w  http.ResponseWriter
	s  *stage
	q  *request
	cs httpcache.CacheStatus

	header  http.Header // the response's, until decided
	decided bool
	// revalidating: a 304 is the upstream's answer to the stage's
	// validators, held (got304) rather than sent.
	revalidating bool
	got304       bool
	// holdErrors: a status for which httpcache.StaleIfErrorStatus is true
	// (the upstream's, or the proxy's own connect, timeout and overload
	// errors) is held (heldError) rather than sent.
	holdErrors bool
	// holdFallback: a failure the route's fallback stood aside for
	// (exchange.FallbackStale in x) is held (heldError) too.
	holdFallback bool
	heldError    int
	x            *exchange.Exchange // the request's; nil: none

	// storing: the response is being stored, as entry, its body copied to
	// body. Both are held by value, so that a miss allocates them with the
	// tee rather than on their own.
	storing   bool
	entry     cachestore.Entry
	secondary string
	body      cachestore.BodyWriter
	failed    bool // a write to the client failed: the copy may be short
}

// teePool holds released tees, with their header maps: a miss makes one,
// and the map keeps the slots the last response's fields needed.
var teePool = sync.Pool{New: func() any { return &tee{header: http.Header{}} }}

func newTee(w http.ResponseWriter, s *stage, q *request, fwd string) *tee {
	t := teePool.Get().(*tee)
	*t = tee{w: w, s: s, q: q, cs: httpcache.CacheStatus{Fwd: fwd}, header: t.header, x: exchange.From(q.r.Context())}
	return t
}

// release returns t to teePool once the next stage has returned and t's
// results (finish, got304 with header, heldError) have been used: nothing
// may use t, its header map or the entry it built afterwards. finish hands
// out the store's copy of the entry, never t's. A tee whose next stage
// panicked is not released.
func (t *tee) release() {
	if t.storing {
		t.body.Discard() // no-op once Bytes took the body
	}
	h := t.header
	clear(h)
	*t = tee{header: h}
	teePool.Put(t)
}

// standBy arms t to hold the failures the stored response of sb answers
// instead (nil: none), and tells the stages inside through the exchange;
// the function it returns disarms the exchange's mark.
func (t *tee) standBy(sb *standby) func() {
	if sb == nil {
		return func() {}
	}
	t.holdErrors = sb.when == onError
	t.holdFallback = true
	x := t.x // not t, which may be released before the function runs
	if x == nil {
		return func() {}
	}
	x.StaleAvailable = true
	return func() { x.StaleAvailable = false }
}

// holds reports whether a response of status code is a failure a stored
// response answers instead.
func (t *tee) holds(code int) bool {
	return t.holdErrors && httpcache.StaleIfErrorStatus(code) ||
		t.holdFallback && t.x != nil && t.x.Fallback == exchange.FallbackStale
}

// held reports whether the response is kept from the client.
func (t *tee) held() bool { return t.got304 || t.heldError != 0 }

func (t *tee) Header() http.Header {
	if t.decided && !t.held() {
		return t.w.Header()
	}
	return t.header
}

func (t *tee) WriteHeader(code int) {
	if t.decided {
		if !t.held() {
			t.w.WriteHeader(code)
		}
		return
	}
	if code < 200 { // informational: not the answer
		t.w.WriteHeader(code)
		return
	}
	t.decided = true
	if t.revalidating && code == http.StatusNotModified {
		t.got304 = true
		return
	}
	if t.holds(code) {
		t.heldError = code
		return
	}
	t.decide(code)
	h := t.w.Header()
	for k, v := range t.header {
		h[k] = v
	}
	t.cs.FwdStatus = code
	h.Add("Cache-Status", t.cs.String(Name))
	t.w.WriteHeader(code)
}

// decide makes the entry to store, if the response may be stored.
func (t *tee) decide(code int) {
	s, r := t.s, t.q.r
	if t.x != nil && t.x.Fallback != "" {
		// A fallback's answer (another upstream's, or the static one)
		// stands in for this request only: it must not answer the next
		// ones in place of the route's upstream.
		return
	}
	reqHeader := r.Header
	if t.q.authorized && reqHeader.Get("Authorization") == "" {
		// Authenticated by a credential the auth stage took off the
		// request: RFC 9111 §3.5 still applies.
		reqHeader = reqHeader.Clone()
		reqHeader.Set("Authorization", "consumer")
	}
	dir := httpcache.ResponseDirectives(t.header)
	ok, _ := httpcache.StorableWith(r.Method, reqHeader, code, t.header, dir,
		httpcache.StoreOptions{StoreSetCookie: s.setCookie, MaxBodyBytes: s.maxBody})
	if !ok {
		return
	}
	vary := t.header.Values("Vary")
	sec, ok := httpcache.VaryKey(vary, r.Header)
	if !ok {
		return
	}
	now := s.now()
	// The stored header is the response's but for Cache-Status (an
	// upstream cache's, about another request), with a Date
	// (httpcache.EnsureDate, its value made once a second). The response's
	// own serves when it needs neither change: it is packed now, before
	// anything outside can change it.
	stored := t.header
	date, dated := s.dateOf(stored)
	if _, upstream := stored["Cache-Status"]; upstream || !dated {
		stored = stored.Clone()
		stored.Del("Cache-Status")
		if !dated {
			d := s.date(now)
			stored["Date"], date, dated = d.v, d.t, true
		}
	}
	// Cache-Control is as it came: dir holds for stored too.
	f := httpcache.FactsWith(dir, code, stored, date, dated, t.q.start, now)
	ttl := s.keepFor(s.lifetime(f), f)
	if ttl <= 0 {
		return
	}
	t.entry = cachestore.Entry{Status: code, Packed: httpcache.Pack(stored), RequestTime: t.q.start, ResponseTime: now,
		Route: s.route, Path: t.q.path, Vary: slices.Clone(vary), TTL: ttl, Facts: f}
	t.secondary = sec
	t.storing = true
	t.body.Init(s.maxBody)
	// Stored is claimed only when the length is known to fit: a body of
	// unknown length may yet pass max_body.
	if n, err := strconv.ParseInt(t.header.Get("Content-Length"), 10, 64); err == nil && n <= s.maxBody {
		t.cs.Stored = true
	}
}

func (t *tee) Write(p []byte) (int, error) {
	if !t.decided {
		t.WriteHeader(http.StatusOK)
	}
	if t.held() {
		return len(p), nil
	}
	n, err := t.w.Write(p)
	if err != nil {
		t.failed = true
	}
	if t.storing {
		_, _ = t.body.Write(p[:n])
	}
	return n, err
}

func (t *tee) Flush() {
	if !t.decided {
		t.WriteHeader(http.StatusOK)
	}
	if t.held() {
		return
	}
	if f, ok := t.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (t *tee) Unwrap() http.ResponseWriter { return t.w }

// finish stores the response once the next stage has returned, if it was
// storable and came whole, and returns the stored entry (nil: none): the
// store's copy, which outlives t.
func (t *tee) finish() *cachestore.Entry {
	if !t.storing || t.held() {
		return nil
	}
	body, ok := t.body.Bytes()
	e := &t.entry
	if !ok || t.failed || t.q.r.Context().Err() != nil {
		return nil
	}
	if t.q.r.Method == http.MethodHead {
		body = nil // whatever was written, a HEAD response has no content
	} else if n, err := strconv.ParseInt(e.Packed.Get("Content-Length"), 10, 64); err == nil && n != int64(len(body)) {
		return nil // cut short
	}
	e.Body = body
	return t.s.store.Insert(t.q.key, t.secondary, e) // nil: refused
}
