package transform

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/route"
	"go.yaml.in/yaml/v3"
)

// counts records what a stage counted.
type counts struct {
	mu sync.Mutex
	m  map[string]int // "side/result"
}

func (c *counts) Transform(route, side, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[side+"/"+result]++
}

// TransformCounter makes counts a Binder: the stages the tests build count
// through the series they bound, as with the node's metrics.
func (c *counts) TransformCounter(route, side, result string) Incrementer {
	return countInc{c, route, side, result}
}

type countInc struct {
	c                   *counts
	route, side, result string
}

func (i countInc) Inc() { i.c.Transform(i.route, i.side, i.result) }

// unbound is a Counter that is not a Binder (the admin's dry run counts
// so): every count goes through Transform.
type unbound struct{ c *counts }

func (u unbound) Transform(route, side, result string) { u.c.Transform(route, side, result) }

func (c *counts) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// parseTransform reads a route's transform section.
func parseTransform(t testing.TB, src string) *config.Transform {
	t.Helper()
	var c config.Transform
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("config %q: %v", src, err)
	}
	return &c
}

// build is the transform stage of src around next.
func build(t testing.TB, src string, next http.Handler, c Counter) http.Handler {
	t.Helper()
	h, err := buildErr(parseTransform(t, src), next, c)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return h
}

func buildErr(c *config.Transform, next http.Handler, count Counter) (http.Handler, error) {
	if count == nil {
		count = &counts{}
	}
	b := Policy(Deps{Counter: count, Logger: slog.New(slog.DiscardHandler)})
	rt := &config.Route{Name: "r", Transform: c}
	return b.Build(rt, policy.Env{Route: "r", Scope: policy.NewScope(nil)}, next)
}

// upstreamSaw is what the next stage got.
type upstreamSaw struct {
	called   bool
	header   http.Header
	query    string
	body     string
	length   int64
	hadBody  bool
	bodyRead error
}

// backend answers with a fixed response and records the request.
type backend struct {
	saw     upstreamSaw
	status  int
	header  map[string]string
	body    []byte
	chunked bool // write in pieces, flushing between them
	serve   func(w http.ResponseWriter, r *http.Request)
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.saw.called = true
	b.saw.header = r.Header.Clone()
	b.saw.query = r.URL.RawQuery
	b.saw.length = r.ContentLength
	if r.Body != nil && r.Body != http.NoBody {
		b.saw.hadBody = true
		data, err := io.ReadAll(r.Body)
		b.saw.body, b.saw.bodyRead = string(data), err
	}
	if b.serve != nil {
		b.serve(w, r)
		return
	}
	for k, v := range b.header {
		w.Header().Set(k, v)
	}
	status := b.status
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	if !b.chunked {
		_, _ = w.Write(b.body)
		return
	}
	for i := 0; i < len(b.body); i += 7 {
		_, _ = w.Write(b.body[i:min(i+7, len(b.body))])
		http.NewResponseController(w).Flush()
	}
}

// testExchange is the exchange of a request to a template route
// /orders/{id} (so that {path.id} has a value), with a consumer.
func testExchange(t testing.TB, path string) *exchange.Exchange {
	t.Helper()
	table, err := route.Compile([]config.Route{{Name: "r", Upstream: "u", Match: config.Match{Path: &config.Path{Template: "/orders/{id}"}}}})
	if err != nil {
		t.Fatal(err)
	}
	x := &exchange.Exchange{Consumer: "acme", Tier: "gold", ClientIP: "192.0.2.7", RequestID: "req-1", Path: path}
	table.Match("example.com", "GET", path, http.Header{}, "", &x.Match)
	x.Claim = func(name string) (string, bool) {
		switch name {
		case "email":
			return "ops@acme.test", true
		case "evil":
			return "a\r\nX-Injected: 1", true
		}
		return "", false
	}
	return x
}

// do serves one request through h with an exchange, returning the recorder.
func do(t testing.TB, h http.Handler, method, target string, hdr map[string]string, body []byte) (*httptest.ResponseRecorder, *exchange.Exchange) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	x := testExchange(t, r.URL.Path)
	r = r.WithContext(exchange.With(context.Background(), x))
	w := httptest.NewRecorder()
	h.ServeHTTP(exchange.Recorder(w, x), r)
	return w, x
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// onlyReader hides everything but Read (no WriterTo, no Len).
type onlyReader struct{ r io.Reader }

func (o *onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// newRecorderServe serves r through h with an exchange.
func newRecorderServe(t testing.TB, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	x := testExchange(t, r.URL.Path)
	r = r.WithContext(exchange.With(r.Context(), x))
	w := httptest.NewRecorder()
	h.ServeHTTP(exchange.Recorder(w, x), r)
	return w
}

func exchangeOf(r *http.Request) *exchange.Exchange { return exchange.From(r.Context()) }

func writeConnectFailed(w http.ResponseWriter, x *exchange.Exchange) {
	exchange.Write(w, x, exchange.ConnectFailed)
}
