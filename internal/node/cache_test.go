package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
