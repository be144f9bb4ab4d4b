package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
)

// counts is a Counter that keeps its counts.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) CacheRequest(route, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[result]++
}

func (c *counts) get(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[result]
}

func newCountedStage(t *testing.T, c *config.Cache, o http.Handler, clk *clock, n *counts) *stage {
	t.Helper()
	st := cachestore.New(cachestore.Options{MaxBytes: 8 << 20, Now: clk.Now})
	t.Cleanup(st.Close)
	return New(c, Options{Route: "r", Store: st, Now: clk.Now, Metrics: n, Timeout: 3 * time.Second}, o).(*stage)
}

func TestStale(t *testing.T) {
	// v1 with the given Cache-Control and ETag "v1"; a revalidation of "v1"
	// is answered by then(n), a plain request by v<n>.
	etagged := func(cc string, then func(w http.ResponseWriter, r *http.Request, n int)) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n > 1 && then != nil {
				then(w, r, n)
				return
			}
			reply(w, 200, "v"+string(rune('0'+n)), "Cache-Control", cc, "ETag", `"v`+string(rune('0'+n))+`"`)
		}
	}
	notModified := func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("If-None-Match") != `"v1"` {
			reply(w, 400, "no validator")
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(http.StatusNotModified)
	}
	status := func(code int) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) { reply(w, code, "failed") }
	}
	plain := func(cc string, then func(w http.ResponseWriter, r *http.Request, n int)) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n > 1 && then != nil {
				then(w, r, n)
				return
			}
			reply(w, 200, "v"+string(rune('0'+n)), "Cache-Control", cc)
		}
	}
	connectFailed := func(w http.ResponseWriter, r *http.Request, n int) {
		exchange.Write(w, exchange.From(r.Context()), exchange.ConnectFailed)
	}
	const (
		swr      = "max-age=10, stale-while-revalidate=30"
		sie      = "max-age=10, stale-if-error=60"
		revalid  = "meshgate; fwd=stale; fwd-status=304; ttl=60; stored"
		staleHit = "meshgate; hit; ttl=-5"
	)
	noCache := map[string]string{"Cache-Control": "no-cache"}
	for _, tc := range []struct {
		name   string
		cfg    func(c *config.Cache)
		origin func(w http.ResponseWriter, r *http.Request, n int)
		steps  []step
		calls  int
		counts map[string]int // checked when set
	}{
		{name: "swr serves stale, a 200 replaces it", calls: 2,
			origin: etagged(swr, func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, "v2", "Cache-Control", "max-age=10", "ETag", `"v2"`)
			}), steps: []step{
				{body: "v1", cs: missKept},
				{advance: 15 * time.Second, body: "v1", cs: staleHit, age: "15"},
				{body: "v2", cs: "meshgate; hit; ttl=10", age: "0"},
			}, counts: map[string]int{ResultMiss: 1, ResultStale: 1, ResultRevalidated: 1, ResultHit: 1}},
		{name: "swr serves stale, a 304 freshens it", calls: 2, origin: etagged(swr, notModified), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: staleHit},
			{advance: 5 * time.Second, body: "v1", cs: "meshgate; hit; ttl=55", age: "5"},
		}},
		{name: "swr without a validator fetches", calls: 2, origin: plain(swr, nil), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: staleHit},
			{body: "v2", cs: "meshgate; hit; ttl=10"},
		}},
		{name: "swr window passed revalidates", calls: 2,
			origin: etagged("max-age=10, stale-while-revalidate=5", notModified), steps: []step{
				{body: "v1", cs: missKept},
				{advance: 20 * time.Second, body: "v1", cs: revalid, age: "0"},
			}},
		{name: "swr background failure keeps the entry", calls: 3, origin: etagged(swr, status(503)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: staleHit},
			{advance: time.Second, body: "v1", cs: "meshgate; hit; ttl=-6"},
		}},
		{name: "max-stale=0 bypasses swr", calls: 2, origin: etagged(swr, notModified), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, header: map[string]string{"Cache-Control": "max-stale=0"}, body: "v1", cs: revalid},
		}},
		{name: "no-cache bypasses swr", calls: 2, origin: etagged(swr, notModified), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, header: noCache, body: "v1", cs: revalid},
		}},
		{name: "must-revalidate forbids swr", calls: 2, origin: etagged(swr+", must-revalidate", notModified), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: revalid},
		}},
		{name: "stale-if-error on 503", calls: 2, origin: etagged(sie, status(503)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=503; ttl=-5", age: "15"},
		}, counts: map[string]int{ResultMiss: 1, ResultStale: 1}},
		{name: "stale-if-error without a validator", calls: 2, origin: plain(sie, status(500)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=500; ttl=-5"},
		}},
		{name: "stale-if-error on a connect failure", calls: 2, origin: etagged(sie, connectFailed), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=502; ttl=-5"},
		}},
		{name: "stale-if-error from the route", calls: 2, cfg: func(c *config.Cache) { c.StaleIfError = config.Duration(time.Minute) },
			origin: plain("max-age=10", status(504)), steps: []step{
				{body: "v1", cs: missKept},
				{advance: 65 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=504; ttl=-55"},
			}},
		{name: "the response's stale-if-error wins over the route's", calls: 2,
			cfg:    func(c *config.Cache) { c.StaleIfError = config.Duration(time.Hour) },
			origin: etagged("max-age=10, stale-if-error=5", status(503)), steps: []step{
				{body: "v1", cs: missKept},
				{advance: 20 * time.Second, status: 503, body: "failed", cs: "meshgate; fwd=stale; fwd-status=503"},
			}},
		{name: "stale-if-error from the request", calls: 2, origin: etagged("max-age=10", status(502)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, header: map[string]string{"Cache-Control": "stale-if-error=30"}, body: "v1",
				cs: "meshgate; fwd=stale; fwd-status=502; ttl=-5"},
		}},
		{name: "stale-if-error window passed", calls: 2, origin: etagged("max-age=10, stale-if-error=5", status(503)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 20 * time.Second, status: 503, body: "failed", cs: "meshgate; fwd=stale; fwd-status=503"},
		}},
		{name: "must-revalidate forbids stale-if-error", calls: 2, origin: etagged(sie+", must-revalidate", status(503)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, status: 503, body: "failed", cs: "meshgate; fwd=stale; fwd-status=503"},
		}},
		{name: "no-cache forbids stale-if-error", calls: 2, origin: etagged(sie, status(503)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, header: noCache, status: 503, body: "failed", cs: "meshgate; fwd=stale; fwd-status=503"},
		}},
		{name: "a 404 is never replaced", calls: 2, origin: etagged(sie, status(404)), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, status: 404, body: "failed", cs: "-"},
		}},
		{name: "a success streams", calls: 2, origin: etagged(sie, func(w http.ResponseWriter, r *http.Request, n int) {
			reply(w, 200, "v2", "Cache-Control", "max-age=10", "ETag", `"v2"`)
		}), steps: []step{
			{body: "v1", cs: missKept},
			{advance: 15 * time.Second, body: "v2", cs: "meshgate; fwd=stale; fwd-status=200; stored"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCache()
			if tc.cfg != nil {
				tc.cfg(c)
			}
			o := &origin{handle: tc.origin}
			clk := newClock()
			n := &counts{}
			s := newCountedStage(t, c, o, clk, n)
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				rec := send(s, "GET", "/a", st.consumer, st.header)
				s.bg.Wait()
				want := st.status
				if want == 0 {
					want = 200
				}
				if rec.Code != want || (st.body != "-" && rec.Body.String() != st.body) {
					t.Fatalf("step %d: %d %q, want %d %q", i, rec.Code, rec.Body.String(), want, st.body)
				}
				if cs := strings.Join(rec.Header().Values("Cache-Status"), ", "); st.cs != "-" && cs != st.cs {
					t.Errorf("step %d: Cache-Status %q, want %q", i, cs, st.cs)
				}
				if st.age != "" && rec.Header().Get("Age") != st.age {
					t.Errorf("step %d: Age %q, want %q", i, rec.Header().Get("Age"), st.age)
				}
				if rec.Header().Get("Warning") != "" {
					t.Errorf("step %d: Warning %q", i, rec.Header().Get("Warning"))
				}
			}
			if got := o.Calls(); got != tc.calls {
				t.Errorf("origin called %d times, want %d", got, tc.calls)
			}
			for result, want := range tc.counts {
				if got := n.get(result); got != want {
					t.Errorf("result %s counted %d times, want %d", result, got, want)
				}
			}
		})
	}
}

// Ten concurrent stale hits are answered at once, while the one background
// revalidation they cause waits on the origin; then a hit serves what it
// fetched.
func TestStaleWhileRevalidateHerd(t *testing.T) {
	release := make(chan struct{})
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 200, "v1", "Cache-Control", "max-age=10, stale-while-revalidate=60", "ETag", `"v1"`)
			return
		}
		<-release
		reply(w, 200, "v2", "Cache-Control", "max-age=10", "ETag", `"v2"`)
	}}
	clk := newClock()
	n := &counts{}
	s := newCountedStage(t, testCache(), o, clk, n)
	send(s, "GET", "/a", "", nil)
	clk.Advance(15 * time.Second)
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, 10)
	for i := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = send(s, "GET", "/a", "", nil)
		}()
	}
	wg.Wait() // the origin still holds the background request
	for i, rec := range recs {
		if rec.Code != 200 || rec.Body.String() != "v1" || rec.Header().Get("Cache-Status") != "meshgate; hit; ttl=-5" {
			t.Errorf("hit %d: %d %q %q", i, rec.Code, rec.Body.String(), rec.Header().Get("Cache-Status"))
		}
	}
	close(release)
	s.bg.Wait()
	if c := o.Calls(); c != 2 {
		t.Errorf("origin called %d times, want 2 (one background request)", c)
	}
	if got := n.get(ResultStale); got != 10 {
		t.Errorf("%d stale results, want 10", got)
	}
	if got := n.get(ResultRevalidated); got != 1 {
		t.Errorf("%d revalidated results, want 1", got)
	}
	rec := send(s, "GET", "/a", "", nil)
	if rec.Body.String() != "v2" || rec.Header().Get("Cache-Status") != "meshgate; hit; ttl=10" {
		t.Errorf("after the refresh: %q %q", rec.Body.String(), rec.Header().Get("Cache-Status"))
	}
}

// The background request is the client's, copied: its header (Vary
// fields, Authorization) and consumer, on a context that outlives the
// client's and ends with the route's timeout.
func TestStaleWhileRevalidateRequest(t *testing.T) {
	type seen struct {
		header   http.Header
		consumer string
		ctxErr   error
		deadline time.Duration
		method   string
	}
	got := make(chan seen, 1)
	clientGone := make(chan struct{})
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 200, "v1", "Cache-Control", "public, max-age=10, stale-while-revalidate=60", "Vary", "Accept-Language", "ETag", `"v1"`)
			return
		}
		<-clientGone
		d, _ := r.Context().Deadline()
		got <- seen{r.Header.Clone(), exchange.From(r.Context()).Consumer, r.Context().Err(), time.Until(d), r.Method}
		w.WriteHeader(http.StatusNotModified)
	}}
	clk := newClock()
	s := newCountedStage(t, testCache(), o, clk, &counts{})
	hdr := map[string]string{"Accept-Language": "fr", "Authorization": "Bearer t"}
	if rec := send(s, "GET", "/a", "alice", hdr); rec.Header().Get("Cache-Status") != missKept {
		t.Fatalf("not stored: %q", rec.Header().Get("Cache-Status"))
	}
	clk.Advance(15 * time.Second)

	r := httptest.NewRequest("HEAD", "http://api.example/a", nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	ctx, cancel := context.WithCancel(exchange.With(context.Background(), &exchange.Exchange{Consumer: "alice", Scheme: "http"}))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r.WithContext(ctx))
	cancel()
	close(clientGone)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Cache-Status"), "meshgate; hit; ttl=-") {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Cache-Status"))
	}
	v := <-got
	s.bg.Wait()
	if v.ctxErr != nil || v.deadline <= 0 || v.deadline > 3*time.Second {
		t.Errorf("context: err %v, deadline in %v (want within the route's 3s)", v.ctxErr, v.deadline)
	}
	if v.header.Get("Accept-Language") != "fr" || v.header.Get("Authorization") != "Bearer t" || v.header.Get("If-None-Match") != `"v1"` {
		t.Errorf("header %v", v.header)
	}
	if v.consumer != "alice" || v.method != "GET" {
		t.Errorf("consumer %q, method %s", v.consumer, v.method)
	}
}

// A failure answered from a stale entry is no longer the exchange's error.
func TestStaleIfErrorClearsTheError(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 200, "v1", "Cache-Control", "max-age=10, stale-if-error=60")
			return
		}
		exchange.Write(w, exchange.From(r.Context()), exchange.UpstreamTimeout)
	}}
	clk := newClock()
	s := newCountedStage(t, testCache(), o, clk, &counts{})
	send(s, "GET", "/a", "", nil)
	clk.Advance(15 * time.Second)
	x := &exchange.Exchange{Scheme: "http"}
	r := httptest.NewRequest("GET", "http://api.example/a", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r.WithContext(exchange.With(r.Context(), x)))
	if rec.Code != 200 || rec.Body.String() != "v1" || rec.Header().Get("Cache-Status") != "meshgate; fwd=stale; fwd-status=504; ttl=-5" {
		t.Fatalf("%d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Cache-Status"))
	}
	if rec.Header().Get("Content-Type") == "application/json" {
		t.Errorf("the error's header leaked: %v", rec.Header())
	}
	if x.Error != nil || x.Reason == "" {
		t.Errorf("exchange error %v, reason %q", x.Error, x.Reason)
	}
}

// The stage's background revalidations are bounded by the route's timeout.
func TestPolicyPassesTheRouteTimeout(t *testing.T) {
	b := Policy(Deps{})
	scope := policy.NewScope(policy.NewShared()) // holds the store: closing it stops the store
	t.Cleanup(func() { scope.Close() })
	env := policy.Env{Route: "r", Scope: scope}
	h, err := b.Build(&config.Route{Name: "r", Timeout: config.Duration(7 * time.Second), Cache: testCache()}, env, http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	if s := h.(*stage); s.timeout != 7*time.Second {
		t.Errorf("timeout %v", s.timeout)
	}
	h, err = b.Build(&config.Route{Name: "r", Cache: testCache()}, env, http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	if s := h.(*stage); s.timeout != config.DefaultRouteTimeout {
		t.Errorf("default timeout %v", s.timeout)
	}
}

// Entries are kept for their windows of stale use.
func TestKeep(t *testing.T) {
	s := &stage{staleIfError: time.Minute}
	for _, tc := range []struct {
		cc, etag string
		want     time.Duration
	}{
		{"max-age=10", "", 70 * time.Second},
		{"max-age=10, stale-while-revalidate=30, stale-if-error=5", "", 45 * time.Second},
		{"max-age=10, stale-while-revalidate=30", `"e"`, 10*time.Second + time.Minute + 30*time.Second + time.Minute},
		{"max-age=10, stale-while-revalidate=30, must-revalidate", "", 10 * time.Second},
	} {
		h := http.Header{"Cache-Control": {tc.cc}}
		if tc.etag != "" {
			h.Set("ETag", tc.etag)
		}
		if got := s.keep(10*time.Second, h); got != tc.want {
			t.Errorf("%s %s: keep %v, want %v", tc.cc, tc.etag, got, tc.want)
		}
	}
}
