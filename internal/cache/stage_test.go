package cache

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// step is one request of a case and what its answer must be.
type step struct {
	advance  time.Duration // on the clock, before the request
	method   string        // "": GET
	path     string        // "": /a
	header   map[string]string
	consumer string
	status   int    // 0: 200
	body     string // checked unless "-"
	cs       string // the Cache-Status, exactly
	age      string // "": not checked
}

const (
	miss     = "meshgate; fwd=uri-miss; fwd-status=200"
	missKept = miss + "; stored"
)

func TestStage(t *testing.T) {
	maxAge := func(extra ...string) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			reply(w, 200, "v"+string(rune('0'+n)), append([]string{"Cache-Control", "max-age=60"}, extra...)...)
		}
	}
	etagged := func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		reply(w, 200, "v1", "Cache-Control", "max-age=10", "ETag", `"v1"`)
	}
	for _, tc := range []struct {
		name   string
		cfg    func(c *config.Cache)
		origin func(w http.ResponseWriter, r *http.Request, n int)
		steps  []step
		calls  int
	}{
		{name: "max-age hit", origin: maxAge(), calls: 1, steps: []step{
			{body: "v1", cs: missKept},
			{body: "v1", cs: "meshgate; hit; ttl=60", age: "0"},
		}},
		{name: "no-store", calls: 2, origin: func(w http.ResponseWriter, r *http.Request, n int) {
			reply(w, 200, "x", "Cache-Control", "no-store, max-age=60")
		}, steps: []step{{body: "x", cs: miss}, {body: "x", cs: miss}}},
		{name: "private", calls: 2, origin: func(w http.ResponseWriter, r *http.Request, n int) {
			reply(w, 200, "x", "Cache-Control", "private, max-age=60")
		}, steps: []step{{body: "x", cs: miss}, {body: "x", cs: miss}}},
		{name: "set-cookie", calls: 2, origin: maxAge("Set-Cookie", "s=1"), steps: []step{{body: "v1", cs: miss}, {body: "v2", cs: miss}}},
		{name: "set-cookie stored when allowed", cfg: func(c *config.Cache) { c.StoreSetCookie = true }, calls: 1, origin: maxAge("Set-Cookie", "s=1"),
			steps: []step{{body: "v1", cs: missKept}, {body: "v1", cs: "meshgate; hit; ttl=60"}}},
		{name: "authorization", calls: 2, origin: maxAge(), steps: []step{
			{header: map[string]string{"Authorization": "Bearer a"}, body: "v1", cs: miss},
			{header: map[string]string{"Authorization": "Bearer a"}, body: "v2", cs: miss},
		}},
		{name: "authorization with public", calls: 1, origin: maxAge("Cache-Control", "public"), steps: []step{
			{header: map[string]string{"Authorization": "Bearer a"}, body: "v1", cs: missKept},
			{header: map[string]string{"Authorization": "Bearer b"}, body: "v1", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "vary", calls: 2, origin: func(w http.ResponseWriter, r *http.Request, n int) {
			reply(w, 200, "enc="+r.Header.Get("Accept-Encoding"), "Cache-Control", "max-age=60", "Vary", "Accept-Encoding")
		}, steps: []step{
			{header: map[string]string{"Accept-Encoding": "gzip, br"}, body: "enc=gzip, br", cs: missKept},
			{header: map[string]string{"Accept-Encoding": "identity"}, body: "enc=identity", cs: "meshgate; fwd=vary-miss; fwd-status=200; stored"},
			{header: map[string]string{"Accept-Encoding": "br,gzip"}, body: "enc=gzip, br", cs: "meshgate; hit; ttl=60"},
			{header: map[string]string{"Accept-Encoding": "identity"}, body: "enc=identity", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "age grows", origin: maxAge(), calls: 2, steps: []step{
			{body: "v1", cs: missKept},
			{advance: 10 * time.Second, body: "v1", cs: "meshgate; hit; ttl=50", age: "10"},
			{advance: 20 * time.Second, body: "v1", cs: "meshgate; hit; ttl=30", age: "30"},
			{advance: 31 * time.Second, body: "v2", cs: "meshgate; fwd=uri-miss; fwd-status=200; stored"},
		}},
		{name: "client conditional", origin: maxAge("ETag", `"e1"`), calls: 1, steps: []step{
			{body: "v1", cs: missKept},
			{header: map[string]string{"If-None-Match": `"e1"`}, status: 304, body: "", cs: "meshgate; hit; ttl=60"},
			{header: map[string]string{"If-None-Match": `"other"`}, body: "v1", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "revalidation", origin: etagged, calls: 2, steps: []step{
			{body: "v1", cs: missKept},
			{advance: 11 * time.Second, body: "v1", cs: "meshgate; fwd=stale; fwd-status=304; ttl=60; stored", age: "0"},
			{advance: 5 * time.Second, body: "v1", cs: "meshgate; hit; ttl=55", age: "5"},
		}},
		{name: "request no-cache revalidates", origin: etagged, calls: 2, steps: []step{
			{body: "v1", cs: missKept},
			{header: map[string]string{"Cache-Control": "no-cache"}, body: "v1", cs: "meshgate; fwd=request; fwd-status=304; ttl=60; stored"},
		}},
		{name: "post invalidates", calls: 3, origin: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodPost {
				reply(w, 201, "made")
				return
			}
			maxAge()(w, r, n)
		}, steps: []step{
			{body: "v1", cs: missKept},
			{body: "v1", cs: "meshgate; hit; ttl=60"},
			{method: "POST", status: 201, body: "made", cs: "-"},
			{body: "v3", cs: missKept},
		}},
		{name: "failed post keeps", calls: 2, origin: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodPost {
				reply(w, 500, "no")
				return
			}
			maxAge()(w, r, n)
		}, steps: []step{
			{body: "v1", cs: missKept},
			{method: "POST", status: 500, body: "no", cs: "-"},
			{body: "v1", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "per consumer", cfg: func(c *config.Cache) { on := true; c.VaryConsumer = &on }, calls: 2,
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, "for "+exchange.From(r.Context()).Consumer, "Cache-Control", "max-age=60")
			}, steps: []step{
				{consumer: "alice", body: "for alice", cs: missKept},
				{consumer: "bob", body: "for bob", cs: missKept},
				{consumer: "alice", body: "for alice", cs: "meshgate; hit; ttl=60"},
				{consumer: "bob", body: "for bob", cs: "meshgate; hit; ttl=60"},
			}},
		{name: "shared needs public", calls: 2,
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, "for "+exchange.From(r.Context()).Consumer, "Cache-Control", "max-age=60")
			}, steps: []step{
				{consumer: "alice", body: "for alice", cs: miss},
				{consumer: "bob", body: "for bob", cs: miss},
			}},
		{name: "shared and public", calls: 1, origin: maxAge("Cache-Control", "public"), steps: []step{
			{consumer: "alice", body: "v1", cs: missKept},
			{consumer: "bob", body: "v1", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "over max_body", cfg: func(c *config.Cache) { c.MaxBody = 4 }, calls: 2,
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, "too long", "Cache-Control", "max-age=60")
			}, steps: []step{{body: "too long", cs: miss}, {body: "too long", cs: miss}}},
		{name: "over max_body without length", cfg: func(c *config.Cache) { c.MaxBody = 4 }, calls: 2,
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Cache-Control", "max-age=60")
				_, _ = w.Write([]byte("too "))
				_, _ = w.Write([]byte("long"))
			}, steps: []step{{body: "too long", cs: miss}, {body: "too long", cs: miss}}},
		{name: "ttl for silent responses", cfg: func(c *config.Cache) { c.TTL = config.Duration(30 * time.Second) }, calls: 1,
			origin: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, "quiet") },
			steps:  []step{{body: "quiet", cs: missKept}, {body: "quiet", cs: "meshgate; hit; ttl=30"}}},
		{name: "head from get", origin: maxAge(), calls: 1, steps: []step{
			{body: "v1", cs: missKept},
			{method: "HEAD", body: "", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "stored head answers only head", origin: maxAge(), calls: 2, steps: []step{
			{method: "HEAD", body: "-", cs: missKept},
			{body: "v2", cs: missKept},
			{method: "HEAD", body: "", cs: "meshgate; hit; ttl=60"},
		}},
		{name: "range bypasses", origin: maxAge(), calls: 2, steps: []step{
			{body: "v1", cs: missKept},
			{header: map[string]string{"Range": "bytes=0-0"}, body: "v2", cs: ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCache()
			if tc.cfg != nil {
				tc.cfg(c)
			}
			o := &origin{handle: tc.origin}
			clk := newClock()
			h, _ := newTestStage(t, c, o, clk)
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				method, path := st.method, st.path
				if method == "" {
					method = "GET"
				}
				if path == "" {
					path = "/a"
				}
				rec := send(h, method, path, st.consumer, st.header)
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
			}
			if n := o.Calls(); n != tc.calls {
				t.Errorf("origin called %d times, want %d", n, tc.calls)
			}
		})
	}
}

// The stage's revalidation sends the stored validators, not the client's.
func TestRevalidationSendsTheStoredETag(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		reply(w, 200, "v1", "Cache-Control", "max-age=1", "ETag", `"v1"`, "Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
	}}
	clk := newClock()
	h, _ := newTestStage(t, testCache(), o, clk)
	send(h, "GET", "/a", "", nil)
	clk.Advance(2 * time.Second)
	rec := send(h, "GET", "/a", "", map[string]string{"If-None-Match": `"client"`})
	if rec.Code != 200 || rec.Body.String() != "v1" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	if o.last.Get("If-None-Match") != `"v1"` || o.last.Get("If-Modified-Since") != "Thu, 01 Jan 2026 00:00:00 GMT" {
		t.Errorf("validators sent: %v", o.last)
	}
}

// 100 concurrent misses of one key make one upstream request.
func TestCollapsing(t *testing.T) {
	release := make(chan struct{})
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		<-release
		reply(w, 200, "once", "Cache-Control", "max-age=60")
	}}
	h, _ := newTestStage(t, testCache(), o, newClock())
	var wg sync.WaitGroup
	bodies := make(chan string, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies <- send(h, "GET", "/a", "", nil).Body.String()
		}()
	}
	// Every other request waits behind the leader before it is released.
	deadline := time.Now().Add(10 * time.Second)
	for h.(*stage).collapse.Waiting() != 99 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 99 requests wait behind the leader", h.(*stage).collapse.Waiting())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(bodies)
	for b := range bodies {
		if b != "once" {
			t.Fatalf("body %q", b)
		}
	}
	if n := o.Calls(); n != 1 {
		t.Errorf("origin called %d times, want 1", n)
	}
}
