package cache

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/fallback"
	"github.com/meshgate/meshgate/internal/policy"
)

// fallbacks counts the fallback stage's answers by via.
type fallbacks struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *fallbacks) Fallback(route, reason, via string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[reason+"/"+via]++
}

func (f *fallbacks) get(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[key]
}

// newFallbackStack is a route's cache stage around its fallback stage (as
// policy.Order puts them) around o; the fallback's upstream is standby.
func newFallbackStack(t *testing.T, fb *config.Fallback, o, standby http.Handler, clk *clock) (http.Handler, *fallbacks) {
	t.Helper()
	if len(fb.On) == 0 {
		fb.On = config.DefaultFallbackOn
	}
	if fb.Response != nil && fb.Response.Status == 0 {
		fb.Response.Status = http.StatusServiceUnavailable
	}
	rt := &config.Route{Name: "r", Upstream: "primary", Cache: testCache(), Fallback: fb}
	fc := &fallbacks{}
	env := policy.Env{Route: "r", Reroute: func(string) (http.Handler, error) { return standby, nil }}
	inner, err := fallback.Policy(fallback.Deps{Metrics: fc}).Build(rt, env, o)
	if err != nil {
		t.Fatal(err)
	}
	st := cachestore.New(cachestore.Options{MaxBytes: 8 << 20, Now: clk.Now})
	t.Cleanup(st.Close)
	return New(rt.Cache, Options{Route: "r", Store: st, Now: clk.Now, FallbackStale: fb.Stale.D()}, inner), fc
}

// sendX is send that returns the request's exchange too.
func sendX(h http.Handler, target string, hdr map[string]string) (*httptest.ResponseRecorder, *exchange.Exchange) {
	r := httptest.NewRequest("GET", "http://api.example"+target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	x := &exchange.Exchange{Scheme: "http", RequestID: "req-1"}
	r = r.WithContext(exchange.With(r.Context(), x))
	rec := httptest.NewRecorder()
	h.ServeHTTP(exchange.Recorder(rec, x), r)
	return rec, x
}

// A route's fallback prefers a stale copy from the route's cache, within
// fallback.stale and past the response's own stale-if-error, to its
// upstream and static response; past the window, or for a response that
// forbids serving stale, the next fallbacks answer; and what they answer
// is never stored.
func TestFallbackStale(t *testing.T) {
	down := false
	var mu sync.Mutex
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		failing := down
		mu.Unlock()
		if failing {
			exchange.Write(w, exchange.From(r.Context()), exchange.CircuitOpen)
			return
		}
		cc := "max-age=10"
		if r.URL.Path == "/strict" {
			cc = "max-age=10, must-revalidate"
		}
		reply(w, 200, "v1", "Cache-Control", cc)
	}}
	standby := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, "standby", "Cache-Control", "max-age=600")
	})
	clk := newClock()
	fb := &config.Fallback{Stale: config.Duration(time.Hour), Upstream: "standby",
		Response: &config.FallbackResponse{Body: `{"degraded":true}`}}
	h, fc := newFallbackStack(t, fb, o, standby, clk)
	for _, p := range []string{"/a", "/strict"} {
		if rec, _ := sendX(h, p, nil); rec.Code != 200 || rec.Body.String() != "v1" {
			t.Fatalf("%s: %d %q", p, rec.Code, rec.Body.String())
		}
	}
	mu.Lock()
	down = true
	mu.Unlock()

	// 30 minutes stale: the stored copy answers, marked stale.
	clk.Advance(30 * time.Minute)
	rec, x := sendX(h, "/a", nil)
	if rec.Code != 200 || rec.Body.String() != "v1" || rec.Header().Get("Cache-Status") != "meshgate; fwd=stale; fwd-status=503; ttl=-1790" {
		t.Fatalf("stale: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Cache-Status"))
	}
	if x.Fallback != fallback.ViaStale || x.FallbackReason != "circuit_open" || x.Error != nil || x.StaleAvailable {
		t.Errorf("exchange: fallback %q reason %q error %v stale mark %v", x.Fallback, x.FallbackReason, x.Error, x.StaleAvailable)
	}
	if fc.get("circuit_open/stale") != 1 || fc.get("circuit_open/upstream") != 0 {
		t.Errorf("fallbacks %v", fc.n)
	}

	// must-revalidate forbids a stale answer: the standby upstream's.
	rec, x = sendX(h, "/strict", nil)
	if rec.Body.String() != "standby" || x.Fallback != fallback.ViaUpstream {
		t.Fatalf("must-revalidate: %d %q via %q", rec.Code, rec.Body.String(), x.Fallback)
	}
	// ... and the standby's answer was not stored in the route's place.
	mu.Lock()
	down = false
	mu.Unlock()
	calls := o.Calls()
	if rec, _ := sendX(h, "/strict", nil); rec.Body.String() != "v1" || o.Calls() != calls+1 {
		t.Fatalf("after the standby answered: %q, origin calls %d → %d", rec.Body.String(), calls, o.Calls())
	}
	mu.Lock()
	down = true
	mu.Unlock()

	// A client that refuses stale (max-age=0 without max-stale) gets the next fallback.
	if rec, x := sendX(h, "/a", map[string]string{"Cache-Control": "max-age=0"}); rec.Body.String() != "standby" || x.Fallback != fallback.ViaUpstream {
		t.Fatalf("max-age=0: %q via %q", rec.Body.String(), x.Fallback)
	}

	// Past the window (10 s fresh + 1 h): the standby upstream answers.
	clk.Advance(31 * time.Minute)
	if rec, x := sendX(h, "/a", nil); rec.Body.String() != "standby" || x.Fallback != fallback.ViaUpstream {
		t.Fatalf("past fallback.stale: %q via %q", rec.Body.String(), x.Fallback)
	}
}

// Without the fallback's stale, a stored copy stands in only within its
// own stale-if-error; the route's fallback still stands aside for it.
func TestFallbackDefersToStaleIfError(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 200, "v1", "Cache-Control", "max-age=10, stale-if-error=60")
			return
		}
		exchange.Write(w, exchange.From(r.Context()), exchange.ConnectFailed)
	}}
	clk := newClock()
	fb := &config.Fallback{Response: &config.FallbackResponse{Body: `{"degraded":true}`}}
	h, fc := newFallbackStack(t, fb, o, nil, clk)
	sendX(h, "/a", nil)
	clk.Advance(30 * time.Second)
	if rec, x := sendX(h, "/a", nil); rec.Body.String() != "v1" || x.Fallback != fallback.ViaStale {
		t.Fatalf("in stale-if-error: %d %q via %q", rec.Code, rec.Body.String(), x.Fallback)
	}
	clk.Advance(time.Minute)
	rec, x := sendX(h, "/a", nil)
	if rec.Code != 503 || rec.Body.String() != `{"degraded":true}` || x.Fallback != fallback.ViaResponse {
		t.Fatalf("past it: %d %q via %q", rec.Code, rec.Body.String(), x.Fallback)
	}
	if fc.get("connect_failed/stale") != 1 || fc.get("connect_failed/response") != 1 {
		t.Errorf("fallbacks %v", fc.n)
	}
}

// A request with only-if-cached never goes upstream: a stored response
// that may answer it does, else 504 (RFC 9111 §5.2.1.7).
func TestOnlyIfCached(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		// An ETag keeps it stored past its freshness, to revalidate.
		reply(w, 200, "v1", "Cache-Control", "max-age=10", "ETag", `"v1"`)
	}}
	clk := newClock()
	n := &counts{}
	s := newCountedStage(t, testCache(), o, clk, n)
	only := map[string]string{"Cache-Control": "only-if-cached"}
	rec := send(s, "GET", "/a", "", only)
	if rec.Code != http.StatusGatewayTimeout || rec.Header().Get("Cache-Status") != "meshgate; detail=only-if-cached" || o.Calls() != 0 {
		t.Fatalf("nothing stored: %d %q, origin calls %d", rec.Code, rec.Header().Get("Cache-Status"), o.Calls())
	}
	send(s, "GET", "/a", "", nil)
	if rec := send(s, "GET", "/a", "", only); rec.Code != 200 || rec.Body.String() != "v1" || o.Calls() != 1 {
		t.Fatalf("fresh: %d %q, origin calls %d", rec.Code, rec.Body.String(), o.Calls())
	}
	clk.Advance(20 * time.Second)
	if rec := send(s, "GET", "/a", "", only); rec.Code != http.StatusGatewayTimeout || o.Calls() != 1 {
		t.Fatalf("stale: %d, origin calls %d", rec.Code, o.Calls())
	}
	rec = send(s, "GET", "/a", "", map[string]string{"Cache-Control": "only-if-cached, max-stale=60"})
	if rec.Code != 200 || rec.Header().Get("Cache-Status") != "meshgate; hit; ttl=-10" || o.Calls() != 1 {
		t.Fatalf("stale within max-stale: %d %q, origin calls %d", rec.Code, rec.Header().Get("Cache-Status"), o.Calls())
	}
	if n.get(ResultMiss) != 3 || n.get(ResultStale) != 1 {
		t.Errorf("results %v", n.n)
	}
}
