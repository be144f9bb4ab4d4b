package node

import (
	"fmt"
	"net/http"
	"testing"
)

// With one of two endpoints dead, requests one at a time (the retry budget's
// floor is all that applies at such low concurrency) all succeed: a retry
// of a connect failure reached no upstream, and is not starved by the
// budget.
func TestConnectFailuresAreRetriedPastTheBudgetFloor(t *testing.T) {
	backend := echoBackend(t, "live")
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: b, retry: {attempts: 2, on: [connect-failure]}}]
upstreams:
  - name: b
    endpoints: [{address: %q}, {address: %q}]
    retry_budget: {percent: 20, min_per_second: 3}
`, deadAddr(t), addr(backend)))
	client := &http.Client{}
	failed := 0
	for range 200 {
		resp, err := client.Get(e.url("public") + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of 200 requests failed with one endpoint dead", failed)
	}
}
