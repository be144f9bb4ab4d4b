package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func lbConfig(policy string, addrs ...string) string {
	eps := ""
	for _, a := range addrs {
		eps += fmt.Sprintf("      - {address: %q}\n", a)
	}
	return fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams:
  - name: u
    balancer: %s
    endpoints:
%s`, policy, eps)
}

func names(t *testing.T, base string, n int, hdr map[string]string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		status, _, body := get(t, nil, "GET", base+"/", hdr)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		got[decode(t, body).Name]++
	}
	return got
}

func TestRoundRobinThroughEdge(t *testing.T) {
	a, b, c := echoBackend(t, "a"), echoBackend(t, "b"), echoBackend(t, "c")
	e := startEdge(t, lbConfig("{policy: round_robin}", addr(a), addr(b), addr(c)))
	got := names(t, e.url("public"), 30, nil)
	if got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Fatalf("round robin spread %v", got)
	}
}

func TestConsistentHashThroughEdge(t *testing.T) {
	a, b, c := echoBackend(t, "a"), echoBackend(t, "b"), echoBackend(t, "c")
	e := startEdge(t, lbConfig("{policy: consistent_hash, hash_on: {header: X-User}}", addr(a), addr(b), addr(c)))
	seen := map[string]bool{}
	for u := 0; u < 20; u++ {
		hdr := map[string]string{"X-User": fmt.Sprintf("user-%d", u)}
		got := names(t, e.url("public"), 5, hdr)
		if len(got) != 1 {
			t.Fatalf("user %d spread over %v", u, got)
		}
		for k := range got {
			seen[k] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("20 users all on %v", seen)
	}
}

func TestLeastRequestAvoidsSlowEndpoint(t *testing.T) {
	fast := echoBackend(t, "fast")
	slow := echoBackend(t, "slow")
	inner := slow.Config.Handler
	slow.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		inner.ServeHTTP(w, r)
	})
	e := startEdge(t, lbConfig("{policy: least_request}", addr(fast), addr(slow)))
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				resp, err := http.Get(e.url("public") + "/")
				if err != nil {
					t.Error(err)
					return
				}
				var s seen
				_ = json.NewDecoder(resp.Body).Decode(&s)
				resp.Body.Close()
				mu.Lock()
				got[s.Name]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got["slow"]*4 > got["fast"] {
		t.Fatalf("slow endpoint got too much: %v", got)
	}
}

func TestActiveHealthCheckRemovesEndpoint(t *testing.T) {
	a := echoBackend(t, "a")
	var bHealthy atomic.Bool
	bHealthy.Store(true)
	b := echoBackend(t, "b")
	inner := b.Config.Handler
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !bHealthy.Load() {
			w.WriteHeader(503)
			return
		}
		inner.ServeHTTP(w, r)
	})
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams:
  - name: u
    endpoints: [{address: %q}, {address: %q}]
    health_check: {path: /healthz, interval: 20ms, timeout: 10ms, healthy_threshold: 1, unhealthy_threshold: 2}
`, addr(a), addr(b)))
	bHealthy.Store(false)
	eventually(t, 5*time.Second, "b marked unhealthy", func() bool {
		return strings.Contains(scrape(t, e), `meshgate_upstream_endpoint_healthy{endpoint="`+addr(b)+`",upstream="u"} 0`)
	})
	if got := names(t, e.url("public"), 10, nil); got["b"] != 0 {
		t.Fatalf("unhealthy endpoint still chosen: %v", got)
	}
	bHealthy.Store(true)
	eventually(t, 5*time.Second, "b back", func() bool { return names(t, e.url("public"), 4, nil)["b"] > 0 })
}

func TestOutlierEjection(t *testing.T) {
	a := echoBackend(t, "a")
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer bad.Close()
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u, retry: {attempts: 1}}]
upstreams:
  - name: u
    endpoints: [{address: %q}, {address: %q}]
    outlier: {consecutive_5xx: 3, base_ejection: 1m}
`, addr(a), addr(bad)))
	fails := 0
	for i := 0; i < 20; i++ {
		status, _, _ := get(t, nil, "GET", e.url("public")+"/", nil)
		if status == 500 {
			fails++
		}
	}
	if fails != 3 {
		t.Fatalf("%d failures reached the client; want exactly 3 before ejection", fails)
	}
	if !strings.Contains(scrape(t, e), `meshgate_upstream_endpoint_ejected{endpoint="`+addr(bad)+`",upstream="u"} 1`) {
		t.Fatal("ejection not in metrics")
	}
}

func TestConnectionLimits503(t *testing.T) {
	release := make(chan struct{})
	var inflight atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		<-release
		_, _ = w.Write([]byte("ok"))
	}))
	defer slow.Close()
	defer close(release)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams:
  - {name: u, endpoints: [{address: %q}], max_connections: 2, max_pending: 1}
`, addr(slow)))
	for i := 0; i < 3; i++ { // 2 in flight + 1 pending
		go func() {
			resp, err := http.Get(e.url("public") + "/")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	eventually(t, 5*time.Second, "two requests at the backend", func() bool { return inflight.Load() == 2 })
	eventually(t, 5*time.Second, "the third request queued", func() bool {
		e.node.mu.Lock()
		defer e.node.mu.Unlock()
		return e.node.clusters["u"].cluster.Upstream.Queued() == 1
	})
	status, _, body := get(t, nil, "GET", e.url("public")+"/", nil)
	if status != 503 || !strings.Contains(body, "overloaded") {
		t.Fatalf("over the limit: %d %s", status, body)
	}
}

func scrape(t *testing.T, e *edge) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.node.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// An endpoint that leaves its upstream (a reload here; discovery works the
// same way) leaves the endpoint gauges too: a scrape must not report a
// removed endpoint as healthy. One that stays keeps its series.
func TestRemovedEndpointLeavesTheGauges(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	cfg := `
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams:
  - {name: u, endpoints: [%s]}
`
	e := startEdge(t, fmt.Sprintf(cfg, fmt.Sprintf("{address: %q}, {address: %q}", addr(a), addr(b))))
	series := func(ep, gauge string) string {
		return fmt.Sprintf(`meshgate_upstream_endpoint_%s{endpoint=%q,upstream="u"}`, gauge, ep)
	}
	if v := metricValue(t, e.node, series(addr(b), "healthy")); v != 1 {
		t.Fatalf("b's health gauge is %v before the reload, want 1", v)
	}
	e.write(fmt.Sprintf(cfg, fmt.Sprintf("{address: %q}", addr(a))))
	if err := e.node.Reload(); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, e.node, series(addr(b), "healthy")); v != -1 {
		t.Errorf("removed endpoint b still exported as %v", v)
	}
	if v := metricValue(t, e.node, series(addr(b), "ejected")); v != -1 {
		t.Errorf("b's ejected gauge still exported: %v", v)
	}
	if v := metricValue(t, e.node, series(addr(a), "healthy")); v != 1 {
		t.Errorf("a's health gauge is %v after the reload, want 1", v)
	}
}
