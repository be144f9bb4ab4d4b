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

// splitConfig is an edge whose route "canary" splits between upstreams v1
// (backend a) and v2 (backend b) with the given weights, or, with route set,
// uses that route body instead.
func splitConfig(a, b string, route string) string {
	return fmt.Sprintf(`
log: {access: stdout}
listeners:
  - {name: public, address: "127.0.0.1:0"}
routes:
  - name: canary
    match: {path: {prefix: /}}
%s
upstreams:
  - {name: v1, endpoints: [{address: %q}]}
  - {name: v2, endpoints: [{address: %q}]}
`, route, a, b)
}

func splitWeights(w1, w2 int) string {
	return fmt.Sprintf("    split:\n      - {upstream: v1, weight: %d}\n      - {upstream: v2, weight: %d}\n", w1, w2)
}

// splitSend makes n GETs from 8 goroutines and counts them by the name of the
// backend that answered.
func splitSend(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	counts := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Get(url)
				if err != nil {
					t.Errorf("GET: %v", err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var s seen
				if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil {
					t.Errorf("status %d, body %q", resp.StatusCode, body)
					return
				}
				mu.Lock()
				counts[s.Name]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return counts
}

// splitLogged reads n access log lines and counts them by upstream endpoint,
// checking that each names the route.
func splitLogged(t *testing.T, e *edge, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case l := <-e.accessLines:
			var m struct{ Route, Upstream string }
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			if m.Route != "canary" {
				t.Fatalf("access log line of route %q, want canary: %s", m.Route, l)
			}
			counts[m.Upstream]++
		case <-deadline:
			t.Fatalf("got %d of %d access log lines", i, n)
		}
	}
	return counts
}

// TestSplitShiftsTraffic is `meshctl traffic shift` on one node: 10,000
// requests through a 90/10 split, then a reload to 0/100, then back to a
// single upstream.
func TestSplitShiftsTraffic(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	e := startEdge(t, splitConfig(addr(a), addr(b), splitWeights(90, 10)))
	url := e.url("public") + "/orders"

	const n = 10_000
	got := splitSend(t, url, n)
	share := 100 * float64(got["b"]) / n
	if got["a"]+got["b"] != n || share < 8 || share > 12 {
		t.Fatalf("90/10 split gave %v (v2 share %.2f%%), want 10 ± 2 points", got, share)
	}
	// Smooth weighted round robin is exact over whole periods (9+1 here),
	// whatever the concurrency and the starting position.
	if got["a"] != 9000 || got["b"] != 1000 {
		t.Errorf("90/10 split gave %v, want exactly 9000/1000", got)
	}
	// The access log keeps the route's name and records the endpoint of
	// the upstream each request went to.
	if lines := splitLogged(t, e, n); lines[addr(a)] != 9000 || lines[addr(b)] != 1000 {
		t.Errorf("access log upstreams %v, want %s: 9000, %s: 1000", lines, addr(a), addr(b))
	}

	// The shift's last step: everything to v2.
	e.write(splitConfig(addr(a), addr(b), splitWeights(0, 100)))
	if err := e.node.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := splitSend(t, url, 1000); got["b"] != 1000 {
		t.Fatalf("0/100 split gave %v, want every request on b", got)
	}
	splitLogged(t, e, 1000)

	// A split naming an upstream the node lacks is rejected with its
	// position; 0/100 keeps serving.
	e.write(splitConfig(addr(a), addr(b), "    split:\n      - {upstream: v2, weight: 50}\n      - {upstream: v9, weight: 50}\n"))
	err := e.node.Reload()
	if err == nil || !strings.Contains(err.Error(), `edge.yaml:10:20: route "canary": unknown upstream "v9" in split`) {
		t.Fatalf("reload with an unknown upstream in the split: %v", err)
	}
	if got := splitSend(t, url, 100); got["b"] != 100 {
		t.Fatalf("after a rejected reload: %v, want every request on b", got)
	}
	splitLogged(t, e, 100)

	// From a split back to a single upstream, and to a split again.
	e.write(splitConfig(addr(a), addr(b), "    upstream: v1\n"))
	if err := e.node.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := splitSend(t, url, 100); got["a"] != 100 {
		t.Fatalf("upstream v1 gave %v", got)
	}
	splitLogged(t, e, 100)
	e.write(splitConfig(addr(a), addr(b), splitWeights(1, 1)))
	if err := e.node.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := splitSend(t, url, 100); got["a"] != 50 || got["b"] != 50 {
		t.Fatalf("1/1 split gave %v, want 50/50", got)
	}
}

// BenchmarkEdgeSplit is BenchmarkEdgeProxy through a 90/10 split of two
// backends: compare its allocs/op with BenchmarkEdgeProxy's (the pick adds
// none).
func BenchmarkEdgeSplit(b *testing.B) {
	body := strings.Repeat("x", 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		_, _ = io.WriteString(w, body)
	})
	b1, b2 := httptest.NewServer(h), httptest.NewServer(h)
	defer b1.Close()
	defer b2.Close()
	t := &testing.T{}
	e := startEdgeB(b, t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: r
    match: {path: {prefix: /}}
    split: [{upstream: v1, weight: 90}, {upstream: v2, weight: 10}]
upstreams:
  - {name: v1, protocol: http1, endpoints: [{address: %q}]}
  - {name: v2, protocol: http1, endpoints: [{address: %q}]}
`, addr(b1), addr(b2)))
	benchGets(b, e)
}
