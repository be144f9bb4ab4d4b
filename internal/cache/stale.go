package cache

import (
	"context"
	"net/http"
	"sync"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/httpcache"
)

// Serving stale responses (RFC 5861): within a response's
// stale-while-revalidate window the stage answers from the stale entry at
// once and revalidates it in the background (refresh); within its
// stale-if-error window (or the request's, or the route's stale_if_error)
// an upstream failure is answered from the stale entry (serveOnError).

// serveOnError answers q from the stale e in place of the upstream's
// failure of status status (stale-if-error). The failure is the
// exchange's no longer: the client gets a response, as when a fallback
// answers; its reason stays for the log.
func (s *stage) serveOnError(w http.ResponseWriter, q *request, e *cachestore.Entry, fwd string, status int) {
	if x := exchange.From(q.r.Context()); x != nil {
		x.Error = nil
	}
	now := s.now()
	f := factsOf(e)
	age, life := ageOf(e, f, now), s.lifetime(f)
	s.serve(w, q.r, e, age, httpcache.CacheStatus{Fwd: fwd, FwdStatus: status, TTL: life - age})
}

// refresh revalidates the stale e, which q was just answered from, in the
// background: one request per key however many stale hits ask (the
// collapser's; a concurrent miss of the key collapses with it too). A 304
// freshens the entry, a storable response replaces it; a failure leaves it
// as it is. The request is a copy of q's, made before q's handler returns
// (its header carries what the key and Vary need: Authorization, the
// negotiation fields; its exchange is a copy too, the consumer in it), on
// a context detached from the client's, bounded by the route's timeout.
func (s *stage) refresh(q *request, e *cachestore.Entry) {
	ctx := context.WithoutCancel(q.r.Context())
	if x := exchange.From(ctx); x != nil {
		x2 := *x
		x2.Error, x2.Reason, x2.Upstream, x2.Endpoint, x2.Attempts, x2.Status = nil, "", "", "", 0, 0
		ctx = exchange.With(ctx, &x2)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	r2 := q.r.Clone(ctx)
	r2.Body, r2.ContentLength, r2.GetBody = http.NoBody, 0, nil
	r2.Method = http.MethodGet
	if isHEADEntry(e) {
		r2.Method = http.MethodHead
	}
	setValidators(r2.Header, headerOf(e))
	q2 := *q
	q2.r, q2.key, q2.getKey = r2, e.Key, ""

	started := make(chan struct{})
	var once sync.Once
	signal := func() { once.Do(func() { close(started) }) }
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer cancel()
		defer signal()
		defer func() {
			// A panic of the forwarding (http.ErrAbortHandler on a body
			// it could not copy) has no client to abort here.
			_ = recover()
		}()
		_, _, _ = s.collapse.Do(e.Key, 0, func() (*cachestore.Entry, error) {
			signal()
			return s.revalidateInBackground(&q2, e), nil
		})
	}()
	// Until the background request leads its key or finds it led: a herd
	// of stale hits then makes one request.
	<-started
}

// revalidateInBackground sends q (e's validators in it) upstream and
// updates the store with the answer; it returns the entry stored (nil:
// none).
func (s *stage) revalidateInBackground(q *request, e *cachestore.Entry) *cachestore.Entry {
	if cur, ok := s.store.Get(e.Key, e.Secondary); ok && cur.ResponseTime.After(e.ResponseTime) {
		return nil // refreshed since this request's lookup
	}
	q.start = s.now()
	s.count.CacheRequest(s.route, ResultRevalidated)
	t := newTee(&discard{h: http.Header{}}, s, q, httpcache.FwdStale)
	t.revalidating = factsOf(e).HasValidator
	// A failure keeps the stale entry, and a fallback inside stands aside
	// for it (nobody gets its answer).
	defer t.standBy(&standby{e: e, when: onError})()
	s.next.ServeHTTP(t, q.r)
	defer t.release() // before the deferred disarm of standBy, which holds x, not t
	if t.got304 {
		fresh, stored := s.freshen(e, t.header, q.start)
		if !stored {
			return nil
		}
		return fresh
	}
	return t.finish()
}

// discard is the client of a background revalidation: nobody.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
