package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// seen is what an echo backend reports about the request it received.
type seen struct {
	Name    string              `json:"name"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

// echoBackend answers every request with a JSON description of it.
func echoBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "keep-alive, X-Secret")
		w.Header().Set("X-Secret", "hop")
		_ = json.NewEncoder(w).Encode(seen{Name: name, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host, Headers: r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func decode(t *testing.T, body string) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("backend body %q: %v", body, err)
	}
	return s
}

func routingConfig(a, b, c string) string {
	return fmt.Sprintf(`
log: {access: stdout}
server:
  trusted_proxies: [10.0.0.0/8]
listeners:
  - {name: public, address: "127.0.0.1:0"}
routes:
  - name: product
    match:
      path: {template: "/products/{id}"}
      methods: [GET]
    rewrite: {path: "/v1/items/{id}"}
    upstream: a
  - name: product-v2
    match:
      path: {template: "/products/{id}"}
      methods: [GET]
      headers: [{name: X-Api-Version, exact: "2"}]
    upstream: b
  - name: orders
    match:
      path: {exact: /orders}
      methods: [GET, POST]
    request_headers: {set: {X-Edge: "yes"}, remove: [X-Drop]}
    response_headers: {set: {X-Served-By: meshgate}}
    upstream: a
  - name: api
    match: {path: {prefix: /api}}
    rewrite: {strip_prefix: /api}
    upstream: b
  - name: admin
    match:
      hosts: [admin.example.com]
      path: {prefix: /}
    upstream: c
  - name: debug
    match:
      path: {regex: "^/debug/[0-9]+$"}
      query: [{name: verbose, exact: "1"}]
    upstream: c
upstreams:
  - {name: a, endpoints: [{address: %q}]}
  - {name: b, endpoints: [{address: %q}]}
  - {name: c, endpoints: [{address: %q}]}
`, a, b, c)
}

func TestRouting(t *testing.T) {
	a, b, c := echoBackend(t, "a"), echoBackend(t, "b"), echoBackend(t, "c")
	e := startEdge(t, routingConfig(addr(a), addr(b), addr(c)))
	base := e.url("public")

	cases := []struct {
		method, path string
		hdr          map[string]string
		status       int
		backend      string
		backendPath  string
	}{
		{"GET", "/products/42", nil, 200, "a", "/v1/items/42"},
		{"GET", "/products/42", map[string]string{"X-Api-Version": "2"}, 200, "b", "/products/42"},
		{"GET", "/orders", nil, 200, "a", "/orders"},
		{"POST", "/orders", nil, 200, "a", "/orders"},
		{"GET", "/api/things?x=1", nil, 200, "b", "/things"},
		{"GET", "/api", nil, 200, "b", "/"},
		{"GET", "/apix", nil, 404, "", ""},
		{"GET", "/anything", map[string]string{"Host": "admin.example.com"}, 200, "c", "/anything"},
		{"GET", "/debug/7?verbose=1", nil, 200, "c", "/debug/7"},
		{"GET", "/debug/7", nil, 404, "", ""},
		{"GET", "/public/../products/9", nil, 200, "a", "/v1/items/9"},
		{"GET", "/api/%2e%2e/products/9", nil, 200, "a", "/v1/items/9"},
	}
	for _, tc := range cases {
		status, _, body := get(t, nil, tc.method, base+tc.path, tc.hdr)
		if status != tc.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.path, status, tc.status, body)
			continue
		}
		if tc.backend == "" {
			if !strings.Contains(body, `"error":`) {
				t.Errorf("%s %s: want a JSON error body, got %q", tc.method, tc.path, body)
			}
			continue
		}
		s := decode(t, body)
		if s.Name != tc.backend || s.Path != tc.backendPath {
			t.Errorf("%s %s: reached %s%s, want %s%s", tc.method, tc.path, s.Name, s.Path, tc.backend, tc.backendPath)
		}
	}

	// Path matches, method does not: 405 with Allow.
	status, h, body := get(t, nil, "DELETE", base+"/orders", nil)
	if status != 405 || h.Get("Allow") != "GET, POST" || !strings.Contains(body, "not allowed") {
		t.Errorf("DELETE /orders: %d Allow=%q %s", status, h.Get("Allow"), body)
	}
}

func TestForwardingHeaders(t *testing.T) {
	a := echoBackend(t, "a")
	e := startEdge(t, routingConfig(addr(a), addr(a), addr(a)))
	status, h, body := get(t, nil, "GET", e.url("public")+"/orders", map[string]string{
		"X-Forwarded-For":   "6.6.6.6",
		"X-Forwarded-Proto": "https",
		"Forwarded":         "for=6.6.6.6",
		"X-Drop":            "x",
		"Connection":        "X-Custom",
		"X-Custom":          "hop-by-hop",
		"Keep-Alive":        "timeout=5",
	})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	s := decode(t, body)
	hd := http.Header(s.Headers)
	// The peer (127.0.0.1) is not a trusted proxy: its claims are replaced.
	if got := hd.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := hd.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	if got := hd.Get("Forwarded"); !strings.HasPrefix(got, "for=127.0.0.1;host=") || strings.Contains(got, "6.6.6.6") {
		t.Errorf("Forwarded = %q", got)
	}
	if hd.Get("X-Forwarded-Host") == "" {
		t.Error("X-Forwarded-Host missing")
	}
	if hd.Get("X-Custom") != "" || hd.Get("Keep-Alive") != "" || hd.Get("X-Drop") != "" {
		t.Errorf("hop-by-hop or removed headers reached the backend: %v", hd)
	}
	if hd.Get("X-Edge") != "yes" {
		t.Errorf("X-Edge not set: %v", hd)
	}
	id := hd.Get("X-Request-Id")
	if id == "" || h.Get("X-Request-Id") != id {
		t.Errorf("request id: backend %q, client %q", id, h.Get("X-Request-Id"))
	}
	if h.Get("X-Served-By") != "meshgate" {
		t.Errorf("response header op missing: %v", h)
	}
	if h.Get("X-Secret") != "" {
		t.Errorf("response hop-by-hop header named by Connection reached the client")
	}

	// A client-supplied request id is passed on.
	_, _, body = get(t, nil, "GET", e.url("public")+"/orders", map[string]string{"X-Request-Id": "abc-123"})
	if got := http.Header(decode(t, body).Headers).Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("request id = %q", got)
	}
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	a := echoBackend(t, "a")
	cfg := strings.Replace(routingConfig(addr(a), addr(a), addr(a)), "[10.0.0.0/8]", "[127.0.0.0/8]", 1)
	e := startEdge(t, cfg)
	_, _, body := get(t, nil, "GET", e.url("public")+"/orders", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
	hd := http.Header(decode(t, body).Headers)
	if got := hd.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := hd.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
}

func TestRetryOnConnectFailure(t *testing.T) {
	a := echoBackend(t, "a")
	dead := deadAddr(t)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: r
    match: {path: {prefix: /}}
    upstream: u
    retry: {attempts: 3, on: [connect-failure], backoff_base: 1ms, backoff_max: 2ms}
upstreams:
  - name: u
    endpoints: [{address: %q}, {address: %q}]
`, dead, addr(a)))
	for i := 0; i < 20; i++ {
		status, _, body := get(t, nil, "POST", e.url("public")+"/x", nil)
		if status != 200 {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
}

func TestRetryOn503AndBudget(t *testing.T) {
	var calls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			w.WriteHeader(503)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer flaky.Close()
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: r
    match: {path: {prefix: /}}
    upstream: u
    retry: {attempts: 2, on: ["503"], backoff_base: 1ms, backoff_max: 1ms}
upstreams:
  - name: u
    endpoints: [{address: %q}]
`, addr(flaky)))
	status, _, body := get(t, nil, "GET", e.url("public")+"/", nil)
	if status != 200 || body != "ok" || calls.Load() != 2 {
		t.Fatalf("got %d %q after %d calls", status, body, calls.Load())
	}
	// POST is not idempotent: no retry on 503.
	calls.Store(0)
	status, _, _ = get(t, nil, "POST", e.url("public")+"/", nil)
	if status != 503 || calls.Load() != 1 {
		t.Fatalf("POST: %d after %d calls", status, calls.Load())
	}
}

func TestTimeouts(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: total
    match: {path: {exact: /total}}
    upstream: u
    timeout: 100ms
  - name: pertry
    match: {path: {exact: /pertry}}
    upstream: u
    timeout: 1s
    per_try_timeout: 50ms
    retry: {attempts: 3, on: ["504"], backoff_base: 1ms, backoff_max: 1ms}
upstreams:
  - name: u
    endpoints: [{address: %q}]
`, addr(slow)))
	for _, p := range []string{"/total", "/pertry"} {
		start := time.Now()
		status, _, body := get(t, nil, "GET", e.url("public")+p, nil)
		if status != 504 || !strings.Contains(body, "timed out") {
			t.Errorf("%s: %d %s", p, status, body)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s took %v", p, d)
		}
	}
}

func TestNoHealthyUpstreamAndConnectFailure(t *testing.T) {
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, deadAddr(t)))
	status, _, body := get(t, nil, "GET", e.url("public")+"/", nil)
	if status != 502 || !strings.Contains(body, "connect failed") {
		t.Fatalf("%d %s", status, body)
	}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// The route timeout bounds the wait for response headers; a body that keeps
// streaming afterwards is not cut.
func TestRouteTimeoutDoesNotCutStreamingBody(t *testing.T) {
	streamer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for i := 0; i < 6; i++ {
			_, _ = fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer streamer.Close()
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u, timeout: 200ms}]
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, addr(streamer)))
	status, _, body := get(t, nil, "GET", e.url("public")+"/", nil)
	if status != 200 || !strings.Contains(body, "chunk 5") {
		t.Fatalf("%d %q", status, body)
	}
}

// With the backend failing every request, the retry budget caps retries far
// below what the retry policy alone would make (2 per request here).
func TestRetryBudgetCapsRetries(t *testing.T) {
	var calls atomic.Int64
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(503)
	}))
	defer down.Close()
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: r
    match: {path: {prefix: /}}
    upstream: u
    retry: {attempts: 3, on: ["503"], backoff_base: 1ms, backoff_max: 1ms}
upstreams:
  - name: u
    endpoints: [{address: %q}]
    retry_budget: {percent: 20, min_per_second: 1}
`, addr(down)))
	const requests = 100
	for i := 0; i < requests; i++ {
		if status, _, _ := get(t, nil, "GET", e.url("public")+"/", nil); status != 503 {
			t.Fatalf("status %d", status)
		}
	}
	retries := calls.Load() - requests
	m := scrape(t, e)
	t.Logf("%d requests, %d retries", requests, retries)
	// One request in flight at a time: 20% of it is no retry; only the floor
	// of 1 per second applies (a second boundary may allow one more).
	if retries > 4 {
		t.Fatalf("%d retries for %d requests: the budget did not hold", retries, requests)
	}
	if !strings.Contains(m, `meshgate_retry_budget_exhausted_total{route="r"}`) {
		t.Fatal("budget exhaustion not counted")
	}
}

// The upstream answers 503 before reading the body. A retry is made only if
// the first attempt never began reading the body (a transport may go on
// reading it after RoundTrip returned), and then the retry carries all of it.
func TestRetryNeverSplitsTheBody(t *testing.T) {
	var calls atomic.Int64
	var got atomic.Value
	early := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Connection", "close")
			w.WriteHeader(503)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		_, _ = w.Write(b)
	}))
	defer early.Close()
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: r
    match: {path: {prefix: /}}
    upstream: u
    retry: {attempts: 2, on: ["503"], backoff_base: 1ms, backoff_max: 1ms}
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, addr(early)))
	for i := 0; i < 5; i++ {
		calls.Store(0)
		got.Store("")
		pr, pw := io.Pipe()
		go func() {
			time.Sleep(50 * time.Millisecond)
			pw.Write([]byte("0123456789"))
			pw.Close()
		}()
		req, _ := http.NewRequest("PUT", e.url("public")+"/", pr)
		req.ContentLength = 10
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == 503 && calls.Load() == 1:
			// The first attempt had begun sending the body: no retry.
		case resp.StatusCode == 200 && string(b) == "0123456789" && got.Load() == "0123456789":
			// Retried with the whole body.
		default:
			t.Fatalf("status %d body %q after %d calls; upstream got %q", resp.StatusCode, b, calls.Load(), got.Load())
		}
	}
}
