package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki/pkitest"
)

// countingBackend answers 200, or 500 to requests whose X-Node header is in
// failFor: a backend that only some nodes cannot reach properly.
func countingBackend(t *testing.T, failFor ...string) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		for _, n := range failFor {
			if r.Header.Get("X-Node") == n {
				http.Error(w, "broken for "+n, 500)
				return
			}
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// twoEdges starts edges a and b in one cluster, each with routeYAML (where
// {{node}} is the node's name, for a request header) and upstreamYAML.
func twoEdges(t *testing.T, routeYAML, upstreamYAML string) (a, b *edge) {
	ca := pkitest.NewCA(t, td)
	start := func(name, join string) *edge {
		return startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge-"+name))+fastCluster(join)+`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
`+strings.ReplaceAll(routeYAML, "{{node}}", name)+upstreamYAML)
	}
	a = start("a", "")
	b = start("b", a.node.Cluster().Addr())
	eventually(t, 10*time.Second, "the edges see each other", func() bool { return a.node.Cluster().Peers() == 1 && b.node.Cluster().Peers() == 1 })
	return a, b
}

// A route limit holds across the cluster: requests alternating between two
// edges are admitted up to the limit in total, the rest get 429 with
// Retry-After and RateLimit headers, and never reach the backend.
func TestRateLimitIsClusterWide(t *testing.T) {
	backend, hits := countingBackend(t)
	a, b := twoEdges(t, `
routes:
  - name: api
    match: {path: {prefix: /}}
    upstream: u
    rate_limit: {requests: 10, window: 1m}
`, fmt.Sprintf("upstreams: [{name: u, endpoints: [{address: %q}]}]\n", addr(backend)))

	admitted, limited := 0, 0
	var last http.Header
	for i := 0; i < 30; i++ {
		e := a
		if i%2 == 1 {
			e = b
		}
		code, h, body := get(t, nil, "GET", e.url("public")+"/x", nil)
		switch code {
		case 200:
			admitted++
		case 429:
			limited++
			last = h
			if !strings.Contains(body, "rate limited") {
				t.Fatalf("429 body %q", body)
			}
		default:
			t.Fatalf("status %d %s", code, body)
		}
		// Each edge decides on its own count and the peer's gossiped one:
		// once both have every admission, the next decision is the
		// cluster's. (A burst faster than gossip is issue 19's; this test
		// is about the counts being shared at all.)
		// (Agreeing, not equal to admitted: a minute boundary starts both
		// over.)
		eventually(t, 10*time.Second, "both edges count every admission", func() bool {
			return clusterCount(a.node, "api") == clusterCount(b.node, "api")
		})
	}
	// 10, or 11 if a minute boundary passed: the sliding window's estimate
	// then weighs the previous window's 10 less and less.
	if admitted < 10 || admitted > 11 {
		t.Fatalf("admitted %d of 30 with a cluster-wide limit of 10 (limited %d)", admitted, limited)
	}
	if int(hits.Load()) != admitted {
		t.Fatalf("backend saw %d requests, %d admitted: refused requests must not reach it", hits.Load(), admitted)
	}
	if last.Get("Retry-After") == "" || last.Get("RateLimit-Limit") != "10" || last.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("429 headers: %v", last)
	}
	if got := metricValue(t, a.node, `meshgate_ratelimit_decisions_total{result="limited",route="api"}`); got < 1 {
		t.Fatalf("limited decisions on a: %v", got)
	}
}

// A breaker opened by failures on one edge: with quorum 1 the other edge
// adopts it at once and stops sending; with the default quorum of 2 one
// reporter is not enough, so the healthy path of the other edge keeps
// working (one node's trouble does not black-hole the endpoint).
func TestBreakerSharedAcrossTheCluster(t *testing.T) {
	for _, tc := range []struct {
		quorum      int
		bAdoptsOpen bool
		description string
	}{
		{1, true, "one report opens the peer's breaker"},
		{2, false, "a lone report without local evidence does not"},
	} {
		t.Run(fmt.Sprintf("quorum=%d", tc.quorum), func(t *testing.T) {
			backend, hits := countingBackend(t, "a") // broken for edge a only
			a, b := twoEdges(t, `
routes:
  - name: api
    match: {path: {prefix: /}}
    upstream: u
    request_headers: {set: {X-Node: "{{node}}"}}
`, fmt.Sprintf(`upstreams:
  - name: u
    endpoints: [{address: %q}]
    breaker: {consecutive_failures: 3, open_timeout: 30s, quorum: %d}
`, addr(backend), tc.quorum))

			for i := 0; i < 3; i++ {
				if code, _, _ := get(t, nil, "GET", a.url("public")+"/x", nil); code != 500 {
					t.Fatalf("a: request %d: %d, want the backend's 500", i, code)
				}
			}
			before := hits.Load()
			if code, _, body := get(t, nil, "GET", a.url("public")+"/x", nil); code != 503 || !strings.Contains(body, "circuit open") {
				t.Fatalf("a after 3 failures: %d %q, want 503 circuit open", code, body)
			}
			if hits.Load() != before {
				t.Fatal("an open breaker let a request through to the backend")
			}
			if tc.bAdoptsOpen {
				eventually(t, 3*time.Second, "b adopts the open breaker", func() bool {
					code, _, _ := get(t, nil, "GET", b.url("public")+"/x", nil)
					return code == 503
				})
				return
			}
			// Once a's report has reached b, b must still get through.
			eventually(t, 5*time.Second, "b receives a's report", func() bool {
				return b.node.breakers.Stats().ReportsReceived >= 1
			})
			for i := 0; i < 5; i++ {
				if code, _, body := get(t, nil, "GET", b.url("public")+"/x", nil); code != 200 {
					t.Fatalf("b (%s): %d %q", tc.description, code, body)
				}
			}
			if got := metricValue(t, b.node, `meshgate_breaker_reports_total{kind="received"}`); got < 1 {
				t.Fatalf("b received no breaker report (%v): the test would prove nothing", got)
			}
		})
	}
}

// metricValue is the value of one series (name{labels} as exposed, labels
// sorted by name) in n's metrics; -1 when absent.
func metricValue(t *testing.T, n *Node, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	n.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// clusterCount is the node's count of policy's admissions in the current
// window, its own and its peers' (the sum over the policy's keys).
func clusterCount(n *Node, policy string) int64 {
	var c int64
	for _, k := range n.limits.List() {
		if k.Policy == policy {
			c += k.Cluster
		}
	}
	return c
}
