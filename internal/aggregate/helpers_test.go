package aggregate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/route"
	"go.yaml.in/yaml/v3"
)

// testUpstreams is policy.Upstreams over real HTTP backends: each upstream
// name is an httptest server (or a dead address). A call that gets no
// response is a *proxy.CallError as the forwarder's would be.
type testUpstreams struct {
	t     testing.TB
	mu    sync.Mutex
	addrs map[string]string // upstream → host:port
	opts  map[string]policy.CallOptions
	tr    *http.Transport
	// inFlight counts the calls whose RoundTrip has not returned, or whose
	// response body is not closed.
	inFlight atomic.Int64
}

func newUpstreams(t testing.TB) *testUpstreams {
	u := &testUpstreams{t: t, addrs: map[string]string{}, opts: map[string]policy.CallOptions{},
		tr: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	t.Cleanup(u.tr.CloseIdleConnections)
	return u
}

// backend starts a server for upstream name.
func (u *testUpstreams) backend(name string, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(h)
	u.t.Cleanup(srv.Close)
	u.addrs[name] = srv.Listener.Addr().String()
	return srv
}

// dead makes upstream name an address nothing listens on.
func (u *testUpstreams) dead(name string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		u.t.Fatal(err)
	}
	u.addrs[name] = l.Addr().String()
	l.Close()
}

func (u *testUpstreams) Caller(upstream string, o policy.CallOptions) (http.RoundTripper, error) {
	addr, ok := u.addrs[upstream]
	if !ok {
		return nil, fmt.Errorf("no upstream %q", upstream)
	}
	u.mu.Lock()
	u.opts[o.Name] = o
	u.mu.Unlock()
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host != upstream || req.Host != upstream {
			u.t.Errorf("call to %s has URL host %q, Host %q", upstream, req.URL.Host, req.Host)
		}
		u.inFlight.Add(1)
		out := req.Clone(req.Context())
		out.URL.Host = addr
		resp, err := u.tr.RoundTrip(out)
		if err == nil {
			resp.Body = &closeHook{ReadCloser: resp.Body, f: func() { u.inFlight.Add(-1) }}
			return resp, nil
		}
		u.inFlight.Add(-1)
		{
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, &proxy.CallError{Kind: exchange.UpstreamTimeout}
			}
			return nil, &proxy.CallError{Kind: exchange.ConnectFailed, Endpoint: addr}
		}
	}), nil
}

// closeHook runs f once when the body is closed.
type closeHook struct {
	io.ReadCloser
	f    func()
	once sync.Once
}

func (b *closeHook) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.f)
	return err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// counts records what a stage counted.
type counts struct {
	mu      sync.Mutex
	calls   map[string]int // "call/result"
	partial int
}

func (c *counts) Call(_, call, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[call+"/"+result]++
}

func (c *counts) Partial(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial++
}

func (c *counts) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[key]
}

// parseAggregate reads a route's aggregate section.
func parseAggregate(t testing.TB, src string) *config.Aggregate {
	t.Helper()
	var a config.Aggregate
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("config %q: %v", src, err)
	}
	return &a
}

// buildErr builds the aggregate stage of route "r" for src.
func buildErr(t testing.TB, ups policy.Upstreams, src string, defs []config.AggregateCall, c Counter) (http.Handler, error) {
	t.Helper()
	if c == nil {
		c = &counts{}
	}
	b := Policy(Deps{Calls: defs, Metrics: c, Logger: slog.New(slog.DiscardHandler)})
	rt := &config.Route{Name: "r", Aggregate: parseAggregate(t, src)}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the aggregate stage called next") })
	return b.Build(rt, policy.Env{Route: "r", Scope: policy.NewScope(nil), Upstreams: ups}, next)
}

func build(t testing.TB, ups policy.Upstreams, src string, c Counter) http.Handler {
	t.Helper()
	h, err := buildErr(t, ups, src, nil, c)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return h
}

// testExchange is the exchange of a request to the route /users/{id},
// with a consumer.
func testExchange(t testing.TB, path string) *exchange.Exchange {
	t.Helper()
	table, err := route.Compile([]config.Route{{Name: "r", Upstream: "u", Match: config.Match{Path: &config.Path{Template: "/users/{id}"}}}})
	if err != nil {
		t.Fatal(err)
	}
	x := &exchange.Exchange{Consumer: "acme", ClientIP: "192.0.2.7", RequestID: "req-1", Path: path}
	table.Match("example.com", "GET", path, http.Header{}, "", &x.Match)
	return x
}

// response is what a client got.
type response struct {
	status int
	header http.Header
	body   string
	x      *exchange.Exchange
	wrote  bool // a status line was written
}

// serve sends one request through h.
func serve(t testing.TB, h http.Handler, method, target string, hdr map[string]string) response {
	t.Helper()
	return serveCtx(t, context.Background(), h, method, target, hdr)
}

func serveCtx(t testing.TB, ctx context.Context, h http.Handler, method, target string, hdr map[string]string) response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	x := testExchange(t, r.URL.EscapedPath()) // as the edge's router has it: escapes kept
	r = r.WithContext(exchange.With(ctx, x))
	w := &recorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, r)
	return response{status: w.Code, header: w.Header(), body: w.Body.String(), x: x, wrote: w.wrote}
}

// recorder is an httptest.ResponseRecorder that tells whether anything was
// written.
type recorder struct {
	*httptest.ResponseRecorder
	wrote bool
}

func (w *recorder) WriteHeader(code int) {
	w.wrote = true
	w.ResponseRecorder.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseRecorder.Write(p)
}

// jsonBackend answers body as JSON.
func jsonBackend(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// slowBackend answers body after d, or gives up when the request is
// cancelled (and counts it).
func slowBackend(d time.Duration, body string, cancelled *counter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			_, _ = io.WriteString(w, body)
		case <-r.Context().Done():
			if cancelled != nil {
				cancelled.add()
			}
		}
	}
}

// counter counts events from several goroutines, and lets a test wait for
// a number of them.
type counter struct {
	mu sync.Mutex
	n  int
	ch chan struct{}
}

func newCounter() *counter { return &counter{ch: make(chan struct{}, 1<<16)} }

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// waitFor waits up to d for n more events; false if they did not come.
func (c *counter) waitFor(n int, d time.Duration) bool {
	timeout := time.After(d)
	for range n {
		select {
		case <-c.ch:
		case <-timeout:
			return false
		}
	}
	return true
}

// wait waits for n more events.
func (c *counter) wait(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-c.ch:
		case <-timeout:
			t.Fatalf("waited 10s for %d events", n)
		}
	}
}

// unescaped is the segments of a request-target's path, split before
// decoding.
func segments(requestURI string) []string {
	p, _, _ := strings.Cut(requestURI, "?")
	return strings.Split(strings.TrimPrefix(p, "/"), "/")
}

func itoa(n int) string { return strconv.Itoa(n) }

func queryEscape(s string) string { return url.QueryEscape(s) }

func nopEnv() policy.Env { return policy.Env{Route: "r", Scope: policy.NewScope(nil)} }
