package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/clock"
)

// scripted is an origin whose answers are scripted per case: a request to
// /ROUTE/CASE/… is answered by the case's handler with the number of its
// calls so far (1 for the first); every answer's Date is the test's clock.
type scripted struct {
	clk   *clock.Fake
	mu    sync.Mutex
	cases map[string]func(w http.ResponseWriter, r *http.Request, n int)
	calls map[string]int
}

func (o *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 2 {
		http.NotFound(w, r)
		return
	}
	o.mu.Lock()
	h := o.cases[parts[1]]
	o.calls[parts[1]]++
	n := o.calls[parts[1]]
	o.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Date", o.clk.Now().UTC().Format(http.TimeFormat))
	h(w, r, n)
}

func (o *scripted) callsOf(c string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[c]
}

// answer writes body with Content-Length and the header pairs kv.
func answer(w http.ResponseWriter, status int, body string, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		w.Header().Add(kv[i], kv[i+1])
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// cacheStep is one request of a case and what must come back.
type cacheStep struct {
	advance time.Duration // on the edge's clock, before the request
	method  string        // "": GET
	route   string        // "": plain
	header  map[string]string
	status  int    // 0: 200
	body    string // checked unless "-"
	cs      string // Cache-Status exactly; "-": not checked
	age     string // "": not checked
	calls   int    // the case's origin calls after the step; -1: not checked
}

// RFC 9111 through a real edge: each case is a script of the origin and a
// sequence of client requests on the edge's clock, with the Cache-Status,
// Age, body and origin calls each must give. Routes: plain (cache {}),
// keyed (API keys, entries per consumer) and shared (API keys, shared).
func TestCacheRFC9111ThroughTheEdge(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	maxAge := func(cc string, extra ...string) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			answer(w, 200, "v"+strconv.Itoa(n), append([]string{"Cache-Control", cc}, extra...)...)
		}
	}
	etag := func(cc string) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.Header().Set("Cache-Control", cc)
				w.Header().Set("ETag", `"e1"`)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			answer(w, 200, "v"+strconv.Itoa(n), "Cache-Control", cc, "ETag", `"e1"`)
		}
	}
	lastModified := start.Add(-100 * time.Hour).Format(http.TimeFormat)
	failing := func(ok func(w http.ResponseWriter, r *http.Request, n int)) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				ok(w, r, n)
				return
			}
			answer(w, 503, "down")
		}
	}
	const (
		miss   = "meshgate; fwd=uri-miss; fwd-status=200"
		stored = miss + "; stored"
	)
	cases := []struct {
		name   string
		origin func(w http.ResponseWriter, r *http.Request, n int)
		steps  []cacheStep
	}{
		{"max-age", maxAge("max-age=60"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 10 * time.Second, body: "v1", cs: "meshgate; hit; ttl=50", age: "10", calls: 1},
			{advance: 51 * time.Second, body: "v2", cs: stored, calls: 2},
		}},
		{"s-maxage wins", maxAge("max-age=5, s-maxage=60"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 30 * time.Second, body: "v1", cs: "meshgate; hit; ttl=30", calls: 1},
		}},
		{"expires", func(w http.ResponseWriter, r *http.Request, n int) {
			answer(w, 200, "v"+strconv.Itoa(n), "Expires", clk.Now().Add(40*time.Second).UTC().Format(http.TimeFormat))
		}, []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 10 * time.Second, body: "v1", cs: "meshgate; hit; ttl=30", calls: 1},
		}},
		{"heuristic", func(w http.ResponseWriter, r *http.Request, n int) {
			lm := clk.Now().Add(-100 * time.Hour).UTC().Format(http.TimeFormat)
			answer(w, 200, "v"+strconv.Itoa(n), "Last-Modified", lm) // fresh for 10 % of 100 h
		}, []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: time.Hour, body: "v1", cs: "meshgate; hit; ttl=32400", calls: 1},
		}},
		{"no-store", maxAge("no-store, max-age=60"), []cacheStep{
			{body: "v1", cs: miss, calls: 1}, {body: "v2", cs: miss, calls: 2},
		}},
		{"private", maxAge("private, max-age=60"), []cacheStep{
			{body: "v1", cs: miss, calls: 1}, {body: "v2", cs: miss, calls: 2},
		}},
		{"set-cookie", maxAge("max-age=60", "Set-Cookie", "s=1"), []cacheStep{
			{body: "v1", cs: miss, calls: 1}, {body: "v2", cs: miss, calls: 2},
		}},
		{"no-cache revalidates every time", etag("no-cache, max-age=60"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{body: "v1", cs: "meshgate; fwd=stale; fwd-status=304; ttl=60; stored", calls: 2},
		}},
		{"etag revalidation", etag("max-age=10"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 11 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=304; ttl=10; stored", age: "0", calls: 2},
			{advance: 4 * time.Second, body: "v1", cs: "meshgate; hit; ttl=6", age: "4", calls: 2},
		}},
		{"last-modified revalidation", func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Header.Get("If-Modified-Since") == lastModified {
				w.Header().Set("Cache-Control", "max-age=10")
				w.WriteHeader(http.StatusNotModified)
				return
			}
			answer(w, 200, "v"+strconv.Itoa(n), "Cache-Control", "max-age=10", "Last-Modified", lastModified)
		}, []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 11 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=304; ttl=10; stored", calls: 2},
		}},
		{"client conditional", etag("max-age=60"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{header: map[string]string{"If-None-Match": `"e1"`}, status: 304, body: "", cs: "meshgate; hit; ttl=60", calls: 1},
			{header: map[string]string{"If-None-Match": `"e2"`}, body: "v1", cs: "meshgate; hit; ttl=60", calls: 1},
		}},
		{"request no-cache", maxAge("max-age=60"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{header: map[string]string{"Cache-Control": "no-cache"}, body: "v2", cs: "meshgate; fwd=request; fwd-status=200; stored", calls: 2},
			{body: "v2", cs: "meshgate; hit; ttl=60", calls: 2},
		}},
		{"only-if-cached", maxAge("max-age=60"), []cacheStep{
			{header: map[string]string{"Cache-Control": "only-if-cached"}, status: 504, body: "-", cs: "meshgate; detail=only-if-cached", calls: 0},
			{body: "v1", cs: stored, calls: 1},
			{header: map[string]string{"Cache-Control": "only-if-cached"}, body: "v1", cs: "meshgate; hit; ttl=60", calls: 1},
		}},
		{"vary normalised", func(w http.ResponseWriter, r *http.Request, n int) {
			answer(w, 200, "v"+strconv.Itoa(n), "Cache-Control", "max-age=60", "Vary", "Accept-Encoding")
		}, []cacheStep{
			{header: map[string]string{"Accept-Encoding": "gzip, br"}, body: "v1", cs: stored, calls: 1},
			{header: map[string]string{"Accept-Encoding": "br,gzip"}, body: "v1", cs: "meshgate; hit; ttl=60", calls: 1},
			{header: map[string]string{"Accept-Encoding": "identity"}, body: "v2", cs: "meshgate; fwd=vary-miss; fwd-status=200; stored", calls: 2},
		}},
		{"post invalidates", func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodPost {
				answer(w, 201, "made")
				return
			}
			maxAge("max-age=60")(w, r, n)
		}, []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{method: "POST", status: 201, body: "made", cs: "-", calls: 2},
			{body: "v3", cs: stored, calls: 3},
		}},
		{"failed post keeps", func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodPost {
				answer(w, 500, "no")
				return
			}
			maxAge("max-age=60")(w, r, n)
		}, []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{method: "POST", status: 500, body: "no", cs: "-", calls: 2},
			{body: "v1", cs: "meshgate; hit; ttl=60", calls: 2},
		}},
		{"stale-if-error", failing(maxAge("max-age=10, stale-if-error=60")), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 30 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=503; ttl=-20", calls: 2},
			{advance: 60 * time.Second, status: 503, body: "down", cs: "-", calls: 3},
		}},
		{"must-revalidate forbids stale", failing(maxAge("max-age=10, must-revalidate, stale-if-error=60")), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			{advance: 30 * time.Second, status: 503, body: "down", cs: "-", calls: 2},
		}},
		{"stale-while-revalidate", maxAge("max-age=10, stale-while-revalidate=60"), []cacheStep{
			{body: "v1", cs: stored, calls: 1},
			// Answered stale at once; one background request refreshes it.
			{advance: 20 * time.Second, body: "v1", cs: "meshgate; hit; ttl=-10", calls: -1},
		}},
		{"keyed per consumer", maxAge("max-age=60"), []cacheStep{
			{route: "keyed", header: map[string]string{"X-Api-Key": "alice"}, body: "v1", cs: stored, calls: 1},
			{route: "keyed", header: map[string]string{"X-Api-Key": "bob"}, body: "v2", cs: stored, calls: 2},
			{route: "keyed", header: map[string]string{"X-Api-Key": "alice"}, body: "v1", cs: "meshgate; hit; ttl=60", calls: 2},
		}},
		{"shared needs public", maxAge("max-age=60"), []cacheStep{
			{route: "shared", header: map[string]string{"X-Api-Key": "alice"}, body: "v1", cs: miss, calls: 1},
			{route: "shared", header: map[string]string{"X-Api-Key": "bob"}, body: "v2", cs: miss, calls: 2},
		}},
		{"shared and public", maxAge("public, max-age=60"), []cacheStep{
			{route: "shared", header: map[string]string{"X-Api-Key": "alice"}, body: "v1", cs: stored, calls: 1},
			{route: "shared", header: map[string]string{"X-Api-Key": "bob"}, body: "v1", cs: "meshgate; hit; ttl=60", calls: 1},
		}},
	}
	o := &scripted{clk: clk, cases: map[string]func(w http.ResponseWriter, r *http.Request, n int){}, calls: map[string]int{}}
	for _, c := range cases {
		o.cases[strings.ReplaceAll(c.name, " ", "-")] = c.origin
	}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	keys := map[string]string{}
	var consumers strings.Builder
	for _, name := range []string{"alice", "bob"} {
		key, hash, err := apikey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = key
		fmt.Fprintf(&consumers, "  - {name: %s, api_keys: [%q]}\n", name, hash)
	}
	e := startNode(t, t, fmt.Sprintf(`
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams: [{name: origin, endpoints: [{address: %q}]}]
auth:
  api_keys: [{name: key, header: X-Api-Key}]
consumers:
%s
routes:
  - {name: plain, match: {path: {prefix: /plain}}, upstream: origin, cache: {}}
  - {name: keyed, match: {path: {prefix: /keyed}}, upstream: origin, cache: {}, auth: {methods: [key]}}
  - {name: shared, match: {path: {prefix: /shared}}, upstream: origin, cache: {shared: true}, auth: {methods: [key]}}
`, addr(srv), consumers.String()), Options{Clock: clk})
	base := e.url("http")

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-")
			for i, st := range c.steps {
				clk.Advance(st.advance)
				method, route := st.method, st.route
				if method == "" {
					method = "GET"
				}
				if route == "" {
					route = "plain"
				}
				hdr := map[string]string{}
				for k, v := range st.header {
					if k == "X-Api-Key" {
						v = keys[v]
					}
					hdr[k] = v
				}
				code, h, body := get(t, nil, method, base+"/"+route+"/"+name+"/x", hdr)
				want := st.status
				if want == 0 {
					want = 200
				}
				if code != want || (st.body != "-" && body != st.body) {
					t.Fatalf("step %d: %d %q, want %d %q", i, code, body, want, st.body)
				}
				if cs := strings.Join(h.Values("Cache-Status"), ", "); st.cs != "-" && cs != st.cs {
					t.Errorf("step %d: Cache-Status %q, want %q", i, cs, st.cs)
				}
				if st.age != "" && h.Get("Age") != st.age {
					t.Errorf("step %d: Age %q, want %q", i, h.Get("Age"), st.age)
				}
				if st.calls >= 0 && o.callsOf(name) != st.calls {
					t.Errorf("step %d: origin called %d times, want %d", i, o.callsOf(name), st.calls)
				}
			}
		})
	}
	// The background revalidation of stale-while-revalidate: one request,
	// and the refreshed entry answers fresh.
	eventually(t, 5*time.Second, "the background revalidation", func() bool { return o.callsOf("stale-while-revalidate") == 2 })
	eventually(t, 5*time.Second, "the refreshed entry", func() bool {
		_, h, body := get(t, nil, "GET", base+"/plain/stale-while-revalidate/x", nil)
		return body == "v2" && strings.HasPrefix(h.Get("Cache-Status"), "meshgate; hit; ttl=")
	})
}

// 100 concurrent misses of one key through the edge make one upstream
// request; the rest wait for it and are answered collapsed (or, arriving
// after it, from the store).
func TestCacheCollapsesMissesThroughTheEdge(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
		answer(w, 200, "once", "Cache-Control", "max-age=60")
	}))
	t.Cleanup(origin.Close)
	e := startEdge(t, fmt.Sprintf(`
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams: [{name: origin, endpoints: [{address: %q}]}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: origin, cache: {collapse_wait: 10s}}]
`, addr(origin)))
	base := e.url("http")
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100, MaxConnsPerHost: 100}}
	var wg sync.WaitGroup
	results := make(chan string, 100)
	var sent atomic.Int32
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent.Add(1) }}
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base+"/a", nil)
			resp, err := c.Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%d %s %s", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
		}()
	}
	// The others pile up behind the leader: all sent while it is held.
	eventually(t, 5*time.Second, "the leader upstream, the others sent", func() bool {
		return calls.Load() == 1 && sent.Load() == 100
	})
	close(release)
	wg.Wait()
	close(results)
	// Those that came after the leader's answer are hits; the rest were
	// collapsed with it.
	collapsed := 0
	for r := range results {
		if !strings.HasPrefix(r, "200 once ") {
			t.Fatalf("answer %q", r)
		}
		if strings.HasSuffix(r, "; collapsed") {
			collapsed++
		}
	}
	t.Logf("%d of 100 collapsed", collapsed)
	if n := calls.Load(); n != 1 || collapsed == 0 {
		t.Errorf("origin called %d times (want 1), %d collapsed", n, collapsed)
	}
}

// The store holds at most cache.max_bytes: filling it past that evicts
// (counted per route), and what stays fits the bound.
func TestCacheByteBoundThroughTheEdge(t *testing.T) {
	body := strings.Repeat("x", 6<<10)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, body, "Cache-Control", "max-age=600")
	}))
	t.Cleanup(origin.Close)
	e := startEdge(t, fmt.Sprintf(`
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams: [{name: origin, endpoints: [{address: %q}]}]
cache: {max_bytes: 64KiB}
routes: [{name: r, match: {path: {prefix: /}}, upstream: origin, cache: {max_body: 8KiB}}]
`, addr(origin)))
	base := e.url("http")
	for i := range 40 {
		if code, _, b := get(t, nil, "GET", fmt.Sprintf("%s/p%d", base, i), nil); code != 200 || b != body {
			t.Fatalf("request %d: %d, %d bytes", i, code, len(b))
		}
	}
	eventually(t, 5*time.Second, "evictions", func() bool {
		return metricValue(t, e.node, `meshgate_cache_evictions_total{reason="size",route="r"}`) > 0
	})
	if v := metricValue(t, e.node, `meshgate_cache_stored_bytes{route="r"}`); v <= 0 || v > 64<<10 {
		t.Errorf("stored bytes %v, want within (0, 64 KiB]", v)
	}
}
