package fallback

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
)

type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) Fallback(route, reason, via string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[route+"/"+reason+"/"+via]++
}

// failWith answers as the forwarder does when it gets no response: the
// error kind from the table.
func failWith(k *exchange.Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := exchange.From(r.Context())
		x.Upstream, x.Attempts = "primary", 1
		exchange.Write(w, x, k)
	})
}

// answer answers status with body, as an upstream's response goes out.
func answer(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := exchange.From(r.Context())
		if x.Upstream == "" {
			x.Upstream = "primary"
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-From", x.Upstream)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// readsBody reads the request body, then fails to connect.
func readsBody(k *exchange.Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		failWith(k).ServeHTTP(w, r)
	})
}

// holdsBody reads the request body whole and leaves it in its place as a
// replayable body, as the forwarder does with a small one
// (proxy.BufferedBody), then fails with k.
func holdsBody(k *exchange.Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = heldBody{strings.NewReader(string(b))}
		failWith(k).ServeHTTP(w, r)
	})
}

type heldBody struct{ *strings.Reader }

func (heldBody) Close() error     { return nil }
func (heldBody) Replayable() bool { return true }

type harness struct {
	t      *testing.T
	h      http.Handler
	counts *counts
}

func newHarness(t *testing.T, fb *config.Fallback, primary, backup http.Handler) *harness {
	t.Helper()
	rt := &config.Route{Name: "pay", Upstream: "primary", Fallback: fb}
	if len(fb.On) == 0 {
		fb.On = config.DefaultFallbackOn
	}
	if fb.Response != nil && fb.Response.Status == 0 {
		fb.Response.Status = http.StatusServiceUnavailable
	}
	c := &counts{}
	env := policy.Env{Route: "pay", Reroute: func(up string) (http.Handler, error) {
		if up != "standby" {
			t.Fatalf("reroute to %q", up)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			exchange.From(r.Context()).Upstream = "standby"
			backup.ServeHTTP(w, r)
		}), nil
	}}
	h, err := Policy(Deps{Metrics: c}).Build(rt, env, primary)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, h: h, counts: c}
}

func (hh *harness) do(method, body string, grpc bool) (*httptest.ResponseRecorder, *exchange.Exchange) {
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/pay/1", rb)
	x := &exchange.Exchange{RequestID: "req-7", GRPC: grpc}
	req = req.WithContext(exchange.With(context.Background(), x))
	rec := httptest.NewRecorder()
	hh.h.ServeHTTP(exchange.Recorder(rec, x), req)
	return rec, x
}

var degraded = &config.FallbackResponse{Status: 503, Headers: map[string]string{"Retry-After": "30"},
	Body: `{"status":"degraded","request_id":"{request_id}"}`}

func TestFallback(t *testing.T) {
	for _, c := range []struct {
		name             string
		fb               config.Fallback
		primary, backup  http.Handler
		method, body     string
		grpc             bool
		status           int
		wantBody, header string // header: X-From or Retry-After as expected
		via, count       string
	}{
		{name: "circuit open: static", fb: config.Fallback{Response: degraded}, primary: failWith(exchange.CircuitOpen),
			status: 503, wantBody: `{"status":"degraded","request_id":"req-7"}`, header: "Retry-After=30",
			via: ViaResponse, count: "pay/circuit_open/response"},
		{name: "success passes", fb: config.Fallback{Response: degraded}, primary: answer(200, "ok"),
			status: 200, wantBody: "ok", header: "X-From=primary"},
		{name: "4xx never replaced", fb: config.Fallback{On: []string{"5xx"}, Response: degraded}, primary: answer(404, "no such payment"),
			status: 404, wantBody: "no such payment", header: "X-From=primary"},
		{name: "5xx listed: static", fb: config.Fallback{On: []string{"5xx"}, Response: degraded}, primary: answer(503, "down"),
			status: 503, wantBody: `{"status":"degraded","request_id":"req-7"}`, via: ViaResponse, count: "pay/status_503/response"},
		{name: "5xx not listed by default", fb: config.Fallback{Response: degraded}, primary: answer(500, "boom"),
			status: 500, wantBody: "boom", header: "X-From=primary"},
		{name: "one code listed", fb: config.Fallback{On: []string{"502"}, Response: degraded}, primary: answer(503, "down"),
			status: 503, wantBody: "down"},
		{name: "error kind not listed", fb: config.Fallback{On: []string{"timeout"}, Response: degraded}, primary: failWith(exchange.ConnectFailed),
			status: 502, wantBody: `"error":"upstream connect failed"`},
		{name: "backup answers", fb: config.Fallback{Upstream: "standby", Response: degraded}, primary: failWith(exchange.ConnectFailed),
			backup: answer(200, "from standby"), status: 200, wantBody: "from standby", header: "X-From=standby",
			via: ViaUpstream, count: "pay/connect_failed/upstream"},
		{name: "backup fails too: static", fb: config.Fallback{Upstream: "standby", Response: degraded}, primary: failWith(exchange.UpstreamTimeout),
			backup: failWith(exchange.NoHealthyEndpoint), status: 503, wantBody: `"request_id":"req-7"}`,
			via: ViaResponse, count: "pay/upstream_timeout/response"},
		{name: "backup fails, no static: its failure", fb: config.Fallback{Upstream: "standby"}, primary: failWith(exchange.CircuitOpen),
			backup: failWith(exchange.ConnectFailed), status: 502, wantBody: "upstream connect failed", count: "pay/circuit_open/none"},
		{name: "backup's 4xx is an answer", fb: config.Fallback{Upstream: "standby", Response: degraded}, primary: failWith(exchange.CircuitOpen),
			backup: answer(409, "conflict"), status: 409, wantBody: "conflict", via: ViaUpstream, count: "pay/circuit_open/upstream"},
		{name: "body read: no backup, static", fb: config.Fallback{Upstream: "standby", Response: degraded},
			primary: readsBody(exchange.ConnectionReset), backup: answer(200, "from standby"), method: "POST", body: `{"amount":1}`,
			status: 503, wantBody: `"status":"degraded"`, via: ViaResponse, count: "pay/connection_reset/response"},
		{name: "body read, no static: the first failure", fb: config.Fallback{Upstream: "standby"},
			primary: readsBody(exchange.ConnectionReset), backup: answer(200, "from standby"), method: "POST", body: `{"amount":1}`,
			status: 502, wantBody: "upstream connection reset", count: "pay/connection_reset/none"},
		{name: "body held whole: backup gets it", fb: config.Fallback{Upstream: "standby", Response: degraded},
			primary: holdsBody(exchange.ConnectionReset), method: "POST", body: `{"amount":1}`,
			backup: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				answer(201, "stored "+string(b)).ServeHTTP(w, r)
			}), status: 201, wantBody: `stored {"amount":1}`, via: ViaUpstream, count: "pay/connection_reset/upstream"},
		{name: "body not read: backup gets it", fb: config.Fallback{Upstream: "standby"},
			primary: failWith(exchange.CircuitOpen), method: "POST", body: `{"amount":1}`,
			backup: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				answer(201, "stored "+string(b)).ServeHTTP(w, r)
			}), status: 201, wantBody: `stored {"amount":1}`, via: ViaUpstream, count: "pay/circuit_open/upstream"},
		{name: "large failure goes out", fb: config.Fallback{On: []string{"5xx"}, Response: degraded},
			primary: answer(503, strings.Repeat("x", maxHeld+1)), status: 503, wantBody: "xxxx"},
		{name: "gRPC left alone", fb: config.Fallback{Response: degraded}, primary: failWith(exchange.CircuitOpen), grpc: true,
			status: 200, wantBody: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fb := c.fb
			hh := newHarness(t, &fb, c.primary, c.backup)
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			rec, x := hh.do(method, c.body, c.grpc)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.wantBody) {
				t.Fatalf("got %d %.120q, want %d with %q", rec.Code, rec.Body.String(), c.status, c.wantBody)
			}
			if c.header != "" {
				k, v, _ := strings.Cut(c.header, "=")
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q (%v)", k, got, v, rec.Header())
				}
			}
			if x.Fallback != c.via {
				t.Errorf("exchange fallback %q, want %q", x.Fallback, c.via)
			}
			if c.via == ViaResponse {
				if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" ||
					rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) || x.Error != nil || x.Status != 503 {
					t.Errorf("static answer: header %v, error %v, status %d", rec.Header(), x.Error, x.Status)
				}
			}
			if c.via != "" && x.Error != nil {
				t.Errorf("a fallback answer keeps the error kind %v", x.Error.Name)
			}
			var want map[string]int
			if c.count != "" {
				want = map[string]int{c.count: 1}
			}
			if len(hh.counts.n) != len(want) || (c.count != "" && hh.counts.n[c.count] != 1) {
				t.Errorf("counts %v, want %v", hh.counts.n, want)
			}
		})
	}
}
