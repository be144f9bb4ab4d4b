package aggregate

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// equalJSON fails unless got is the JSON document want.
func equalJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("response %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

// Independent calls run at once: three backends each taking 50 ms answer
// in less than two of them; the document holds each under its name, in
// configuration order.
func TestParallelCalls(t *testing.T) {
	ups := newUpstreams(t)
	for _, n := range []string{"a", "b", "c"} {
		ups.backend(n, slowBackend(50*time.Millisecond, `{"from":"`+n+`"}`, nil))
	}
	h := build(t, ups, `
calls:
  - {name: a, upstream: a, path: /a}
  - {name: b, upstream: b, path: /b}
  - {name: c, upstream: c, path: /c}
`, nil)
	serve(t, h, "GET", "/users/1", nil) // connections warm
	start := time.Now()
	res := serve(t, h, "GET", "/users/1", nil)
	took := time.Since(start)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if res.body != `{"a":{"from":"a"},"b":{"from":"b"},"c":{"from":"c"}}` {
		t.Errorf("body %s", res.body)
	}
	if took >= 100*time.Millisecond {
		t.Errorf("three 50ms calls took %v: not in parallel", took)
	}
	if res.x.Upstream != UpstreamLabel || res.header.Get("Content-Type") != "application/json" {
		t.Errorf("upstream %q, content type %q", res.x.Upstream, res.header.Get("Content-Type"))
	}
}

// A dependent call starts only once the response it reads has arrived,
// and gets its value (one path segment: "/" escaped).
func TestDependentCall(t *testing.T) {
	ups := newUpstreams(t)
	var mu sync.Mutex
	var userDone, ordersStart time.Time
	var ordersURI string
	ups.backend("users", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		_, _ = io.WriteString(w, `{"id":"u/7","profile":{"tags":["x",{"n":3}]}}`)
		mu.Lock()
		userDone = time.Now()
		mu.Unlock()
	})
	ups.backend("orders", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ordersStart, ordersURI = time.Now(), r.RequestURI
		mu.Unlock()
		_, _ = io.WriteString(w, `[{"order":1}]`)
	})
	c := &counts{}
	h := build(t, ups, `
calls:
  - name: orders
    upstream: orders
    path: /users/{call.user.id}/orders
    query: {n: "{call.user.profile.tags.1.n}", who: "{consumer}"}
  - {name: user, upstream: users, path: "/users/{path.id}"}
`, c)
	res := serve(t, h, "GET", "/users/7", nil)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	equalJSON(t, res.body, `{"orders":[{"order":1}],"user":{"id":"u/7","profile":{"tags":["x",{"n":3}]}}}`)
	if !strings.HasPrefix(res.body, `{"orders":`) {
		t.Errorf("not in configuration order: %s", res.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if ordersURI != "/users/u%2F7/orders?n=3&who=acme" {
		t.Errorf("orders got %q", ordersURI)
	}
	if ordersStart.Before(userDone) {
		t.Errorf("orders started %v before user's response was done", userDone.Sub(ordersStart))
	}
	if c.get("user/ok") != 1 || c.get("orders/ok") != 1 {
		t.Errorf("counted %v", c.calls)
	}
}

// A required call's failure fails the request naming the call; an optional
// one's leaves its part out (or null) and names it in Meshgate-Partial.
func TestFailures(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("ok", jsonBackend(`{"v":1}`))
	ups.backend("down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		_, _ = io.WriteString(w, `{"secret":"do not show"}`)
	})
	ups.dead("dead")

	t.Run("required", func(t *testing.T) {
		c := &counts{}
		h := build(t, ups, `
calls:
  - {name: item, upstream: ok, path: /}
  - {name: price, upstream: down, path: /}
`, c)
		res := serve(t, h, "GET", "/users/1", nil)
		if res.status != 502 || res.x.Error != exchange.AggregateCallFailed ||
			!strings.Contains(res.body, `"aggregate: call price failed: status 503"`) || strings.Contains(res.body, "secret") {
			t.Fatalf("%d %s", res.status, res.body)
		}
		if res.header.Get("Meshgate-Partial") != "" {
			t.Error("a failed request names partial parts")
		}
		if c.get("price/failed") != 1 || c.partial != 0 {
			t.Errorf("counted %v, %d partial", c.calls, c.partial)
		}
	})
	t.Run("connect", func(t *testing.T) {
		h := build(t, ups, `
calls:
  - {name: price, upstream: dead, path: /}
`, nil)
		res := serve(t, h, "GET", "/users/1", nil)
		if res.status != 502 || res.x.Reason != "aggregate: call price failed: upstream connect failed" {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
	for _, missing := range []string{"omit", "null"} {
		t.Run("optional/"+missing, func(t *testing.T) {
			c := &counts{}
			h := build(t, ups, `
missing: "`+missing+`"
calls:
  - {name: reviews, upstream: down, path: /, optional: true}
  - {name: item, upstream: ok, path: /}
  - {name: stock, upstream: dead, path: /, optional: true, into: info.stock}
`, c)
			res := serve(t, h, "GET", "/users/1", nil)
			if res.status != 200 {
				t.Fatalf("%d %s", res.status, res.body)
			}
			want := `{"item":{"v":1}}`
			if missing == "null" {
				want = `{"reviews":null,"item":{"v":1},"info":{"stock":null}}`
			}
			if res.body != want {
				t.Errorf("body %s, want %s", res.body, want)
			}
			if p := res.header.Get("Meshgate-Partial"); p != "reviews, stock" {
				t.Errorf("Meshgate-Partial %q", p)
			}
			if cc := res.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("partial response's Cache-Control %q", cc)
			}
			if c.partial != 1 || c.get("reviews/failed") != 1 || c.get("stock/failed") != 1 || c.get("item/ok") != 1 {
				t.Errorf("counted %v, %d partial", c.calls, c.partial)
			}
		})
	}
	t.Run("skipped", func(t *testing.T) {
		c := &counts{}
		h := build(t, ups, `
calls:
  - {name: user, upstream: down, path: /, optional: true}
  - {name: orders, upstream: ok, path: "/{call.user.id}"}
`, c)
		res := serve(t, h, "GET", "/users/1", nil)
		if res.status != 502 || res.x.Reason != "aggregate: call orders failed: depends on failed call user" {
			t.Fatalf("%d %s", res.status, res.body)
		}
		if c.get("orders/skipped") != 1 || c.get("user/failed") != 1 {
			t.Errorf("counted %v", c.calls)
		}
	})
}

// A required call's failure cancels the calls still running, and the
// request returns only once they have.
func TestFailureCancelsOthers(t *testing.T) {
	ups := newUpstreams(t)
	arrived, cancelled := newCounter(), newCounter()
	ups.backend("slow", func(w http.ResponseWriter, r *http.Request) {
		arrived.add()
		select {
		case <-r.Context().Done():
			cancelled.add()
		case <-time.After(10 * time.Second):
		}
	})
	ups.backend("down", func(w http.ResponseWriter, r *http.Request) {
		arrived.waitFor(2, 10*time.Second) // both slow calls are running
		w.WriteHeader(500)
	})
	c := &counts{}
	h := build(t, ups, `
calls:
  - {name: a, upstream: slow, path: /}
  - {name: b, upstream: slow, path: /, optional: true}
  - {name: price, upstream: down, path: /}
  - {name: after, upstream: slow, path: /, depends_on: [a]}
`, c)
	start := time.Now()
	res := serve(t, h, "GET", "/users/1", nil)
	if n := ups.inFlight.Load(); n != 0 {
		t.Errorf("%d calls in flight after the request returned", n)
	}
	if res.status != 502 || res.x.Reason != "aggregate: call price failed: status 500" {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	cancelled.wait(t, 2)
	for key, n := range map[string]int{"price/failed": 1, "a/skipped": 1, "b/skipped": 1, "after/skipped": 1} {
		if c.get(key) != n {
			t.Errorf("counted %v", c.calls)
			break
		}
	}
}

// The composite's deadline: 504 naming the required call still waited
// for, every call's context cancelled; an optional call that times out is
// left out.
func TestTimeout(t *testing.T) {
	ups := newUpstreams(t)
	cancelled := newCounter()
	ups.backend("slow", slowBackend(10*time.Second, `{}`, cancelled))
	ups.backend("fast", jsonBackend(`{"v":1}`))
	c := &counts{}
	h := build(t, ups, `
timeout: 100ms
calls:
  - {name: fast, upstream: fast, path: /}
  - {name: slow, upstream: slow, path: /}
`, c)
	start := time.Now()
	res := serve(t, h, "GET", "/users/1", nil)
	if res.status != 504 || res.x.Error != exchange.AggregateTimeout || res.x.Reason != "aggregate: timed out waiting for call slow" {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	if n := ups.inFlight.Load(); n != 0 {
		t.Errorf("%d calls in flight after the request returned", n)
	}
	cancelled.wait(t, 1)
	if c.get("slow/timeout") != 1 || c.get("fast/ok") != 1 {
		t.Errorf("counted %v", c.calls)
	}

	h = build(t, ups, `
timeout: 100ms
calls:
  - {name: fast, upstream: fast, path: /}
  - {name: slow, upstream: slow, path: /, optional: true}
`, nil)
	res = serve(t, h, "GET", "/users/1", nil)
	if res.status != 200 || res.body != `{"fast":{"v":1}}` || res.header.Get("Meshgate-Partial") != "slow" {
		t.Fatalf("%d %s %v", res.status, res.body, res.header)
	}
	cancelled.wait(t, 1)
}

// Each call gets a caller of its upstream with its own timeout and retry.
func TestCallOptions(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("u", jsonBackend(`{}`))
	build(t, ups, `
calls:
  - {name: slow, upstream: u, path: /, timeout: 50ms, retry: {attempts: 2}}
`, nil)
	o := ups.opts["r/slow"]
	if o.Timeout.D() != 50*time.Millisecond || o.Retry == nil || o.Retry.Attempts != 2 {
		t.Errorf("caller options %+v", o)
	}
}

// Responses a call cannot use: not JSON (the reason never quotes it), not
// an object where "." merges it, compressed, too large.
func TestBadResponses(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("html", jsonBackend(`<html>secret page</html>`))
	ups.backend("empty", jsonBackend(``))
	ups.backend("array", jsonBackend(`[1,2]`))
	ups.backend("gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = io.WriteString(w, "\x1f\x8b")
	})
	big := `{"data":"` + strings.Repeat("x", 100) + `"}`
	ups.backend("big", jsonBackend(big))
	ups.backend("chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			_, _ = io.WriteString(w, strings.Repeat(" ", 10))
			http.NewResponseController(w).Flush()
		}
		_, _ = io.WriteString(w, "{}")
	})
	for _, tc := range []struct {
		name, calls string
		kind        *exchange.Kind
		reason      string
	}{
		{"html", `{name: page, upstream: html, path: /}`, exchange.AggregateCallFailed,
			"aggregate: call page failed: response is not JSON: syntax error at offset 0"},
		{"empty", `{name: e, upstream: empty, path: /}`, exchange.AggregateCallFailed,
			"aggregate: call e failed: response is not JSON: empty body"},
		{"root", `{name: list, upstream: array, path: /, into: .}`, exchange.AggregateCallFailed,
			"aggregate: call list failed: its response is not an object to merge at the root"},
		{"gzip", `{name: z, upstream: gzip, path: /}`, exchange.AggregateCallFailed,
			"aggregate: call z failed: response has Content-Encoding gzip"},
		{"big", `{name: big, upstream: big, path: /, max_body: 64}`, exchange.AggregateTooLarge,
			"aggregate: response of call big larger than 64 bytes"},
		{"chunked", `{name: ch, upstream: chunked, path: /, max_body: 64}`, exchange.AggregateTooLarge,
			"aggregate: response of call ch larger than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counts{}
			h := build(t, ups, "calls:\n  - "+tc.calls+"\n", c)
			res := serve(t, h, "GET", "/users/1", nil)
			if res.x.Error != tc.kind || res.x.Reason != tc.reason || res.status != 502 {
				t.Fatalf("%d %s (%s)", res.status, res.body, res.x.Reason)
			}
			if strings.Contains(res.body, "secret") {
				t.Error("the reason quotes the response")
			}
			if tc.kind == exchange.AggregateTooLarge && len(c.calls) != 1 {
				t.Errorf("counted %v", c.calls)
			}
		})
	}
	// The chunked body just fits a larger bound; the combined one does not.
	h := build(t, ups, `
max_body: 100
calls:
  - {name: a, upstream: big, path: /}
`, nil)
	res := serve(t, h, "GET", "/users/1", nil)
	if res.x.Error != exchange.AggregateTooLarge || res.x.Reason != "aggregate: combined response larger than 100 bytes" {
		t.Fatalf("%d %s", res.status, res.body)
	}
}

// A reference to what the response it reads does not have fails the call
// that reads it, naming the reference.
func TestMissingReference(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("users", jsonBackend(`{"name":"ann","id":null,"tags":["a"],"n":1.5,"ok":true}`))
	got := newCounter()
	var mu sync.Mutex
	var uris []string
	ups.backend("orders", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uris = append(uris, r.RequestURI)
		mu.Unlock()
		got.add()
		_, _ = io.WriteString(w, `{}`)
	})
	for _, tc := range []struct{ path, reason string }{
		{"/{call.user.uid}", "aggregate: call orders failed: {call.user.uid}: user's response has no uid"},
		{"/{call.user.id}", "aggregate: call orders failed: {call.user.id}: user's response has no id"},
		{"/{call.user.tags}", "aggregate: call orders failed: {call.user.tags}: user's tags is not a scalar"},
		{"/{call.user.tags.1}", "aggregate: call orders failed: {call.user.tags.1}: user's response has no tags.1"},
		{"/{call.user}", "aggregate: call orders failed: {call.user}: user's response is not a scalar"},
		{"/{call.user.tags.0}/{call.user.n}/{call.user.ok}", ""},
	} {
		h := build(t, ups, `
calls:
  - {name: user, upstream: users, path: /}
  - {name: orders, upstream: orders, path: "`+tc.path+`"}
`, nil)
		res := serve(t, h, "GET", "/users/1", nil)
		if tc.reason == "" {
			if res.status != 200 {
				t.Errorf("%s: %d %s", tc.path, res.status, res.body)
			}
			continue
		}
		if res.status != 502 || res.x.Reason != tc.reason {
			t.Errorf("%s: %d %q, want %q", tc.path, res.status, res.x.Reason, tc.reason)
		}
	}
	got.wait(t, 1)
	mu.Lock()
	defer mu.Unlock()
	if len(uris) != 1 || uris[0] != "/a/1.5/true" {
		t.Errorf("orders got %q", uris)
	}
}

// Past max_concurrency composites in progress, 503 with Retry-After at
// once.
func TestConcurrencyLimit(t *testing.T) {
	ups := newUpstreams(t)
	arrived, release := newCounter(), make(chan struct{})
	ups.backend("held", func(w http.ResponseWriter, r *http.Request) {
		arrived.add()
		<-release
		_, _ = io.WriteString(w, `{}`)
	})
	h := build(t, ups, `
max_concurrency: 2
calls:
  - {name: a, upstream: held, path: /}
`, nil)
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = serve(t, h, "GET", "/users/1", nil).status
		}()
	}
	arrived.wait(t, 2)
	res := serve(t, h, "GET", "/users/1", nil)
	if res.status != 503 || res.x.Error != exchange.AggregateOverloaded || res.header.Get("Retry-After") != "1" {
		t.Errorf("third request: %d %v %s", res.status, res.header, res.body)
	}
	close(release)
	wg.Wait()
	if statuses[0] != 200 || statuses[1] != 200 {
		t.Errorf("held requests: %v", statuses)
	}
	if res := serve(t, h, "GET", "/users/1", nil); res.status != 200 {
		t.Errorf("after: %d", res.status)
	}
}

// into paths create objects on the way; "." merges an object's members at
// the root; a later call wins a key.
func TestInto(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("a", jsonBackend(`{"name":"a","x":{"keep":true}}`))
	ups.backend("b", jsonBackend(` 42 `))
	ups.backend("c", jsonBackend(`{"name":"c","extra":[1],"a\u00e9":1}`))
	ups.backend("d", jsonBackend(`"deep"`))
	h := build(t, ups, `
calls:
  - {name: a, upstream: a, path: /, into: .}
  - {name: b, upstream: b, path: /, into: details.count}
  - {name: c, upstream: c, path: /, into: .}
  - {name: d, upstream: d, path: /, into: x.y.z}
  - {name: e, upstream: b, path: /, into: details}
`, nil)
	res := serve(t, h, "GET", "/users/1", nil)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	want := `{"name":"c","x":{"keep":true,"y":{"z":"deep"}},"details":42,"extra":[1],"aé":1}`
	if res.body != want {
		t.Errorf("body %s\nwant %s", res.body, want)
	}
}

// A call's transform reshapes its part (and what dependents read); the
// aggregate's transform reshapes the whole, to XML when the client asks.
func TestTransforms(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("user", jsonBackend(`{"id":"7","name":"ann","password":"x"}`))
	ups.backend("legacy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, `<stock><count>3</count></stock>`)
	})
	var mu sync.Mutex
	var seen string
	ups.backend("orders", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.RequestURI
		mu.Unlock()
		_, _ = io.WriteString(w, `[1,2]`)
	})
	h := build(t, ups, `
transform:
  deny: [user.uid]
  to: accept
calls:
  - name: user
    upstream: user
    path: /
    transform: {deny: [password], map: [{op: rename, path: id, key: uid}]}
  - {name: stock, upstream: legacy, path: /, transform: {from: xml}}
  - {name: orders, upstream: orders, path: "/o/{call.user.uid}"}
`, nil)
	res := serve(t, h, "GET", "/users/1", nil)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	equalJSON(t, res.body, `{"user":{"name":"ann"},"stock":{"stock":{"count":"3"}},"orders":[1,2]}`)
	if res.header.Get("Vary") != "Accept" {
		t.Errorf("Vary %q", res.header.Get("Vary"))
	}
	mu.Lock()
	if seen != "/o/7" {
		t.Errorf("orders got %q", seen)
	}
	mu.Unlock()
	res = serve(t, h, "GET", "/users/1", map[string]string{"Accept": "application/xml"})
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "application/xml") ||
		!strings.Contains(res.body, "<name>ann</name>") || !strings.Contains(res.body, "<count>3</count>") {
		t.Fatalf("%d %v %s", res.status, res.header, res.body)
	}
	if res.header.Get("Content-Length") != itoa(len(res.body)) {
		t.Errorf("Content-Length %s for %d bytes", res.header.Get("Content-Length"), len(res.body))
	}
	// HEAD: the same without a body.
	head := serve(t, h, "HEAD", "/users/1", map[string]string{"Accept": "application/xml"})
	if head.status != 200 || head.body != "" || head.header.Get("Content-Length") != res.header.Get("Content-Length") {
		t.Errorf("HEAD: %d %v %q", head.status, head.header, head.body)
	}
}

// Only the headers a call names are copied from its response; framing
// headers never are.
func TestResponseHeaders(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Rate", "10")
		w.Header().Set("X-Other", "no")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Add("Set-Cookie", "a=1")
		_, _ = io.WriteString(w, `{}`)
	})
	ups.backend("b", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "b=2")
		_, _ = io.WriteString(w, `{}`)
	})
	h := build(t, ups, `
calls:
  - {name: a, upstream: a, path: /, response_headers: [x-rate, set-cookie, content-type]}
  - {name: b, upstream: b, path: /, response_headers: [Set-Cookie]}
`, nil)
	res := serve(t, h, "GET", "/users/1", nil)
	if res.header.Get("X-Rate") != "10" || res.header.Get("X-Other") != "" ||
		!reflect.DeepEqual(res.header["Set-Cookie"], []string{"a=1", "b=2"}) || res.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", res.header)
	}
	if _, ok := res.header["Cache-Control"]; ok {
		t.Error("Cache-Control set though no part has one")
	}
}

func TestCacheControl(t *testing.T) {
	for _, tc := range []struct {
		parts []string // "-": no header
		want  string
	}{
		{[]string{"max-age=60", "max-age=30, public"}, "max-age=30"},
		{[]string{"public, max-age=60", "public, max-age=30"}, "public, max-age=30"},
		{[]string{"max-age=60", "-"}, ""},
		{[]string{"max-age=60", "no-store"}, "no-store"},
		{[]string{"private, max-age=60", "public, s-maxage=100, max-age=10"}, "private, max-age=10"},
		{[]string{"max-age=60, s-maxage=120", "max-age=90"}, "max-age=60, s-maxage=90"},
		{[]string{"max-age=60, s-maxage=30", "max-age=20"}, "max-age=20, s-maxage=20"},
		{[]string{"no-cache", "max-age=20, must-revalidate"}, "no-cache, must-revalidate, max-age=0"},
		{[]string{"Max-Age=\"15\"", "max-age=bad"}, "max-age=0"},
		{[]string{"immutable"}, ""},
	} {
		var parts []http.Header
		for _, p := range tc.parts {
			h := http.Header{}
			if p != "-" {
				h.Set("Cache-Control", p)
			}
			parts = append(parts, h)
		}
		if got := combineCacheControl(parts); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.parts, got, tc.want)
		}
	}
	// End to end: every part has one.
	ups := newUpstreams(t)
	for n, cc := range map[string]string{"a": "max-age=60", "b": "private, max-age=30"} {
		ups.backend(n, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", cc)
			_, _ = io.WriteString(w, `{}`)
		})
	}
	h := build(t, ups, `
calls:
  - {name: a, upstream: a, path: /}
  - {name: b, upstream: b, path: /}
`, nil)
	if cc := serve(t, h, "GET", "/users/1", nil).header.Get("Cache-Control"); cc != "private, max-age=30" {
		t.Errorf("Cache-Control %q", cc)
	}
}

// A client that goes away mid-fan-out cancels every call (the backends see
// it), gets nothing (499 in the log), and leaves no goroutine behind, over
// many requests.
func TestClientGoesAway(t *testing.T) {
	ups := newUpstreams(t)
	arrived, cancelled, notCancelled := newCounter(), newCounter(), newCounter()
	for _, n := range []string{"a", "b", "c"} {
		ups.backend(n, func(w http.ResponseWriter, r *http.Request) {
			arrived.add()
			select {
			case <-r.Context().Done():
				cancelled.add()
			case <-time.After(2 * time.Second):
				notCancelled.add()
				_, _ = io.WriteString(w, `{}`)
			}
		})
	}
	h := build(t, ups, `
calls:
  - {name: a, upstream: a, path: /}
  - {name: b, upstream: b, path: /, optional: true}
  - {name: c, upstream: c, path: /}
  - {name: d, upstream: a, path: "/{call.a.id}"}
`, nil)
	once := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			arrived.wait(t, 3)
			cancel()
		}()
		res := serveCtx(t, ctx, h, "GET", "/users/1", nil)
		if n := ups.inFlight.Load(); n != 0 {
			t.Fatalf("%d calls still in flight after the request returned", n)
		}
		if n := notCancelled.get(); n != 0 {
			t.Fatalf("%d calls not cancelled when the client went away", n)
		}
		<-done
		if res.wrote || res.x.Status != 499 {
			t.Fatalf("wrote %v, status %d", res.wrote, res.x.Status)
		}
		cancelled.wait(t, 3)
	}
	once()
	ups.tr.CloseIdleConnections()
	base := runtime.NumGoroutine()
	n := 1000
	if testing.Short() {
		n = 100
	}
	for range n {
		once()
	}
	if arrived.get() != 3*(n+1) || cancelled.get() != 3*(n+1) {
		t.Errorf("%d calls arrived, %d cancelled", arrived.get(), cancelled.get())
	}
	ups.tr.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Template values cannot step out of their path segment, and a header
// value with a line break is never sent.
func TestInjection(t *testing.T) {
	ups := newUpstreams(t)
	var mu sync.Mutex
	var uris []string
	var hdrs []http.Header
	ups.backend("items", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uris = append(uris, r.RequestURI)
		hdrs = append(hdrs, r.Header.Clone())
		mu.Unlock()
		_, _ = io.WriteString(w, `{}`)
	})
	h := build(t, ups, `
calls:
  - {name: item, upstream: items, path: "/items/{query.id}/detail", query: {q: "{query.id}"}, headers: {X-Tag: "t-{query.tag}"}}
`, nil)
	for _, tc := range []struct{ id, uri string }{
		{"../admin", "/items/..%2Fadmin/detail?q=..%2Fadmin"},
		{"..", "/items/%2E%2E/detail?q=.."},
		{".", "/items/%2E/detail?q=."},
		{"a/b", "/items/a%2Fb/detail?q=a%2Fb"},
		{"%2F", "/items/%252F/detail?q=%252F"},
		{"x?y#z", "/items/x%3Fy%23z/detail?q=x%3Fy%23z"},
		{"a b&c=d", "/items/a%20b%26c%3Dd/detail?q=a%20b%26c%3Dd"},
	} {
		mu.Lock()
		uris = nil
		mu.Unlock()
		res := serve(t, h, "GET", "/users/1?id="+queryEscape(tc.id), nil)
		mu.Lock()
		if res.status != 200 || len(uris) != 1 || uris[0] != tc.uri {
			t.Errorf("id %q: %d, backend got %q, want %q", tc.id, res.status, uris, tc.uri)
		} else if segs := segments(uris[0]); len(segs) != 3 || segs[0] != "items" || segs[2] != "detail" {
			t.Errorf("id %q: segments %q", tc.id, segs)
		}
		mu.Unlock()
	}
	// The route's own template parameter, as the router gives it.
	h2 := build(t, ups, `
calls:
  - {name: user, upstream: items, path: "/u/{path.id}"}
`, nil)
	// It arrives percent-encoded (as in the request's path): its escapes
	// are kept, %2F included, and nothing else steps out either.
	for _, tc := range []struct{ param, uri string }{
		{"..", "/u/%2E%2E"},
		{"a%20b", "/u/a%20b"},
		{"a%2Fb", "/u/a%2Fb"},
		{"%2E%2E", "/u/%2E%2E"},
		{"a;b=c", "/u/a%3Bb%3Dc"},
	} {
		mu.Lock()
		uris = nil
		mu.Unlock()
		if res := serve(t, h2, "GET", "/users/"+tc.param, nil); res.status != 200 {
			t.Fatalf("%d %s", res.status, res.body)
		}
		mu.Lock()
		if len(uris) != 1 || uris[0] != tc.uri {
			t.Errorf("parameter %q: backend got %q, want %q", tc.param, uris, tc.uri)
		}
		mu.Unlock()
	}
	mu.Lock()
	hdrs = nil
	mu.Unlock()
	for _, evil := range []string{"a\r\nX-Evil: 1", "a\nb", "a\x00b"} {
		res := serve(t, h, "GET", "/users/1?id=1&tag="+queryEscape(evil), nil)
		if res.status != 502 || res.x.Reason != "aggregate: call item failed: header X-Tag: value carries a control character" {
			t.Errorf("%q: %d %s", evil, res.status, res.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hdrs) != 0 {
		t.Errorf("backend called with %v", hdrs)
	}
}

func TestAppendSegment(t *testing.T) {
	for _, tc := range []struct {
		v       string
		encoded bool
		want    string
	}{
		{"..", false, "%2E%2E"},
		{"...", true, "%2E%2E%2E"},
		{"", false, ""},
		{"a.b~c_d-e", false, "a.b~c_d-e"},
		{"a/b%2F", false, "a%2Fb%252F"},
		{"a/b%2F", true, "a%2Fb%2F"},
		{"a%zz%4", true, "a%25zz%254"},
		{"é", false, "%C3%A9"},
	} {
		if got := string(appendSegment(nil, tc.v, tc.encoded)); got != tc.want {
			t.Errorf("%q (encoded %v): %q, want %q", tc.v, tc.encoded, got, tc.want)
		}
	}
}

// The call's request: method, headers from templates and the client's
// pass_headers, a JSON body whose strings are templates (a lone reference
// takes its JSON value), and never the client's body.
func TestRequest(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("user", jsonBackend(`{"id":7,"profile":{"name":"ann \"a\"","tags":[1,2]}}`))
	type seen struct {
		method, ct, body, tag, auth, other, ae string
	}
	got := make(chan seen, 1)
	ups.backend("search", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Content-Type"), string(b), r.Header.Get("X-Tag"),
			r.Header.Get("Authorization"), r.Header.Get("X-Other"), r.Header.Get("Accept-Encoding")}
		_, _ = io.WriteString(w, `{}`)
	})
	h := build(t, ups, `
calls:
  - {name: user, upstream: user, path: /}
  - name: search
    upstream: search
    method: post
    path: /search
    pass_headers: [authorization]
    headers: {x-tag: "{call.user.id}-{consumer}"}
    body:
      profile: "{call.user.profile}"
      tags: "{call.user.profile.tags}"
      label: "name: {call.user.profile.name}"
      lit: "{{not a var}}"
      n: 3
      list: ["{consumer}", true]
`, nil)
	res := serve(t, h, "GET", "/users/1", map[string]string{"Authorization": "Bearer t", "X-Other": "o"})
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	s := <-got
	if s.method != "POST" || s.ct != "application/json" || s.tag != "7-acme" || s.auth != "Bearer t" || s.other != "" || s.ae != "identity" {
		t.Errorf("%+v", s)
	}
	equalJSON(t, s.body, `{"profile":{"name":"ann \"a\"","tags":[1,2]},"tags":[1,2],"label":"name: ann \"a\"","lit":"{not a var}","n":3,"list":["acme",true]}`)
}

// Build refuses what cannot run, and never panics.
func TestBuildErrors(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("u", jsonBackend(`{}`))
	for _, tc := range []struct{ src, want string }{
		{"calls: []", "calls: none"},
		{"calls:\n  - {name: a, upstream: u, path: '/{call.b.x}'}\n  - {name: b, upstream: u, path: '/{call.a.x}'}", "form a cycle"},
		{"calls:\n  - {name: a, upstream: u, path: /, depends_on: [a]}", "depends on itself"},
		{"calls:\n  - {name: a, upstream: u, path: '/{call.zz.x}'}", `no call is named "zz"`},
		{"calls:\n  - {name: a, upstream: u, path: '/{nope}'}", "unknown variable"},
		{"calls:\n  - {name: a, upstream: nope, path: /}", `no upstream "nope"`},
		{"calls:\n  - {name: a, upstream: u, path: /}\n  - {name: a, upstream: u, path: /}", "comes earlier"},
		{"calls:\n  - {use: missing}", "no call definition"},
		{"calls:\n  - {name: a, upstream: u, path: x}", "does not start with /"},
		{"calls:\n  - {name: a, upstream: u, path: /, into: 'a..b'}", "empty key"},
		{"calls:\n  - {name: a, upstream: u, path: /, transform: {to: xml}}", "a call's part is JSON"},
		{"missing: maybe\ncalls:\n  - {name: a, upstream: u, path: /}", "missing"},
	} {
		_, err := buildErr(t, ups, tc.src, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}
	b := Policy(Deps{})
	rt := &config.Route{Name: "r", Aggregate: parseAggregate(t, "calls:\n  - {name: a, upstream: u, path: /}")}
	if _, err := b.Build(rt, nopEnv(), nil); err == nil {
		t.Error("built without upstreams")
	}
}

// Named definitions: a call takes one with use and overrides its fields.
func TestDefinitions(t *testing.T) {
	ups := newUpstreams(t)
	ups.backend("u", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	})
	defs := []config.AggregateCall{{Name: "user", Upstream: "u", Path: "/users/{path.id}"}}
	h, err := buildErr(t, ups, `
calls:
  - {use: user}
  - {use: user, name: other, path: /other}
`, defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := serve(t, h, "GET", "/users/9", nil)
	if res.body != `{"user":{"path":"/users/9"},"other":{"path":"/other"}}` {
		t.Errorf("%d %s", res.status, res.body)
	}
}
