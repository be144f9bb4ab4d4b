package node

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Fallbacks through a real edge: a dead upstream's requests go to the
// standby upstream, or get the static answer (through the route's response
// transform, with the request id), an upstream's 503 is replaced only where
// the route names it, its 404 never; each is counted, logged and tapped.
func TestFallbackThroughTheEdge(t *testing.T) {
	standby := newPartBackend(t, 0, func(r *http.Request) (int, string) { return 200, `{"from":"standby","path":"` + r.URL.Path + `"}` })
	flaky := newPartBackend(t, 0, func(r *http.Request) (int, string) {
		if strings.HasSuffix(r.URL.Path, "/missing") {
			return 404, `{"error":"no such payment"}`
		}
		return 503, `{"error":"maintenance"}`
	})
	dead := deadAddr(t)
	e := startEdge(t, fmt.Sprintf(`
listeners: [{name: http, address: "127.0.0.1:0"}]
upstreams:
  - {name: primary, endpoints: [{address: %q}]}
  - {name: standby, endpoints: [{address: %q}]}
  - {name: flaky, endpoints: [{address: %q}]}
routes:
  - name: to-standby
    match: {path: {prefix: /a}}
    upstream: primary
    rewrite: {strip_prefix: /a}
    fallback: {upstream: standby}
  - name: static
    match: {path: {prefix: /b}}
    upstream: primary
    transform:
      response:
        headers: {set: {X-Transformed: "yes"}}
    fallback:
      upstream: flaky
      on: [connect-failure, "503"]
      response:
        headers: {Retry-After: "30"}
        body: '{"status":"degraded","request_id":"{request_id}"}'
  - name: flaky
    match: {path: {prefix: /c}}
    upstream: flaky
    fallback:
      on: [5xx]
      response: {status: 200, body: '{"cached":true}'}
  - name: unnamed
    match: {path: {prefix: /d}}
    upstream: flaky
    fallback: {response: {body: "{}"}}
`, dead, standby.addr(), flaky.addr()))
	base := e.url("http")

	// The standby gets the request as the route sends it (rewritten).
	status, _, body := get(t, nil, "GET", base+"/a/orders/1", nil)
	if status != 200 || body != `{"from":"standby","path":"/orders/1"}` {
		t.Fatalf("standby: %d %s", status, body)
	}
	if l := accessLine(t, e, "to-standby"); l["fallback"] != "upstream" || l["fallback_reason"] != "connect_failed" || l["status"] != 200.0 {
		t.Errorf("access line %v", l)
	}

	// The primary is dead, the fallback upstream answers 503: the static
	// answer, through the route's response transform.
	status, hdr, body := get(t, nil, "GET", base+"/b/pay", map[string]string{"X-Request-Id": "rid-42"})
	if status != 503 || body != `{"status":"degraded","request_id":"rid-42"}` || hdr.Get("Retry-After") != "30" ||
		hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" || hdr.Get("X-Transformed") != "yes" {
		t.Fatalf("static: %d %v %s", status, hdr, body)
	}
	if l := accessLine(t, e, "static"); l["fallback"] != "response" || l["fallback_reason"] != "connect_failed" {
		t.Errorf("access line %v", l)
	}

	// An upstream's 503 where the route names 5xx; never its 404.
	if status, _, body = get(t, nil, "GET", base+"/c/pay", nil); status != 200 || body != `{"cached":true}` {
		t.Fatalf("5xx: %d %s", status, body)
	}
	if status, _, body = get(t, nil, "GET", base+"/c/missing", nil); status != 404 || !strings.Contains(body, "no such payment") {
		t.Fatalf("404: %d %s", status, body)
	}
	// By default only the edge's own failures call for it.
	if status, _, body = get(t, nil, "GET", base+"/d/pay", nil); status != 503 || !strings.Contains(body, "maintenance") {
		t.Fatalf("default on: %d %s", status, body)
	}

	for series, want := range map[string]float64{
		`meshgate_fallbacks_total{reason="connect_failed",route="to-standby",via="upstream"}`: 1,
		`meshgate_fallbacks_total{reason="connect_failed",route="static",via="response"}`:     1,
		`meshgate_fallbacks_total{reason="status_503",route="flaky",via="response"}`:          1,
	} {
		if got := metricValue(t, e.node, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := metricValue(t, e.node, `meshgate_fallbacks_total{reason="status_503",route="unnamed",via="response"}`); got != -1 {
		t.Errorf("unnamed route counted a fallback: %v", got)
	}
}
