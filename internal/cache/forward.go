package cache

import (
	"net/http"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/httpcache"
	"github.com/meshgate/meshgate/internal/policy"
)

// forward sends q upstream through a tee and stores the response if it
// may; it returns the stored entry (nil: none).
func (s *stage) forward(w http.ResponseWriter, q *request, fwd string) *cachestore.Entry {
	return s.forwardOr(w, q, fwd, nil)
}

// standby is a stored response that answers instead of an upstream
// failure, and for which failures.
type standby struct {
	e    *cachestore.Entry
	when standIn
}

// forwardOr is forward with a stale entry that answers instead of an
// upstream failure (nil: none; a failure goes to the client).
func (s *stage) forwardOr(w http.ResponseWriter, q *request, fwd string, sb *standby) *cachestore.Entry {
	t := newTee(w, s, q, fwd)
	defer t.standBy(sb)()
	s.next.ServeHTTP(t, q.r)
	if code := t.heldError; code != 0 {
		t.release()
		s.serveOnError(w, q, sb.e, fwd, code)
		return nil
	}
	e := t.finish()
	t.release()
	return e
}

// miss forwards a request nothing stored can answer, collapsed with the
// concurrent misses of its key: one of them goes upstream, the others wait
// (at most collapse_wait) for its response.
func (s *stage) miss(w http.ResponseWriter, q *request, fwd string) {
	if s.wait <= 0 {
		s.count.CacheRequest(s.route, ResultMiss)
		s.forward(w, q, fwd)
		return
	}
	led := false
	e, _, err := s.collapse.Do(q.key, s.wait, func() (*cachestore.Entry, error) {
		led = true
		// The previous leader may have stored the response between this
		// request's lookup and now.
		if e := s.lookup(q); e != nil {
			now := s.now()
			f := factsOf(e)
			if age, life := ageOf(e, f, now), s.lifetime(f); life > age {
				s.count.CacheRequest(s.route, ResultHit)
				s.serve(w, q.r, e, age, httpcache.CacheStatus{Hit: true, TTL: life - age})
				return e, nil
			}
		}
		s.count.CacheRequest(s.route, ResultMiss)
		return s.forward(w, q, fwd), nil
	})
	if led {
		return
	}
	if err == nil && e != nil && s.answers(e, q) {
		now := s.now()
		f := factsOf(e)
		age, life := ageOf(e, f, now), s.lifetime(f)
		s.count.CacheRequest(s.route, ResultCollapsed)
		s.serve(w, q.r, e, age, httpcache.CacheStatus{Fwd: fwd, FwdStatus: e.Status, TTL: life - age, Collapsed: true})
		return
	}
	// The leader timed out, failed, got a response it could not store, or
	// one for another variant: go upstream alone.
	s.count.CacheRequest(s.route, ResultMiss)
	s.forward(w, q, fwd)
}

// answers reports whether the entry a collapsed leader stored may answer q.
func (s *stage) answers(e *cachestore.Entry, q *request) bool {
	if e.Key != q.key && e.Key != q.getKey {
		return false
	}
	k, ok := httpcache.VaryKey(e.Vary, q.r.Header)
	return ok && k == e.Secondary && (!q.authorized || sharable(factsOf(e)))
}

// revalidate asks the upstream whether the stored e is still current with
// its validators: on 304 the entry is freshened and answers; an upstream
// failure is answered by sb when there is one (stale-if-error,
// fallback.stale); any other answer goes to the client (and is stored if
// it may be).
func (s *stage) revalidate(w http.ResponseWriter, q *request, e *cachestore.Entry, fwd string, sb *standby) {
	r2 := q.r.Clone(q.r.Context())
	setValidators(r2.Header, headerOf(e))
	q2 := *q
	q2.r = r2
	t := newTee(w, s, &q2, fwd)
	t.revalidating = true
	defer t.standBy(sb)()
	s.next.ServeHTTP(t, r2)
	if code := t.heldError; code != 0 {
		t.release()
		s.count.CacheRequest(s.route, ResultStale)
		s.serveOnError(w, q, sb.e, fwd, code)
		return
	}
	if !t.got304 {
		s.count.CacheRequest(s.route, ResultStale)
		t.finish()
		t.release()
		return
	}
	fresh, stored := s.freshen(e, t.header, q.start)
	t.release()
	now := s.now()
	f := factsOf(fresh)
	life := s.lifetime(f)
	age := ageOf(fresh, f, now)
	s.count.CacheRequest(s.route, ResultRevalidated)
	s.serve(w, q.r, fresh, age, httpcache.CacheStatus{Fwd: fwd, FwdStatus: http.StatusNotModified, TTL: life - age, Stored: stored})
}

// setValidators replaces the conditional fields of a request header h with
// the validators of the stored response header stored.
func setValidators(h, stored http.Header) {
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		h.Del(k)
	}
	for k, v := range httpcache.ValidatorsFor(stored) {
		h[k] = v
	}
}

// freshen updates the stored e with the header of a 304 answering a
// revalidation sent at start, stores the result and returns it, and
// whether it was stored.
func (s *stage) freshen(e *cachestore.Entry, h304 http.Header, start time.Time) (*cachestore.Entry, bool) {
	now := s.now()
	httpcache.EnsureDate(h304, now)
	h := headerOf(e).Clone()
	httpcache.UpdateStored(h, h304)
	fresh := &cachestore.Entry{Status: e.Status, Packed: httpcache.Pack(h), Body: e.Body, RequestTime: start, ResponseTime: now,
		Route: s.route, Path: e.Path, Vary: e.Vary}
	fresh.Facts = httpcache.NewFacts(fresh.Status, h, start, now)
	fresh.TTL = s.keepFor(s.lifetime(fresh.Facts), fresh.Facts)
	stored := fresh.TTL > 0 && s.store.Put(e.Key, e.Secondary, fresh)
	fresh.Key, fresh.Secondary = e.Key, e.Secondary
	return fresh, stored
}

// unsafe forwards a request of an unsafe method and, when it succeeds,
// invalidates what the route stored for its target and for the Location
// and Content-Location of its response (RFC 9111 §4.4), before the client
// sees the response.
func (s *stage) unsafe(w http.ResponseWriter, r *http.Request, x *exchange.Exchange) {
	hooked := policy.OnHeader(w, func(code int, h http.Header) int {
		if !httpcache.InvalidatesOnUnsafe(r.Method, code) {
			return code
		}
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host // the origin the targets must share
		if x != nil && x.Scheme != "" {
			u.Scheme = x.Scheme
		}
		for _, target := range httpcache.InvalidationTargets(&u, h) {
			// By path: every method, consumer and query of it, which
			// invalidates more than the URI but never less.
			path, _, _ := strings.Cut(target, "?")
			s.store.PurgeExact(s.route, path)
		}
		return code
	})
	s.next.ServeHTTP(hooked, r)
}
