package node

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHungEndpointRetriedElsewhere (issue 16): one of two endpoints takes
// requests and never answers (a hung host: kill -STOP keeps its connections
// open). With the route's defaults, an idempotent request sent to it gets a
// per-try timeout of a third of the route's timeout and is retried on the
// other endpoint: every GET succeeds. Before, each waited out the route's
// timeout and failed with 504. A POST is not retried (it may have been
// acted on) and still gets 504.
func TestHungEndpointRetriedElsewhere(t *testing.T) {
	hung, _, _ := stallingBackend(t)
	good := echoBackend(t, "good")
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: u, timeout: 1500ms}
upstreams:
  - {name: u, balancer: {policy: round_robin}, endpoints: [{address: %q}, {address: %q}]}
`, hung, addr(good)))
	for i := range 6 {
		start := time.Now()
		code, _, body := get(t, nil, "GET", e.url("public")+"/x", nil)
		if code != 200 || !strings.Contains(body, `"good"`) {
			t.Fatalf("GET %d: %d %s, want 200 from the good endpoint", i, code, body)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("GET %d took %v: past the default per-try timeout (500ms) and a retry", i, d)
		}
	}
	sawHung := false
	for range 4 {
		resp, err := http.Post(e.url("public")+"/x", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch code := resp.StatusCode; code {
		case 504:
			sawHung = true
		case 200:
		default:
			t.Fatalf("POST: %d, want 200 or 504", code)
		}
	}
	if !sawHung {
		t.Error("no POST reached the hung endpoint: the balancer skipped it (the test shows nothing)")
	}
}

// The default per-try timeout only cuts an attempt that a retry can
// follow: with every endpoint slow (700 ms, past the 500 ms default), the
// first attempt is cut and retried, and the last one waits for its answer
// within the route's timeout instead of becoming a 504.
func TestDefaultPerTryNeverCutsTheLastAttempt(t *testing.T) {
	slow := func() string {
		return echoBackendFunc(t, func(*http.Request) { time.Sleep(700 * time.Millisecond) })
	}
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u, timeout: 1500ms}]
upstreams: [{name: u, endpoints: [{address: %q}, {address: %q}, {address: %q}]}]
`, slow(), slow(), slow()))
	if code, _, body := get(t, nil, "GET", e.url("public")+"/x", nil); code != 200 {
		t.Fatalf("%d %s: want the second attempt's slow 200", code, body)
	}
}
