package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
	sdktracetest "go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// partRequest is a request a composite's backend received.
type partRequest struct {
	at      time.Time // when it arrived
	path    string    // r.URL.Path, decoded
	escaped string    // r.URL.EscapedPath(), as sent
	query   string    // r.URL.RawQuery
	header  http.Header
}

// partBackend is a loopback backend of composite tests: it records every
// request, waits delay (or until the request is cancelled), then answers
// what answer says, as JSON.
type partBackend struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []partRequest
	// answered is when the last answer was about to be written.
	answered time.Time
}

func newPartBackend(t *testing.T, delay time.Duration, answer func(r *http.Request) (int, string)) *partBackend {
	t.Helper()
	b := &partBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.got = append(b.got, partRequest{at: time.Now(), path: r.URL.Path, escaped: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header.Clone()})
		b.mu.Unlock()
		if delay > 0 {
			tm := time.NewTimer(delay)
			defer tm.Stop()
			select {
			case <-tm.C:
			case <-r.Context().Done():
				return
			}
		}
		status, body := answer(r)
		b.mu.Lock()
		b.answered = time.Now()
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *partBackend) addr() string { return addr(b.srv) }

// requests returns the requests received so far.
func (b *partBackend) requests() []partRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

func (b *partBackend) lastAnswer() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.answered
}

// fixed answers 200 with body.
func fixed(body string) func(*http.Request) (int, string) {
	return func(*http.Request) (int, string) { return 200, body }
}

// sameJSON fails unless got and want are the same JSON document.
func sameJSON(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("%s: not JSON: %q", what, got)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %q", what, want)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s: got %s\nwant %s", what, gb, wb)
	}
}

// aggCalls is the value of meshgate_aggregate_calls_total for one call
// and result (-1: no such series).
func aggCalls(t *testing.T, n *Node, route, call, result string) float64 {
	t.Helper()
	return metricValue(t, n, fmt.Sprintf(`meshgate_aggregate_calls_total{call=%q,result=%q,route=%q}`, call, result, route))
}

// accessLine waits for the next access log line of route and decodes it.
func accessLine(t *testing.T, e *edge, route string) map[string]any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l := <-e.accessLines:
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("access log line not JSON: %q", l)
			}
			if m["route"] == route {
				return m
			}
		case <-deadline:
			t.Fatalf("no access log line of route %s", route)
		}
	}
}

// Composites through a real edge: three 50 ms calls answer in one 50 ms
// (parallel), a dependent call waits for the call it reads and gets its
// value, an optional part's failure is a 200 naming it, a required one's a
// 502 naming it; calls and partial answers are counted, and the access log
// names no single upstream.
func TestCompositeThroughTheEdge(t *testing.T) {
	const delay = 50 * time.Millisecond
	items := newPartBackend(t, delay, func(r *http.Request) (int, string) {
		if r.URL.Path == "/items/gone" {
			return 503, `{"error":"unavailable"}`
		}
		return 200, `{"sku":"a1","name":"Desk"}`
	})
	prices := newPartBackend(t, delay, fixed(`{"amount":"199.00"}`))
	stock := newPartBackend(t, delay, fixed(`{"available":7}`))
	users := newPartBackend(t, 20*time.Millisecond, fixed(`{"id":"u-7","name":"Ada"}`))
	orders := newPartBackend(t, 0, fixed(`[{"order":1},{"order":2}]`))
	reviews := newPartBackend(t, 0, func(r *http.Request) (int, string) {
		if r.URL.Path == "/reviews/bad" {
			return 503, `{}`
		}
		return 200, `[{"stars":5}]`
	})
	e := startEdge(t, fmt.Sprintf(`
log: {access: stdout}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: items, endpoints: [{address: %q}]}
  - {name: prices, endpoints: [{address: %q}]}
  - {name: stock, endpoints: [{address: %q}]}
  - {name: users, endpoints: [{address: %q}]}
  - {name: orders, endpoints: [{address: %q}]}
  - {name: reviews, endpoints: [{address: %q}]}
routes:
  - name: trio
    match: {path: {template: "/trio/{id}"}, methods: [GET]}
    aggregate:
      calls:
        - {name: item, upstream: items, path: "/items/{path.id}"}
        - {name: price, upstream: prices, path: "/prices/{path.id}"}
        - {name: stock, upstream: stock, path: "/stock/{path.id}"}
  - name: profile
    match: {path: {template: "/profile/{login}"}, methods: [GET]}
    aggregate:
      calls:
        - {name: user, upstream: users, path: "/users/by-login/{path.login}"}
        - {name: orders, upstream: orders, path: "/users/{call.user.id}/orders"}
  - name: product
    match: {path: {template: "/products/{id}"}, methods: [GET]}
    aggregate:
      calls:
        - {name: item, upstream: items, path: "/items/{path.id}"}
        - {name: reviews, upstream: reviews, path: "/reviews/{path.id}", optional: true}
`, items.addr(), prices.addr(), stock.addr(), users.addr(), orders.addr(), reviews.addr()))
	base := e.url("public")

	// Parallel: three calls of 50 ms each in about 50 ms, not 150. The
	// first request opens the connections; the median of the next three is
	// measured, under 100 ms (a sequential fan-out takes at least 150).
	code, hdr, body := get(t, nil, "GET", base+"/trio/42", nil)
	if code != 200 {
		t.Fatalf("trio: %d %s", code, body)
	}
	sameJSON(t, "trio", body, `{"item":{"sku":"a1","name":"Desk"},"price":{"amount":"199.00"},"stock":{"available":7}}`)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("trio: Content-Type %q", ct)
	}
	if p := hdr.Get("Meshgate-Partial"); p != "" {
		t.Errorf("trio: Meshgate-Partial %q on a whole answer", p)
	}
	var took []time.Duration
	for range 3 {
		start := time.Now()
		code, _, body := get(t, nil, "GET", base+"/trio/42", nil)
		took = append(took, time.Since(start))
		if code != 200 {
			t.Fatalf("trio: %d %s", code, body)
		}
	}
	slices.Sort(took)
	t.Logf("three parallel 50ms calls answered in %v", took)
	if took[1] >= 100*time.Millisecond || took[1] < delay {
		t.Errorf("a composite of three 50ms calls took %v (median of %v), want 50ms..100ms", took[1], took)
	}
	for _, b := range []*partBackend{items, prices, stock} {
		if got := b.requests(); len(got) != 4 || !strings.HasSuffix(got[3].path, "/42") {
			t.Errorf("backend got %d requests (%+v), want 4 ending in /42", len(got), got)
		}
	}
	// The access log's upstream is the endpoint of the last attempt: a
	// composite has none of its own (its upstream label, "(aggregate)", is
	// checked on its server span in TestCompositeTraceShowsFanOut).
	if l := accessLine(t, e, "trio"); l["upstream"] != "" || l["attempts"] != float64(0) || l["status"] != float64(200) {
		t.Errorf("access log of a composite: upstream %v, attempts %v, status %v; want none, 0, 200: %v", l["upstream"], l["attempts"], l["status"], l)
	}

	// A dependent call is made after the call it reads has answered, with
	// the value it read (the user's id, not the login of the path).
	code, _, body = get(t, nil, "GET", base+"/profile/ada", nil)
	if code != 200 {
		t.Fatalf("profile: %d %s", code, body)
	}
	sameJSON(t, "profile", body, `{"user":{"id":"u-7","name":"Ada"},"orders":[{"order":1},{"order":2}]}`)
	u, o := users.requests(), orders.requests()
	if len(u) != 1 || u[0].path != "/users/by-login/ada" || len(o) != 1 || o[0].path != "/users/u-7/orders" {
		t.Fatalf("users got %+v, orders got %+v", u, o)
	}
	if answered := users.lastAnswer(); !o[0].at.After(answered) {
		t.Errorf("orders called at %v, before user answered at %v", o[0].at.Format(time.StampMicro), answered.Format(time.StampMicro))
	}

	// An optional part fails: 200, named, left out.
	code, hdr, body = get(t, nil, "GET", base+"/products/bad", nil)
	if code != 200 || hdr.Get("Meshgate-Partial") != "reviews" {
		t.Fatalf("optional part failed: %d, Meshgate-Partial %q: %s", code, hdr.Get("Meshgate-Partial"), body)
	}
	sameJSON(t, "partial", body, `{"item":{"sku":"a1","name":"Desk"}}`)
	if cc := hdr.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("partial answer: Cache-Control %q, want no-store", cc)
	}
	code, hdr, body = get(t, nil, "GET", base+"/products/1", nil)
	if code != 200 || hdr.Get("Meshgate-Partial") != "" {
		t.Fatalf("whole product: %d, Meshgate-Partial %q: %s", code, hdr.Get("Meshgate-Partial"), body)
	}
	sameJSON(t, "product", body, `{"item":{"sku":"a1","name":"Desk"},"reviews":[{"stars":5}]}`)

	// A required part fails: 502 aggregate_call_failed, naming the call and
	// why, never its body.
	code, _, body = get(t, nil, "GET", base+"/products/gone", nil)
	var eb struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &eb); err != nil || code != 502 || eb.Status != 502 ||
		eb.Error != "aggregate: call item failed: status 503" {
		t.Errorf("required part failed: %d %s", code, body)
	}
	if strings.Contains(body, "unavailable") {
		t.Errorf("the failed call's body reached the client: %s", body)
	}

	// Counted by route, call and result.
	for _, c := range []struct {
		route, call, result string
		want                float64
	}{
		{"trio", "item", "ok", 4}, {"trio", "price", "ok", 4}, {"trio", "stock", "ok", 4},
		{"profile", "user", "ok", 1}, {"profile", "orders", "ok", 1},
		{"product", "item", "ok", 2}, {"product", "item", "failed", 1},
		{"product", "reviews", "failed", 1},
	} {
		if got := aggCalls(t, e.node, c.route, c.call, c.result); got != c.want {
			t.Errorf("meshgate_aggregate_calls_total{route=%s,call=%s,result=%s} = %v, want %v", c.route, c.call, c.result, got, c.want)
		}
	}
	if n := metricValue(t, e.node, `meshgate_aggregate_partial_total{route="product"}`); n != 1 {
		t.Errorf("partial answers of product counted %v, want 1", n)
	}
	if n := metricValue(t, e.node, `meshgate_aggregate_partial_total{route="trio"}`); n > 0 {
		t.Errorf("partial answers of trio counted %v, want none", n)
	}
}

// A call goes through its upstream's breaker and its own retry policy: a
// failing optional part opens the breaker after 3 failures and then fails
// fast ("circuit open") without reaching its backend, the composite still
// answering 200; a part whose backend answers 503 once is retried and the
// composite succeeds.
func TestCompositeBreakerAndRetryPerPart(t *testing.T) {
	base := newPartBackend(t, 0, fixed(`{"ok":true}`))
	flaky := newPartBackend(t, 0, func(*http.Request) (int, string) { return 500, `{}` })
	var attempts atomic.Int64
	retried := newPartBackend(t, 0, func(*http.Request) (int, string) {
		if attempts.Add(1)%2 == 1 {
			return 503, `{}`
		}
		return 200, `{"second":true}`
	})
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: base, endpoints: [{address: %q}]}
  - name: flaky
    endpoints: [{address: %q}]
    breaker: {consecutive_failures: 3, open_timeout: 1m}
  - {name: retried, endpoints: [{address: %q}]}
routes:
  - name: page
    match: {path: {exact: /page}}
    aggregate:
      calls:
        - {name: base, upstream: base, path: /base, retry: {attempts: 1}}
        - {name: extra, upstream: flaky, path: /extra, optional: true, retry: {attempts: 1}}
  - name: strict
    match: {path: {exact: /strict}}
    aggregate:
      calls:
        - {name: base, upstream: base, path: /base, retry: {attempts: 1}}
        - {name: extra, upstream: flaky, path: /extra, retry: {attempts: 1}}
  - name: retrying
    match: {path: {exact: /retrying}}
    aggregate:
      calls:
        - {name: base, upstream: base, path: /base}
        - {name: again, upstream: retried, path: /again, retry: {attempts: 2, on: ["503"]}}
`, base.addr(), flaky.addr(), retried.addr()))
	url := e.url("public")

	// Three failures (each a 200 without the optional part) open the
	// breaker.
	for i := range 3 {
		code, hdr, body := get(t, nil, "GET", url+"/page", nil)
		if code != 200 || hdr.Get("Meshgate-Partial") != "extra" {
			t.Fatalf("request %d: %d, Meshgate-Partial %q: %s", i+1, code, hdr.Get("Meshgate-Partial"), body)
		}
		sameJSON(t, "page", body, `{"base":{"ok":true}}`)
	}
	if n := len(flaky.requests()); n != 3 {
		t.Fatalf("the failing backend got %d requests, want 3 (retry attempts: 1)", n)
	}
	// Open: the part fails fast without reaching its backend; the
	// composite still answers 200 without it.
	for range 3 {
		start := time.Now()
		code, hdr, body := get(t, nil, "GET", url+"/page", nil)
		if code != 200 || hdr.Get("Meshgate-Partial") != "extra" {
			t.Fatalf("breaker open: %d, Meshgate-Partial %q: %s", code, hdr.Get("Meshgate-Partial"), body)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("breaker open: the composite took %v", d)
		}
	}
	// The reason, as a required part shows it.
	code, _, body := get(t, nil, "GET", url+"/strict", nil)
	if code != 502 || !strings.Contains(body, "aggregate: call extra failed: circuit open") {
		t.Errorf("required part behind an open breaker: %d %s", code, body)
	}
	if n := len(flaky.requests()); n != 3 {
		t.Errorf("the backend behind the open breaker got %d requests, want still 3", n)
	}
	if n := aggCalls(t, e.node, "page", "extra", "failed"); n != 6 {
		t.Errorf("failed calls of extra counted %v, want 6", n)
	}
	if n := metricValue(t, e.node, `meshgate_aggregate_partial_total{route="page"}`); n != 6 {
		t.Errorf("partial answers counted %v, want 6", n)
	}

	// A 503 then a 200: retried once, the composite succeeds.
	for i := range 2 {
		code, hdr, body := get(t, nil, "GET", url+"/retrying", nil)
		if code != 200 || hdr.Get("Meshgate-Partial") != "" {
			t.Fatalf("retried part, request %d: %d %q %s", i+1, code, hdr.Get("Meshgate-Partial"), body)
		}
		sameJSON(t, "retrying", body, `{"base":{"ok":true},"again":{"second":true}}`)
		if n := attempts.Load(); n != int64(2*(i+1)) {
			t.Errorf("request %d: the retried backend saw %d attempts, want %d", i+1, n, 2*(i+1))
		}
	}
	if n := aggCalls(t, e.node, "retrying", "again", "ok"); n != 2 {
		t.Errorf("ok calls of again counted %v, want 2", n)
	}
}

// One composite request is one trace: the edge's server span and one
// client span per call, each the child of the server span; the parallel
// calls' spans overlap in time, and each lasts at least its backend's
// delay.
func TestCompositeTraceShowsFanOut(t *testing.T) {
	delays := map[string]time.Duration{"a": 30 * time.Millisecond, "b": 40 * time.Millisecond, "c": 50 * time.Millisecond}
	backends := map[string]*partBackend{}
	for name, d := range delays {
		backends[name] = newPartBackend(t, d, fixed(`{"from":"`+name+`"}`))
	}
	k := newSpanSink()
	e := k.start(t, tracingOn+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: up-a, endpoints: [{address: %q}]}
  - {name: up-b, endpoints: [{address: %q}]}
  - {name: up-c, endpoints: [{address: %q}]}
routes:
  - name: fan
    match: {path: {template: "/fan/{id}"}}
    aggregate:
      calls:
        - {name: a, upstream: up-a, path: "/a/{path.id}"}
        - {name: b, upstream: up-b, path: "/b/{path.id}"}
        - {name: c, upstream: up-c, path: "/c/{path.id}"}
`, backends["a"].addr(), backends["b"].addr(), backends["c"].addr()), Options{})
	code, _, body := get(t, nil, "GET", e.url("public")+"/fan/7", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	sameJSON(t, "fan", body, `{"a":{"from":"a"},"b":{"from":"b"},"c":{"from":"c"}}`)
	spans := k.spans(t)
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4 (a server span and 3 client spans):%s", len(spans), describe(spans))
	}
	server := findSpan(t, spans, "meshgate-edge", trace.SpanKindServer, "GET fan")
	if server.Parent.IsValid() {
		t.Errorf("the server span has a parent %s", server.Parent.SpanID())
	}
	wantAttr(t, server, "meshgate.route", "fan")
	wantAttr(t, server, "http.response.status_code", "200")
	wantAttr(t, server, "meshgate.upstream", "(aggregate)")
	clients := map[string]sdktracetest.SpanStub{}
	for name, b := range backends {
		c := findSpan(t, spans, "meshgate-edge", trace.SpanKindClient, "GET up-"+name)
		wantChild(t, c, server)
		wantAttr(t, c, "meshgate.upstream", "up-"+name)
		wantAttr(t, c, "http.response.status_code", "200")
		if d := c.EndTime.Sub(c.StartTime); d < delays[name] {
			t.Errorf("client span of %s lasted %v, less than its backend's delay %v", name, d, delays[name])
		}
		if c.StartTime.Before(server.StartTime) || c.EndTime.After(server.EndTime) {
			t.Errorf("client span of %s [%v, %v] is not within the server span [%v, %v]", name, c.StartTime, c.EndTime, server.StartTime, server.EndTime)
		}
		// The backend got the client span's context.
		got := b.requests()
		want := "00-" + c.SpanContext.TraceID().String() + "-" + c.SpanContext.SpanID().String() + "-01"
		if len(got) != 1 || got[0].header.Get("Traceparent") != want {
			t.Errorf("backend %s got %+v, want one request with traceparent %q", name, got, want)
		}
		clients[name] = c
	}
	// Parallel: every call started before any ended.
	for n1, c1 := range clients {
		for n2, c2 := range clients {
			if n1 != n2 && !c1.StartTime.Before(c2.EndTime) {
				t.Errorf("the spans of %s [%v, %v] and %s [%v, %v] do not overlap", n1, c1.StartTime, c1.EndTime, n2, c2.StartTime, c2.EndTime)
			}
		}
	}
}

// appCalls are the requests an app behind a sidecar got from composites
// (not its sidecar's health checks).
func appCalls(b *partBackend) []partRequest {
	var calls []partRequest
	for _, r := range b.requests() {
		for _, p := range []string{"/items/", "/prices/", "/secrets/"} {
			if strings.HasPrefix(r.path, p) {
				calls = append(calls, r)
			}
		}
	}
	return calls
}

// A composite over mesh services: the edge and three sidecars in one
// cluster, the upstreams discovered by service and reached over SPIFFE
// mTLS. Calls through the catalog and pricing sidecars reach their apps as
// the edge's identity; the secret sidecar refuses the edge (403), which
// fails the composite that requires it (502 naming the call).
func TestCompositeThroughSidecarsWithMTLS(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID := ca.ID(t, "/edge")
	e := startEdge(t, identityFiles(t, ca, edgeID)+fastCluster("")+`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: catalog, service: {name: catalog}, tls: {spiffe_ids: ["spiffe://example.org/catalog"]}}
  - {name: pricing, service: {name: pricing}, tls: {spiffe_ids: ["spiffe://example.org/pricing"]}}
  - {name: secret, service: {name: secret}, tls: {spiffe_ids: ["spiffe://example.org/secret"]}}
routes:
  - name: page
    match: {path: {template: "/page/{id}"}}
    aggregate:
      calls:
        - {name: item, upstream: catalog, path: "/items/{path.id}"}
        - {name: price, upstream: pricing, path: "/prices/{path.id}"}
  - name: vault
    match: {path: {template: "/vault/{id}"}}
    aggregate:
      calls:
        - {name: item, upstream: catalog, path: "/items/{path.id}"}
        - {name: secret, upstream: secret, path: "/secrets/{path.id}"}
`)
	seed := e.node.Cluster().Addr()
	apps := map[string]*partBackend{}
	sidecars := map[string]*Node{}
	for _, svc := range []string{"catalog", "pricing", "secret"} {
		apps[svc] = newPartBackend(t, 0, func(r *http.Request) (int, string) {
			return 200, fmt.Sprintf(`{"service":%q,"path":%q}`, svc, r.URL.Path)
		})
		allow := "spiffe://example.org/edge"
		if svc == "secret" {
			allow = "spiffe://example.org/vault-admin"
		}
		sidecars[svc] = startSidecar(t, identityFiles(t, ca, ca.ID(t, "/"+svc))+fastCluster(seed)+fmt.Sprintf(`
log: {access: "off"}
service: {name: %s, app: %q}
inbound: {address: "127.0.0.1:0", allow: [%q]}
`, svc, apps[svc].addr(), allow))
	}
	eventually(t, 10*time.Second, "the edge discovers the three sidecars", func() bool {
		for _, svc := range []string{"catalog", "pricing", "secret"} {
			if len(e.node.Cluster().Service(svc, "").Endpoints()) != 1 {
				return false
			}
		}
		return true
	})

	code, _, body := get(t, nil, "GET", e.url("public")+"/page/9", nil)
	if code != 200 {
		t.Fatalf("page: %d %s", code, body)
	}
	sameJSON(t, "page", body, `{"item":{"service":"catalog","path":"/items/9"},"price":{"service":"pricing","path":"/prices/9"}}`)
	for _, svc := range []string{"catalog", "pricing"} {
		calls := appCalls(apps[svc])
		if len(calls) != 1 {
			t.Fatalf("%s app got %+v, want one call", svc, calls)
		}
		// The sidecar admitted the edge and told its app who called.
		if caller := calls[0].header.Get(dataplaneCaller); caller != edgeID.String() {
			t.Errorf("%s app: caller %q, want %q", svc, caller, edgeID)
		}
	}

	// The secret sidecar's policy does not admit the edge: 403 there, so
	// the required call fails and the composite is a 502 naming it.
	code, _, body = get(t, nil, "GET", e.url("public")+"/vault/9", nil)
	if code != 502 || !strings.Contains(body, "aggregate: call secret failed: status 403") {
		t.Errorf("vault: %d %s", code, body)
	}
	if calls := appCalls(apps["secret"]); len(calls) != 0 {
		t.Errorf("the secret app got calls the sidecar should have refused: %+v", calls)
	}
	if n := metricValue(t, sidecars["secret"], fmt.Sprintf(`meshgate_authz_denied_total{listener=%q}`, config.SidecarInbound)); n < 1 {
		t.Errorf("the secret sidecar counted %v denials", n)
	}
	if n := aggCalls(t, e.node, "vault", "secret", "failed"); n != 1 {
		t.Errorf("failed calls of secret counted %v, want 1", n)
	}
}

// 1,000 clients that give up while their composite's calls are in flight,
// over HTTP/2 (h2c: the client resets its stream) and over HTTP/1.1 (the
// client closes its connection): every call that reached a backend is
// cancelled there promptly, no client gets an answer, and no goroutine is
// left behind (on the edge, its upstream connections or the backends).
func TestCompositeClientGoneLeavesNoGoroutines(t *testing.T) {
	for _, proto := range []string{"h2c", "http1"} {
		t.Run(proto, func(t *testing.T) { clientGone(t, proto) })
	}
}

// clientGone is TestCompositeClientGoneLeavesNoGoroutines with clients of
// one protocol, on an edge and backends of its own.
func clientGone(t *testing.T, proto string) {
	var started, cancelled, leaked atomic.Int64
	// reached[id] is closed when a call of request id reaches a backend:
	// its client gives up only then, mid-fan-out, whatever the machine's
	// load (a fixed client timeout gave up before the fan-out under load).
	type gate struct {
		ch   chan struct{}
		once sync.Once
	}
	var reached sync.Map // id → *gate
	reach := func(id string) *gate {
		g, _ := reached.LoadOrStore(id, &gate{ch: make(chan struct{})})
		return g.(*gate)
	}
	var running sync.Map // backend path → when it started, while it runs
	block := func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		running.Store(r.URL.Path, time.Now())
		defer running.Delete(r.URL.Path)
		g := reach(path.Base(r.URL.Path))
		g.once.Do(func() { close(g.ch) }) // a and b of one request race here
		tm := time.NewTimer(20 * time.Second)
		defer tm.Stop()
		select {
		case <-r.Context().Done():
			cancelled.Add(1)
		case <-tm.C: // never, unless the call outlived its client
			leaked.Add(1)
			_, _ = io.WriteString(w, `{}`)
		}
	}
	// The backends close idle connections after 200ms (idle in the edge's
	// pool, or dialled for a call its client gave up meanwhile), so that
	// no keep-alive connection outlives the test's wait for goroutines. A
	// connection the edge dialled for a call given up before it was sent
	// has no request at all: it closes after ReadHeaderTimeout, 1s — long
	// enough for a request head on a loaded machine.
	var backends []string
	for range 3 {
		b := httptest.NewUnstartedServer(http.HandlerFunc(block))
		b.Config.IdleTimeout, b.Config.ReadHeaderTimeout = 200*time.Millisecond, time.Second
		b.Start()
		t.Cleanup(b.Close)
		backends = append(backends, addr(b))
	}
	// The composite's own deadline (30s) is far beyond when the clients
	// give up: only the client's going away can end these calls early.
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0", protocol: http}]
upstreams:
  - {name: a, endpoints: [{address: %q}]}
  - {name: b, endpoints: [{address: %q}]}
  - {name: c, endpoints: [{address: %q}]}
routes:
  - name: stuck
    match: {path: {template: "/stuck/{id}"}}
    aggregate:
      timeout: 30s
      calls:
        - {name: a, upstream: a, path: "/a/{path.id}"}
        - {name: b, upstream: b, path: "/b/{path.id}"}
        - {name: c, upstream: c, path: "/c/{path.id}", depends_on: [a]}
`, backends[0], backends[1], backends[2]))
	url := e.url("public") + "/stuck/"
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	if proto == "h2c" {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	const requests, workers = 1000, 16
	var next, answered atomic.Int64
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= requests; i = next.Add(1) {
				id := strconv.FormatInt(i, 10)
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					select {
					case <-reach(id).ch:
					case <-time.After(10 * time.Second): // a request that never fans out fails below
					}
					cancel()
				}()
				req, _ := http.NewRequestWithContext(ctx, "GET", url+id, nil)
				resp, err := client.Do(req)
				if err == nil {
					answered.Add(1)
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
					resp.Body.Close()
				} else if !errors.Is(err, context.Canceled) {
					t.Errorf("request: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	gaveUp := time.Now()
	t.Logf("%d requests given up in %v; %d backend calls made", requests, gaveUp.Sub(start), started.Load())
	if n := answered.Load(); n != 0 {
		t.Errorf("%d requests got an answer (statuses %v); every backend blocks until cancelled", n, statuses)
	}
	// Mid-fan-out: every client gave up once a call of its request had
	// reached a backend.
	if n := started.Load(); n < requests {
		t.Errorf("only %d backend calls for %d requests: the clients did not give up mid-fan-out", n, requests)
	}
	// Promptly: every call is cancelled, long before the composite's 30s
	// deadline or the backends' 20s timer could end it.
	for started.Load() != cancelled.Load() && time.Since(gaveUp) < 10*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("every backend call cancelled %v after the last client gave up", time.Since(gaveUp).Round(time.Millisecond))
	if s, c := started.Load(), cancelled.Load(); s != c {
		var stuck []string
		running.Range(func(k, v any) bool {
			stuck = append(stuck, fmt.Sprintf("%s (started %v before the last client gave up)", k, gaveUp.Sub(v.(time.Time)).Round(time.Millisecond)))
			return true
		})
		t.Errorf("10s after the clients gave up, %d of %d backend calls are still running: %v", s-c, s, stuck)
	}

	// The goroutines settle back. The baseline was taken with the edge and
	// the backends up and idle; the backends close idle connections after
	// 200ms and the client's are closed here, so everything the requests
	// started ends. The slack of 10 is for goroutines that come and go
	// (a pool's dialer finishing, the runtime's own): a leak is far larger,
	// each leaked composite holding at least two calls in flight with their
	// handlers and connections, and the clients left 1,000 of them; a
	// single leaked call is caught above already (started against
	// cancelled).
	client.CloseIdleConnections()
	const slack = 10
	deadline := time.Now().Add(10 * time.Second) // polled: settles in ~1s
	now := runtime.NumGoroutine()
	for now > baseline+slack && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		now = runtime.NumGoroutine()
	}
	t.Logf("goroutines: %d before, %d after (%v after the clients gave up)", baseline, now, time.Since(gaveUp).Round(time.Millisecond))
	if now > baseline+slack {
		t.Errorf("%d goroutines after the cancelled requests, %d before (slack %d); by where they are:\n%s", now, baseline, slack, goroutineSummary())
	}
	if n := leaked.Load(); n != 0 {
		t.Errorf("%d backend calls were never cancelled", n)
	}
	if n := aggCalls(t, e.node, "stuck", "a", "ok"); n > 0 {
		t.Errorf("%v calls of a counted ok; none could answer", n)
	}
}

// goroutineSummary counts the goroutines by the function each is in and
// the one that started it, most first.
func goroutineSummary() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		if len(lines) < 2 {
			continue
		}
		key := lines[1]
		if k := strings.LastIndexByte(key, '('); k > 0 {
			key = key[:k] // without its arguments
		}
		for i := len(lines) - 1; i > 1; i-- {
			if strings.HasPrefix(lines[i], "created by ") {
				key += " ← " + strings.Fields(lines[i])[2]
				break
			}
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	var b strings.Builder
	for _, k := range keys[:min(len(keys), 12)] {
		fmt.Fprintf(&b, "\t%5d %s\n", counts[k], k)
	}
	return b.String()
}

// The composite's deadline bounds its calls: past aggregate.timeout the
// client gets 504 naming the call, and the call is cancelled at its
// backend (it does not run on until the backend answers).
func TestCompositeDeadlineCancelsCalls(t *testing.T) {
	cancelled := make(chan time.Time, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tm := time.NewTimer(2 * time.Second)
		defer tm.Stop()
		select {
		case <-r.Context().Done():
			cancelled <- time.Now()
		case <-tm.C:
			_, _ = io.WriteString(w, `{"late":true}`)
		}
	}))
	t.Cleanup(slow.Close)
	fast := newPartBackend(t, 0, fixed(`{}`))
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: slow, endpoints: [{address: %q}]}
  - {name: fast, endpoints: [{address: %q}]}
routes:
  - name: bounded
    match: {path: {exact: /bounded}}
    aggregate:
      timeout: 200ms
      calls:
        - {name: quick, upstream: fast, path: /quick}
        - {name: late, upstream: slow, path: /late}
`, addr(slow), fast.addr()))
	start := time.Now()
	code, _, body := get(t, nil, "GET", e.url("public")+"/bounded", nil)
	took := time.Since(start)
	if code != 504 || !strings.Contains(body, "aggregate: timed out waiting for call late") {
		t.Errorf("past the composite's deadline: %d %s after %v, want 504 naming late", code, body, took)
	}
	if took > time.Second {
		t.Errorf("the composite answered after %v; its deadline is 200ms", took)
	}
	select {
	case at := <-cancelled:
		if d := at.Sub(start); d > time.Second {
			t.Errorf("the late call was cancelled %v after the request; its deadline is 200ms", d)
		}
	case <-time.After(time.Second):
		t.Error("the late call was not cancelled at its backend within 1s of the answer")
	}
	if n := aggCalls(t, e.node, "bounded", "late", "timeout"); n != 1 {
		t.Errorf("timed out calls of late counted %v, want 1", n)
	}
}

// Values from the client cannot change the shape of a call: through the
// edge, a value with "/", "..", "%2F" or "&x=1" is one path segment and one
// query value at the backend; a path parameter cannot carry them at all
// (the edge normalizes the path first); and no header can be added with a
// line break.
func TestCompositeTemplateInjection(t *testing.T) {
	b := newPartBackend(t, 0, fixed(`{}`))
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: b, endpoints: [{address: %q}]}]
routes:
  - name: lookup
    match: {path: {template: "/lookup/{id}"}}
    aggregate:
      calls:
        - name: item
          upstream: b
          path: "/items/{path.id}/{query.id}/detail"
          query: {q: "{query.id}", fixed: "1"}
  - name: tagged
    match: {path: {exact: /tagged}}
    aggregate:
      calls:
        - name: item
          upstream: b
          path: /tagged
          headers: {X-Tag: "t-{header.X-Tag}", X-Query-Tag: "q-{query.tag}"}
`, b.addr()))
	base := e.url("public")
	// last returns the backend's only request since the previous call.
	seenBefore := 0
	last := func(what string) (partRequest, bool) {
		t.Helper()
		got := b.requests()
		n := len(got) - seenBefore
		seenBefore = len(got)
		if n != 1 {
			t.Errorf("%s: the backend got %d requests, want 1", what, n)
			return partRequest{}, false
		}
		return got[len(got)-1], true
	}

	// A query value placed in the path and in the query.
	for _, v := range []string{"../admin", "..", ".", "%2F", "a/b", "x&x=1", "a?b#c"} {
		code, _, body := get(t, nil, "GET", base+"/lookup/7?id="+url.QueryEscape(v), nil)
		if code != 200 {
			t.Errorf("id %q: %d %s", v, code, body)
			continue
		}
		r, ok := last(fmt.Sprintf("id %q", v))
		if !ok {
			continue
		}
		segs := strings.Split(strings.TrimPrefix(r.escaped, "/"), "/")
		if len(segs) != 4 || segs[0] != "items" || segs[1] != "7" || segs[3] != "detail" {
			t.Errorf("id %q: backend path %q, want 4 segments /items/7/…/detail", v, r.escaped)
			continue
		}
		if seg, err := url.PathUnescape(segs[2]); err != nil || seg != v {
			t.Errorf("id %q: the segment is %q (%q unescaped), want the value", v, segs[2], seg)
		}
		q, err := url.ParseQuery(r.query)
		if err != nil || len(q) != 2 || len(q["q"]) != 1 || q.Get("q") != v || q.Get("fixed") != "1" {
			t.Errorf("id %q: backend query %q, want q=%q and fixed=1 only", v, r.query, v)
		}
	}

	// A path parameter: the edge has normalized the path before matching,
	// so "..", "%2F" and "%2E%2E" never reach a template parameter; these
	// leave the template's route (404), and the backend gets nothing.
	for _, p := range []string{"/lookup/..%2Fadmin", "/lookup/%2E%2E", "/lookup/a%2Fb", "/lookup/.."} {
		code, _, body := get(t, nil, "GET", base+p, nil)
		if code != 404 {
			t.Errorf("%s: %d %s, want 404", p, code, body)
		}
	}
	if n := len(b.requests()); n != seenBefore {
		t.Errorf("paths that do not match the template reached the backend: %+v", b.requests()[seenBefore:])
		seenBefore = n
	}
	// A parameter with an escape is one segment at the backend, the value
	// the client sent (not escaped a second time).
	code, _, body := get(t, nil, "GET", base+"/lookup/a%20b?id=x", nil)
	if code != 200 {
		t.Errorf("escaped parameter: %d %s", code, body)
	} else if r, ok := last("escaped parameter"); ok && (r.escaped != "/items/a%20b/x/detail" || r.path != "/items/a b/x/detail") {
		t.Errorf("escaped parameter a%%20b: backend got %q (decoded %q), want /items/a%%20b/x/detail", r.escaped, r.path)
	}

	// Headers. A client cannot send a CR inside a header value: Go's client
	// refuses it, and the edge's server rejects it on the wire (400) before
	// any route, so it never reaches a template.
	resp, _ := rawExchange(t, strings.TrimPrefix(base, "http://"),
		"GET /tagged HTTP/1.1\r\nHost: x\r\nX-Tag: a\rX-Evil: 1\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Errorf("a CR in a header value: %d, want 400", resp.StatusCode)
	}
	if n := len(b.requests()); n != seenBefore {
		t.Errorf("a request with a CR in a header reached the backend: %+v", b.requests()[seenBefore:])
		seenBefore = n
	}
	// Text that looks like more headers is one value.
	const lookalike = `v1, X-Evil: 1; X-Other: 2`
	code, _, body = get(t, nil, "GET", base+"/tagged?tag=plain", map[string]string{"X-Tag": lookalike})
	if code != 200 {
		t.Errorf("lookalike header: %d %s", code, body)
	} else if r, ok := last("lookalike header"); ok {
		if got := r.header.Values("X-Tag"); len(got) != 1 || got[0] != "t-"+lookalike {
			t.Errorf("X-Tag at the backend: %q, want one value %q", got, "t-"+lookalike)
		}
		if r.header.Get("X-Evil") != "" || r.header.Get("X-Other") != "" {
			t.Errorf("a header was added: %v", r.header)
		}
		if got := r.header.Values("X-Query-Tag"); len(got) != 1 || got[0] != "q-plain" {
			t.Errorf("X-Query-Tag at the backend: %q", got)
		}
	}
	// But a query value can carry CR and LF (percent-encoded): placed in a
	// header it fails the call, which is never sent.
	for _, evil := range []string{"a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\x00b"} {
		code, _, body := get(t, nil, "GET", base+"/tagged?tag="+url.QueryEscape(evil), nil)
		if code != 502 || !strings.Contains(body, "aggregate: call item failed: header X-Query-Tag: value carries a control character") {
			t.Errorf("query tag %q in a header: %d %s", evil, code, body)
		}
	}
	if n := len(b.requests()); n != seenBefore {
		t.Errorf("a call with a line break in a header was sent: %+v", b.requests()[seenBefore:])
	}
}

// bffConfig is an edge with two BFF groups over the same upstreams and one
// named call: mobile (selected by X-Client: mobileValue) and web (under
// /web), each with a composite product page of its own shape.
func bffConfig(catalog, pricing, mobileValue string) string {
	return fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: catalog, endpoints: [{address: %q}]}
  - {name: pricing, endpoints: [{address: %q}]}
bff:
  - {name: mobile, headers: [{name: X-Client, exact: %q}]}
  - {name: web, path_prefix: /web}
calls:
  - {name: item, upstream: catalog, path: "/items/{path.id}"}
routes:
  - name: mobile-product
    bff: mobile
    match: {path: {template: "/products/{id}"}}
    aggregate:
      calls:
        - {use: item, transform: {allow: [name]}}
        - {name: price, upstream: pricing, path: "/prices/{path.id}"}
  - name: web-product
    bff: web
    match: {path: {template: "/products/{id}"}}
    aggregate:
      calls:
        - {use: item}
        - {name: price, upstream: pricing, path: "/prices/{path.id}", into: details.price}
`, catalog, pricing, mobileValue)
}

// Two BFF groups shape the same calls for their clients, and a reload that
// changes the mobile group's header moves the mobile clients without a
// failed request for the web group.
func TestBFFGroupsReload(t *testing.T) {
	catalog := newPartBackend(t, 0, func(r *http.Request) (int, string) {
		return 200, fmt.Sprintf(`{"sku":%q,"name":"Desk","description":"oak"}`, strings.TrimPrefix(r.URL.Path, "/items/"))
	})
	pricing := newPartBackend(t, 0, fixed(`{"amount":199}`))
	e := startEdge(t, bffConfig(catalog.addr(), pricing.addr(), "mobile"))
	base := e.url("public")
	const mobileShape = `{"item":{"name":"Desk"},"price":{"amount":199}}`
	const webShape = `{"item":{"sku":"1","name":"Desk","description":"oak"},"details":{"price":{"amount":199}}}`
	mobile := func(value string) (int, string) {
		code, _, body := get(t, nil, "GET", base+"/products/1", map[string]string{"X-Client": value})
		return code, body
	}

	if code, body := mobile("mobile"); code != 200 {
		t.Fatalf("mobile: %d %s", code, body)
	} else {
		sameJSON(t, "mobile", body, mobileShape)
	}
	code, _, body := get(t, nil, "GET", base+"/web/products/1", nil)
	if code != 200 {
		t.Fatalf("web: %d %s", code, body)
	}
	sameJSON(t, "web", body, webShape)
	// A web client sending the mobile header is still a web client there.
	code, _, body = get(t, nil, "GET", base+"/web/products/1", map[string]string{"X-Client": "mobile"})
	if code != 200 {
		t.Fatalf("web with X-Client: %d %s", code, body)
	}
	sameJSON(t, "web with X-Client", body, webShape)
	if code, body := mobile(""); code != 404 {
		t.Errorf("no group selected: %d %s", code, body)
	}
	if code, _, body := get(t, nil, "GET", base+"/web/products/1/x", nil); code != 404 {
		t.Errorf("a path the web group does not serve: %d %s", code, body)
	}
	// Both groups took the one call definition: same backend path.
	for _, r := range catalog.requests() {
		if r.path != "/items/1" {
			t.Errorf("catalog got %s", r.path)
		}
	}

	// Web traffic during the reloads.
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := c.Get(base + "/web/products/1")
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"details"`))) {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	for i, value := range []string{"mobile-v2", "mobile", "mobile-v2", "mobile", "mobile-v2"} {
		old := "mobile"
		if value == "mobile" {
			old = "mobile-v2"
		}
		e.write(bffConfig(catalog.addr(), pricing.addr(), value))
		if err := e.node.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if code, body := mobile(old); code != 404 {
			t.Errorf("reload %d: old header value %q: %d %s, want 404", i, old, code, body)
		}
		if code, body := mobile(value); code != 200 {
			t.Errorf("reload %d: new header value %q: %d %s", i, value, code, body)
		} else {
			sameJSON(t, "mobile after reload", body, mobileShape)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d web requests during the reloads, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d web requests failed, first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() < 10 {
		t.Errorf("only %d web requests during the reloads", ok.Load())
	}
}
