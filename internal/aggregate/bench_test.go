package aggregate

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
)

// memUpstreams answers every call from memory with a fixed JSON document
// per upstream: the cost of the stage itself, without a network.
type memUpstreams map[string][]byte

func (m memUpstreams) Caller(upstream string, _ policy.CallOptions) (http.RoundTripper, error) {
	body, ok := m[upstream]
	if !ok {
		return nil, fmt.Errorf("no upstream %q", upstream)
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
	}), nil
}

// doc is a JSON object of about n bytes.
func doc(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"u-42","name":"Ann","items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"` + strconv.Itoa(1000+i) + `","qty":` + strconv.Itoa(i) + `,"price":12.5}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

const benchAggregate = `
calls:
  - {name: user, upstream: users, path: "/users/{path.id}"}
  - {name: orders, upstream: orders, path: "/users/{call.user.id}/orders", query: {limit: "10"}}
  - {name: stock, upstream: stock, path: /stock, into: info.stock, optional: true}
`

func benchStage(b *testing.B, ups policy.Upstreams) {
	h, err := Policy(Deps{Logger: slog.New(slog.DiscardHandler)}).Build(
		&config.Route{Name: "r", Aggregate: parseAggregate(b, benchAggregate)},
		policy.Env{Route: "r", Scope: policy.NewScope(nil), Upstreams: ups}, nil)
	if err != nil {
		b.Fatal(err)
	}
	x := testExchange(b, "/users/42")
	r := httptest.NewRequest("GET", "/users/42", nil)
	r = r.WithContext(exchange.With(r.Context(), x))
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
	b.SetBytes(int64(w.n))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
}

type discard struct {
	h      http.Header
	status int
	n      int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) WriteHeader(code int)        { w.status = code }
func (w *discard) Write(p []byte) (int, error) { w.n = len(p); return len(p), nil }

// BenchmarkComposite: three calls (two in parallel, one dependent), 1 KiB
// each, answered from memory.
func BenchmarkComposite(b *testing.B) {
	d := doc(1 << 10)
	benchStage(b, memUpstreams{"users": d, "orders": d, "stock": d})
}

// BenchmarkCompositeHTTP: the same against httptest backends over
// loopback HTTP/1.1.
func BenchmarkCompositeHTTP(b *testing.B) {
	ups := newUpstreams(b)
	d := doc(1 << 10)
	for _, n := range []string{"users", "orders", "stock"} {
		ups.backend(n, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(d)
		})
	}
	benchStage(b, ups)
}
