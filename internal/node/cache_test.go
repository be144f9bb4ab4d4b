package node

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cache through a real edge: a response with max-age is stored on the
// first request and answers the second with Cache-Status and Age, without
// the upstream; a POST to the URI invalidates it; counts and bytes show in
// the metrics.
func TestCacheThroughTheEdge(t *testing.T) {
	var calls atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "page %d", n)
	}))
	t.Cleanup(origin.Close)
	e := startEdge(t, fmt.Sprintf(`
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams: [{name: pages, endpoints: [{address: %q}]}]
cache: {max_bytes: 1MiB}
routes:
  - name: pages
    match: {path: {prefix: /pages}}
    upstream: pages
    cache: {max_body: 64KiB}
`, addr(origin)))
	base := e.url("http")

	status, hdr, body := get(t, nil, "GET", base+"/pages/1", nil)
	if status != 200 || body != "page 1" || hdr.Get("Cache-Status") != "meshgate; fwd=uri-miss; fwd-status=200; stored" {
		t.Fatalf("first: %d %q %v", status, body, hdr)
	}
	status, hdr, body = get(t, nil, "GET", base+"/pages/1", nil)
	if status != 200 || body != "page 1" || !strings.HasPrefix(hdr.Get("Cache-Status"), "meshgate; hit; ttl=") || hdr.Get("Age") != "0" {
		t.Fatalf("second: %d %q %v", status, body, hdr)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("origin called %d times, want 1", n)
	}
	if v := metricValue(t, e.node, `meshgate_cache_requests_total{result="hit",route="pages"}`); v != 1 {
		t.Errorf("hits = %v", v)
	}
	if v := metricValue(t, e.node, `meshgate_cache_stored_bytes{route="pages"}`); v <= 0 {
		t.Errorf("stored bytes = %v", v)
	}

	if status, _, _ := get(t, nil, "POST", base+"/pages/1", nil); status != http.StatusNoContent {
		t.Fatalf("post: %d", status)
	}
	if v := metricValue(t, e.node, `meshgate_cache_evictions_total{reason="purged",route="pages"}`); v != 1 {
		t.Errorf("purged = %v", v)
	}
	status, hdr, body = get(t, nil, "GET", base+"/pages/1", nil)
	if status != 200 || body != "page 3" || hdr.Get("Cache-Status") != "meshgate; fwd=uri-miss; fwd-status=200; stored" {
		t.Fatalf("after the post: %d %q %v", status, body, hdr)
	}
}

// Reloads under load keep or drop what is stored as docs/config.md says —
// a route's new cache settings keep its entries, a new cache.max_bytes
// starts an empty store, a route without cache passes everything through —
// and no request fails on the way.
func TestCacheReloadKeepsOrDropsEntries(t *testing.T) {
	var calls atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	conf := func(maxBytes, routeCache string) string {
		return fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams: [{name: pages, endpoints: [{address: %q}]}]
cache: {max_bytes: %s}
routes:
  - name: pages
    match: {path: {prefix: /pages}}
    upstream: pages
%s`, addr(origin), maxBytes, routeCache)
	}
	e := startEdge(t, conf("1MiB", "    cache: {max_body: 64KiB}\n"))
	base := e.url("http")
	status := func(path string) string {
		t.Helper()
		code, hdr, body := get(t, nil, "GET", base+path, nil)
		if code != 200 || body != "page "+path {
			t.Fatalf("%s: %d %q", path, code, body)
		}
		return hdr.Get("Cache-Status")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for n := 0; ctx.Err() == nil; n++ {
				path := fmt.Sprintf("/pages/load-%d", (n+i)%8)
				resp, err := c.Get(base + path)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || string(b) != "page "+path) {
						err = fmt.Errorf("%s: %d %q", path, resp.StatusCode, b)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	reload := func(y string) {
		t.Helper()
		e.write(y)
		if err := e.node.Reload(); err != nil {
			t.Fatal(err)
		}
	}

	status("/pages/kept")
	// The route's own settings change: what it stored stays.
	reload(conf("1MiB", "    cache: {max_body: 32KiB, ttl: 5s}\n"))
	if cs := status("/pages/kept"); !strings.HasPrefix(cs, "meshgate; hit") {
		t.Fatalf("after a route's cache settings changed: %q", cs)
	}
	// A new store size: a new, empty store.
	reload(conf("2MiB", "    cache: {max_body: 32KiB}\n"))
	if cs := status("/pages/kept"); cs != "meshgate; fwd=uri-miss; fwd-status=200; stored" {
		t.Fatalf("after max_bytes changed: %q", cs)
	}
	// The route stops caching: straight through, no Cache-Status.
	reload(conf("2MiB", ""))
	before := calls.Load()
	if cs := status("/pages/kept"); cs != "" || calls.Load() == before {
		t.Fatalf("without cache: %q, origin calls %d → %d", cs, before, calls.Load())
	}
	// And back: the store of that size was dropped with its last route.
	reload(conf("2MiB", "    cache: {max_body: 32KiB}\n"))
	if cs := status("/pages/kept"); cs != "meshgate; fwd=uri-miss; fwd-status=200; stored" {
		t.Fatalf("caching again: %q", cs)
	}
	for i := range 20 { // reloads under load, alternating the store's size
		reload(conf([]string{"1MiB", "2MiB"}[i%2], "    cache: {max_body: 32KiB}\n"))
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("%d requests during the reloads, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed, first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() < 50 {
		t.Fatalf("only %d requests made", ok.Load())
	}
}

// The binaries size the memory limit from the cache the routes may fill,
// told after every configuration that applied.
func TestCacheSizeSetsTheMemoryLimit(t *testing.T) {
	var mu sync.Mutex
	var told []int64
	conf := func(routeCache string) string {
		return fmt.Sprintf(`
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:1"}]}]
cache: {max_bytes: 8MiB}
routes:
  - name: r
    match: {path: {prefix: /}}
    upstream: u
%s`, routeCache)
	}
	e := startNode(t, t, conf("    cache: {}\n"), Options{OnCacheSize: func(n int64) {
		mu.Lock()
		told = append(told, n)
		mu.Unlock()
	}})
	e.write(conf(""))
	if err := e.node.Reload(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(told) != fmt.Sprint([]int64{8 << 20, 0}) {
		t.Fatalf("told %v, want [8 MiB, 0]", told)
	}
	edge := EdgeRuntime
	if got := edge.memoryLimit(64 << 20); got != 192<<20 {
		t.Errorf("edge with a 64 MiB cache: limit %d MiB, want 192", got>>20)
	}
	if got := edge.memoryLimit(0); got != math.MaxInt64 {
		t.Errorf("edge without a cache: limit %d, want none", got)
	}
	if got := SidecarRuntime.memoryLimit(0); got != SidecarRuntime.MemoryLimit {
		t.Errorf("sidecar without a cache: limit %d, want its own", got)
	}
}
